"""Sending queued messages: one in flight per customer, many customers at once."""

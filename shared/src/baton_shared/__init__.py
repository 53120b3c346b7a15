"""Baton shared library: events, streams, database helpers, settings."""

"""Baton agent service."""

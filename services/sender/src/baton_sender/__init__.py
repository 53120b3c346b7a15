"""Baton sender service."""

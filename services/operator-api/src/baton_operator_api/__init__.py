"""Baton operator-api service."""

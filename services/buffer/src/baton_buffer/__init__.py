"""Baton buffer service."""

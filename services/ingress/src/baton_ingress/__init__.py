"""Baton ingress service."""

"""Parsing raw WhatsApp webhook bodies into typed inbound facts, tolerant of the unknown."""

from baton_ingress.parsing.webhook import ParsedWebhook, Rejection, parse_webhook

__all__ = ["ParsedWebhook", "Rejection", "parse_webhook"]

"""HTTP surface of ingress: the WhatsApp webhook endpoint."""

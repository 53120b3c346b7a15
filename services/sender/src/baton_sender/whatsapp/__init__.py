"""Everything that knows the WhatsApp Cloud API: request bodies, limits, the client, errors."""

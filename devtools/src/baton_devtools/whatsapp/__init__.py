"""WhatsApp Cloud API emulator: Graph send/media endpoints, customers, status webhooks."""

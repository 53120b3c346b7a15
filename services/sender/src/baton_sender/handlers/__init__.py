"""One module per consumed event type."""

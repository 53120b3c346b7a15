"""Stream handlers, one module per consumed event."""

"""Stream handlers of the buffer, one module per consumed event."""

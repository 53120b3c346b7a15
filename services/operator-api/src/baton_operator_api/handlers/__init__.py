"""Stream handlers, one module per event family."""

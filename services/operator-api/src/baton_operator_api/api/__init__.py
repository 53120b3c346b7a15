"""HTTP API of the operator-api."""

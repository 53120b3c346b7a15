"""The operator schema: models, queries and migrations."""

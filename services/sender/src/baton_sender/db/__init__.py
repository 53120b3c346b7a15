"""The sender schema: models, queries and migrations."""

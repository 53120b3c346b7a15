"""The buffer schema: models, queries and migrations."""

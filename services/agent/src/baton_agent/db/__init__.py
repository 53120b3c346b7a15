"""The agent schema: models, queries and migrations."""

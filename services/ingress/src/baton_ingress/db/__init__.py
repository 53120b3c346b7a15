"""The ingress schema: models, queries and migrations."""

"""Customer media: fetched from the Graph API at once, stored, served to operators."""

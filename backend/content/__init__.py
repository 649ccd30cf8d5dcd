"""Authored content (data, not code): the achievements catalog, later the exercise catalog."""

"""Authored content (data, not code): the achievements catalog and the exercise catalog (`catalog.py`, `exercises/`)."""

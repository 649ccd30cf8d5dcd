"""Authored content (data, not code): the achievements catalog and the exercise catalog (`catalog.py`, `exercises/`),
and what any exercise is made of, whoever writes it (`shapes.py`)."""

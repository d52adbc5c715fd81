"""Performance figures of the suite: ``python -m bench`` (see bench/__main__.py)."""

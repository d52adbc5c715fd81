"""Plain stderr logging: ``LEVEL time name: message``, one line per record."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(levelname)s %(asctime)s %(name)s: %(message)s"


def configure(level: str) -> None:
    """Send every logger (ours, uvicorn's, grpc's) to stderr at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_level(level))
    # uvicorn's own "Started server process" lines add nothing to ours.
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)


def _level(text: str) -> int:
    value = logging.getLevelName(text.strip().upper())
    return value if isinstance(value, int) else logging.INFO

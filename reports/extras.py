"""Plain-language lines for the run's extra figures (kill score, sweep counts, TLS profile)."""

from __future__ import annotations

import json
from typing import Any


def _words(key: str) -> str:
    return key.replace("_", " ")


def describe_extra(key: str, value: Any) -> str:
    """One line such as ``kill score: 31/31 injected faults detected``."""
    if key == "kill_score" and isinstance(value, dict) and {"killed", "total"} <= value.keys():
        return f"kill score: {value['killed']}/{value['total']} injected faults detected"
    if isinstance(value, dict) and all(isinstance(v, str | int | float | bool) for v in value.values()):
        parts = ", ".join(f"{_words(str(k))} {v}" for k, v in value.items())
        return f"{_words(key)}: {parts}"
    if isinstance(value, str | int | float | bool):
        return f"{_words(key)}: {value}"
    return f"{_words(key)}: {json.dumps(value, sort_keys=True, default=str)}"

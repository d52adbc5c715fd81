"""Short human names for a run's target, shared by the report and compare pages."""

from __future__ import annotations

from pathlib import PurePath

from qdrant_conformance.reports.model import RunResult
from qdrant_conformance.reports.verdicts import version_label


def target_label(run: RunResult) -> str:
    """What the target is called: its label, else image, binary, URL or launcher."""
    target = run.target
    for key in ("label", "image", "binary", "rest_url", "launcher"):
        value = target.get(key)
        if isinstance(value, str) and value.strip():
            return PurePath(value).name if key == "binary" else value.strip()
    return "target"


def run_label(run: RunResult) -> str:
    """``label · Qdrant vX.Y.Z``: the column header of a compare report."""
    return f"{target_label(run)} · {version_label(run.target_version)}"

"""Accepted deviations: the baseline file and what became of each entry in a run.

A baseline is a YAML list of ``{id: REQ-ID, reason: "..."}``. A baselined
requirement that fails does not break the gate; one that holds again is
*stale* and should be removed, so a fixed deviation cannot quietly come back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from qdrant_conformance.reports.errors import ReportInputError
from qdrant_conformance.reports.model import BaselineEntry

#: The requirement failed and the entry covers it.
ACCEPTED = "accepted"
#: The requirement held in this run: the entry is no longer needed.
STALE = "stale"
#: The requirement did not run (unsupported, disabled, not run): nothing to tell.
UNEXERCISED = "unexercised"
#: The requirement errored: a baseline accepts a known failure, never a harness error.
NOT_COVERED = "error-not-covered"
#: The entry names a requirement the run's catalog does not have.
UNKNOWN = "unknown-requirement"
#: The waiver's expiry date has passed: it waives nothing and is reported.
EXPIRED = "expired"
#: The waiver is scoped to other targets (its glob does not match this one).
OTHER_TARGET = "other-target"

BASELINE_STATUSES: tuple[str, ...] = (ACCEPTED, STALE, UNEXERCISED, NOT_COVERED, UNKNOWN, EXPIRED, OTHER_TARGET)

_ALLOWED_KEYS = {"id", "reason"}


@dataclass(frozen=True)
class BaselineStatus:
    """One baseline entry and what it amounted to in this run."""

    entry: BaselineEntry
    status: str
    outcome: str

    def to_dict(self) -> dict[str, str]:
        return {**self.entry.to_dict(), "status": self.status, "outcome": self.outcome}


def load_baseline(path: str | Path, known_ids: Iterable[str]) -> list[BaselineEntry]:
    """Read and check a baseline file against the catalog's requirement IDs.

    Raises :class:`ReportInputError` with one line naming the file and the
    first problem: unreadable, not YAML, not a list, an entry without an ID or
    a reason, an ID the catalog does not know, an ID listed twice.
    """
    where = f"baseline {path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ReportInputError(f"cannot read {where}: {reason}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ReportInputError(f"{where} is not valid YAML: {problem}{at}") from exc
    if data is None:
        return []
    if not isinstance(data, list):
        raise ReportInputError(f"{where}: expected a list of {{id, reason}} entries, got {type(data).__name__}")
    known = set(known_ids)
    entries: list[BaselineEntry] = []
    seen: set[str] = set()
    for number, item in enumerate(data, start=1):
        at = f"{where}: entry {number}"
        if not isinstance(item, dict):
            raise ReportInputError(f"{at} must be a mapping with 'id' and 'reason', got {item!r}")
        raw_id = item.get("id")
        if not isinstance(raw_id, str) or not raw_id.strip():
            raise ReportInputError(f"{at} has no 'id' (a requirement ID such as AUTH-REST-001)")
        rid = raw_id.strip()
        extra = sorted(str(k) for k in item if k not in _ALLOWED_KEYS)
        if extra:
            raise ReportInputError(f"{at} ({rid}): unknown key {extra[0]!r} (allowed: id, reason)")
        if rid not in known:
            raise ReportInputError(f"{at}: unknown requirement ID {rid!r} (not in the catalog)")
        raw_reason = item.get("reason")
        if not isinstance(raw_reason, str) or not raw_reason.strip():
            raise ReportInputError(f"{at} ({rid}) has no 'reason': every accepted deviation needs one")
        if rid in seen:
            raise ReportInputError(f"{where}: {rid} is listed twice")
        seen.add(rid)
        entries.append(BaselineEntry(id=rid, reason=" ".join(raw_reason.split())))
    return entries

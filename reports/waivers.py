"""Waivers: accepted deviations with a reason, an owner, an optional target glob and an expiry date.

    waivers:
      - requirement: TLS-GRPC-004
        target: "https://qdrant-*.prod.example:6333"   # optional fnmatch glob
        reason: Qdrant does not verify gRPC client certificates (spec §6)
        expires: 2026-12-31                          # last day it applies (UTC)
        owner: platform-security@example.com

An old baseline file (a bare list of ``{id, reason}``) is still read, as
waivers without expiry or owner; reports flag those entries as deprecated.
How each waiver ends up in a run (waived, expired, stale, ...) is decided with
the verdicts; see :func:`waiver_applies`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from qdrant_conformance.reports.baseline import load_baseline
from qdrant_conformance.reports.errors import ReportInputError
from qdrant_conformance.reports.model import BaselineEntry

_KEYS = ("requirement", "target", "reason", "expires", "owner")
#: Target fields a waiver's glob is matched against.
TARGET_FIELDS = ("label", "rest_url", "grpc_url", "p2p_url", "image", "qdrant_binary", "binary")


def _read(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ReportInputError(f"cannot read waivers {path}: {reason}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ReportInputError(f"waivers {path} is not valid YAML{where}") from exc


def _text(item: Mapping[str, Any], key: str, at: str, *, required: bool) -> str | None:
    value = item.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ReportInputError(f"{at} needs a non-empty {key!r}")
    return " ".join(value.split())


def _expiry(value: object, at: str) -> str:
    # YAML reads an unquoted 2026-12-31 as a date; a quoted one stays a string.
    if isinstance(value, dt.datetime):
        raise ReportInputError(f"{at}: 'expires' must be a date YYYY-MM-DD, not a timestamp")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    raise ReportInputError(f"{at}: 'expires' must be a date YYYY-MM-DD, got {value!r}")


def load_waivers(path: str | Path, known_ids: Iterable[str]) -> list[BaselineEntry]:
    """Read one waivers file (or an old baseline file) and check it against the catalog.

    Raises :class:`ReportInputError` with one line naming the file and the first problem.
    """
    path = Path(path)
    data = _read(path)
    if data is None:
        return []
    if isinstance(data, list):
        return load_baseline(path, known_ids)  # the old flat format, checked by its own rules
    where = f"waivers {path}"
    if not isinstance(data, dict) or set(data) != {"waivers"}:
        raise ReportInputError(f"{where}: the top level must be a mapping with one key, 'waivers' (a list)")
    items = [] if data["waivers"] is None else data["waivers"]
    if not isinstance(items, list):
        raise ReportInputError(f"{where}: 'waivers' must be a list")
    known = set(known_ids)
    entries: list[BaselineEntry] = []
    for number, item in enumerate(items, start=1):
        at = f"{where}: waiver {number}"
        if not isinstance(item, dict):
            raise ReportInputError(f"{at} must be a mapping with {', '.join(_KEYS)}")
        extra = sorted(str(k) for k in item if k not in _KEYS)
        if extra:
            raise ReportInputError(f"{at}: unknown key {extra[0]!r} (allowed: {', '.join(_KEYS)})")
        rid = _text(item, "requirement", at, required=True)
        assert rid is not None
        at = f"{at} ({rid})"
        if rid not in known:
            raise ReportInputError(f"{at}: unknown requirement ID (not in the catalog)")
        if "expires" not in item:
            raise ReportInputError(f"{at} has no 'expires' (YYYY-MM-DD): every waiver must end")
        entries.append(
            BaselineEntry(
                id=rid,
                reason=_text(item, "reason", at, required=True) or "",
                target=_text(item, "target", at, required=False),
                expires=_expiry(item["expires"], at),
                owner=_text(item, "owner", at, required=True),
            )
        )
    _no_duplicates(entries, where)
    return entries


def _no_duplicates(entries: Sequence[BaselineEntry], where: str) -> None:
    seen: set[tuple[str, str | None]] = set()
    for entry in entries:
        key = (entry.id, entry.target)
        if key in seen:
            scope = f" for target {entry.target!r}" if entry.target else ""
            raise ReportInputError(f"{where}: {entry.id} is waived twice{scope}")
        seen.add(key)


def load_all_waivers(paths: Sequence[str | Path | None], known_ids: Iterable[str]) -> list[BaselineEntry]:
    """The waivers of several files (``--waivers`` and the deprecated ``--baseline``), in order."""
    known = set(known_ids)
    entries: list[BaselineEntry] = []
    for path in paths:
        if path is not None:
            entries += load_waivers(path, known)
    _no_duplicates(entries, "waivers")
    return entries


def run_date(started_at: str) -> dt.date:
    """The UTC day a run started: waivers are judged on it, so re-rendering a run later changes nothing."""
    try:
        stamp = dt.datetime.fromisoformat(started_at)
    except ValueError:
        return dt.datetime.now(dt.UTC).date()
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC)
    return stamp.date()


def is_expired(entry: BaselineEntry, on: dt.date) -> bool:
    """A waiver applies through its ``expires`` day and no longer after it."""
    return entry.expires is not None and dt.date.fromisoformat(entry.expires) < on


def target_names(target: Mapping[str, Any]) -> list[str]:
    """What a waiver's target glob may match: the target's label, URLs, image and binary."""
    return [str(target[key]) for key in TARGET_FIELDS if isinstance(target.get(key), str) and target[key]]


def matches_target(entry: BaselineEntry, names: Sequence[str]) -> bool:
    return entry.target is None or any(fnmatchcase(name, entry.target) for name in names)

"""The audit log, as Qdrant writes and reads it (spec §10; v1.17.0+, denied logins from v1.17.1).

One JSON object per line for every access check, in ``audit.dir/audit.<date>.log``
(``audit.<date>-<hour>.log`` with hourly rotation), at most ``max_log_files``
files kept. Fields, in Qdrant's order, absent ones left out: ``timestamp``,
``method`` (the operation's name; none for a refused login), ``api`` (REST path
or gRPC method, v1.17.1+, when ``log_api``), ``auth_type`` (``Jwt`` / ``ApiKey``
/ ``None``), ``subject`` (the JWT's ``subject``), ``remote`` (peer address),
``collection``, ``tracing_id`` (v1.17.1+), ``result`` (``ok`` / ``denied``),
``error``.

What identifies a caller here is only what the server decided about them:
this module is never handed a key or a token, so it cannot write one.
``POST /audit/logs`` reads the files back newest first (:func:`AuditLog.read`).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .settings import AuditSettings, Settings
from .versioning import Emulation

AUDIT_SINCE = "1.17.0"
#: Refused logins, ``api`` and ``tracing_id`` (spec §9).
DENIED_LOGINS_SINCE = "1.17.1"
TRACING_HEADERS = ("x-request-id", "x-tracing-id", "traceparent")
TRACING_ID_MAX = 256
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
#: Fields ``filters`` may name; any other name matches nothing.
FILTERABLE = ("method", "auth_type", "result", "subject", "remote", "collection", "tracing_id", "error")

_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@dataclass(frozen=True)
class Principal:
    """Who made a request, as far as the audit log may say: how they authenticated, and the JWT subject."""

    auth_type: str  # Jwt | ApiKey | None
    subject: str | None = None


def tracing_id(headers: Mapping[str, str]) -> str | None:
    """The first of Qdrant's tracing headers present, cut to 256 characters."""
    for name in TRACING_HEADERS:
        value = headers.get(name)
        if value is not None:
            return value[:TRACING_ID_MAX]
    return None


class AuditLog:
    """Appends entries for one server; REST and gRPC share the file through a per-directory lock."""

    def __init__(self, config: AuditSettings, emulation: Emulation, base: Path | None = None) -> None:
        self.config = config
        self.emulation = emulation
        folder = Path(config.dir)
        self.dir = folder if folder.is_absolute() else (base or Path.cwd()) / folder
        with _LOCKS_GUARD:
            self._lock = _LOCKS.setdefault(self.dir.resolve(), threading.Lock())

    @classmethod
    def from_settings(cls, settings: Settings) -> AuditLog | None:
        """The log, or ``None`` when audit is off or the emulated version has none."""
        emulation = Emulation.of(settings.version)
        if not settings.audit.enabled or not emulation.at_least(AUDIT_SINCE):
            return None
        return cls(settings.audit, emulation)

    @property
    def logs_denied_logins(self) -> bool:
        return self.emulation.at_least(DENIED_LOGINS_SINCE)

    # -- writing -------------------------------------------------------------------------

    def record(self, *, method: str | None, api: str, principal: Principal, remote: str | None,
               collection: str | None, tracing: str | None, error: str | None) -> None:
        newer = self.emulation.at_least(DENIED_LOGINS_SINCE)
        entry: dict[str, Any] = {"timestamp": _now().isoformat().replace("+00:00", "Z")}
        if method is not None:
            entry["method"] = method
        if newer and self.config.log_api:
            entry["api"] = api
        entry["auth_type"] = principal.auth_type
        for key, value in (("subject", principal.subject), ("remote", remote), ("collection", collection),
                           ("tracing_id", tracing if newer else None)):
            if value is not None:
                entry[key] = value
        entry["result"] = "ok" if error is None else "denied"
        if error is not None:
            entry["error"] = error
        line = json.dumps(entry, separators=(",", ":"), ensure_ascii=False) + "\n"
        with self._lock:
            self.dir.mkdir(parents=True, exist_ok=True)
            path = self.dir / self._file_name(_now())
            fresh = not path.exists()
            with path.open("a", encoding="utf-8") as out:
                out.write(line)
            if fresh:
                self._prune()

    def _file_name(self, when: dt.datetime) -> str:
        stamp = when.strftime("%Y-%m-%d-%H" if self.config.rotation == "hourly" else "%Y-%m-%d")
        return f"audit.{stamp}.log"

    def _files(self) -> list[Path]:
        if not self.dir.is_dir():
            return []
        found = [p for p in self.dir.iterdir() if p.is_file() and p.name.startswith("audit") and
                 p.name.endswith(".log")]
        return sorted(found, key=lambda p: p.name, reverse=True)  # dated names sort by time

    def _prune(self) -> None:
        for old in self._files()[self.config.max_log_files:]:
            old.unlink(missing_ok=True)

    # -- reading (POST /audit/logs) ------------------------------------------------------------

    def read(self, *, time_from: dt.datetime | None, time_to: dt.datetime | None,
             filters: Mapping[str, str], limit: int) -> list[dict[str, Any]]:
        """Matching entries, newest first; lines that are not entries are skipped."""
        with self._lock:
            files = self._files()
            texts = [p.read_text(encoding="utf-8", errors="replace") for p in files]
        found: list[dict[str, Any]] = []
        for text in texts:  # newest file first
            matches = [e for e in map(_entry, text.splitlines()) if e is not None and
                       _matches(e, time_from, time_to, filters)]
            found.extend(reversed(matches))
            if len(found) >= limit:
                break
        return found[:limit]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _entry(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("timestamp"), str):
        return None
    return value


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO-8601 instant; ``ValueError`` for anything else."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("expected an ISO-8601 timestamp")
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("the timestamp needs a time zone")
    return parsed


def _matches(entry: dict[str, Any], time_from: dt.datetime | None, time_to: dt.datetime | None,
             filters: Mapping[str, str]) -> bool:
    try:
        when = parse_time(entry["timestamp"])
    except ValueError:
        return False
    assert when is not None
    if (time_from is not None and when < time_from) or (time_to is not None and when >= time_to):
        return False
    return all(key in FILTERABLE and entry.get(key) == wanted for key, wanted in filters.items())

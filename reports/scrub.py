"""The reports' own line of defence against secrets reaching a file or a log.

The plugin redacts before it builds a :class:`~reports.model.RunResult`; this
module repeats the job on everything the writers emit, because a single leaked
API key in a published report is worse than any wrong verdict. The secrets are
those registered with :data:`reports.redaction.REDACTOR`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any, TypeVar

from qdrant_conformance.reports.model import BaselineEntry, Requirement, RunResult, TestRecord
from qdrant_conformance.reports.redaction import REDACTOR

# Target keys whose values are credentials by name even if nobody registered them.
_SECRET_KEY = re.compile(r"api[_-]?key|apikey|token|secret|passw|passphrase|jwt|bearer", re.IGNORECASE)
# Fields whose values come from the catalog or a fixed set, never from the target.
_CATALOG_FIELDS = frozenset(
    {"id", "family", "level", "kind", "protocol", "requirement", "outcome", "gate", "strict", "schema_version",
     "level_when"}
)
_Item = TypeVar("_Item", Requirement, TestRecord, BaselineEntry)
# A registered secret this short is more likely to match our own markup than to leak
# through it; the data itself was already scrubbed field by field.
_GUARD_MIN_LENGTH = 8
# XML 1.0 forbids most control characters; evidence may carry raw bytes from a server.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def scrub_text(text: str) -> str:
    """Replace every registered secret in ``text`` with ``<redacted:NAME>``."""
    return REDACTOR.redact(text)


def _scrub_value(value: Any, key: str = "", *, mask_by_key: bool = False) -> Any:
    if isinstance(value, str):
        if mask_by_key and _SECRET_KEY.search(key) and value and not value.startswith("<redacted"):
            return f"<redacted:{key}>"
        return scrub_text(value)
    if isinstance(value, dict):
        return {scrub_text(str(k)): _scrub_value(v, str(k), mask_by_key=mask_by_key) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value(v, key, mask_by_key=mask_by_key) for v in value]
    return value


def scrub_target(target: dict[str, Any]) -> dict[str, Any]:
    """The target description with secrets redacted and credential-named values masked."""
    scrubbed = _scrub_value(target, mask_by_key=True)
    assert isinstance(scrubbed, dict)
    return scrubbed


def _scrub_fields(item: _Item) -> _Item:
    # Catalog IDs and enumerated values cannot carry a secret; redacting them
    # (a short key such as "pass" would match) would only corrupt the run.
    changes = {f.name: _scrub_value(getattr(item, f.name)) for f in dataclasses.fields(item)
               if f.name not in _CATALOG_FIELDS}
    return dataclasses.replace(item, **changes)


def scrub_run(run: RunResult) -> RunResult:
    """A copy of ``run`` in which every free-text string has been redacted (``scrubbed`` set)."""
    if run.scrubbed:
        return run
    return dataclasses.replace(
        run,
        run_id=scrub_text(run.run_id),
        started_at=scrub_text(run.started_at),
        finished_at=scrub_text(run.finished_at),
        suite_version=scrub_text(run.suite_version),
        target=scrub_target(run.target),
        target_version=_scrub_value(run.target_version),
        tool_versions=_scrub_value(run.tool_versions),
        requirements=[_scrub_fields(req) for req in run.requirements],
        records=[_scrub_fields(rec) for rec in run.records],
        baseline=[_scrub_fields(entry) for entry in run.baseline],
        extras=_scrub_value(run.extras),
        severity_threshold=_scrub_value(run.severity_threshold),
        scrubbed=True,
    )


def guard(text: str, escape: Callable[[str], str] = lambda s: s) -> str:
    """Last pass over a rendered file: any registered secret still present is replaced.

    ``escape`` renders the placeholder for the file's syntax (``<`` must not
    appear raw in XML or HTML text).
    """
    for secret in sorted(REDACTOR.secrets(), key=len, reverse=True):
        if len(secret) >= _GUARD_MIN_LENGTH and secret in text:
            text = text.replace(secret, escape(REDACTOR.redact(secret)))
    return text


def xml_safe(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry (each becomes U+FFFD)."""
    return _NOT_XML.sub("\ufffd", text)

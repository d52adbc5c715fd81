"""The reports' own line of defence against secrets reaching a file or a log.

The plugin redacts before it builds a :class:`~reports.model.RunResult`; this
module repeats the job on everything the writers emit, because a single leaked
API key in a published report is worse than any wrong verdict.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fixtures.secrets import REDACTOR
from reports.model import RunResult

# Target keys whose values are credentials by name even if nobody registered them.
_SECRET_KEY = re.compile(r"api[_-]?key|apikey|token|secret|passw|passphrase|jwt|bearer", re.IGNORECASE)
# Fields whose values come from the catalog or a fixed set, never from the target.
_CATALOG_FIELDS = frozenset(
    {"id", "family", "level", "kind", "protocol", "requirement", "outcome", "gate", "strict", "schema_version"}
)
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


def _scrub_entry(entry: dict[str, Any]) -> dict[str, Any]:
    # Catalog IDs and enumerated values cannot carry a secret; redacting them
    # (a short key such as "pass" would match) would only corrupt the run.
    return {k: v if k in _CATALOG_FIELDS else _scrub_value(v) for k, v in entry.items()}


def scrub_run(run: RunResult) -> RunResult:
    """A copy of ``run`` in which every free-text string has been redacted."""
    data = run.to_dict()
    clean: dict[str, Any] = {}
    for key, value in data.items():
        if key == "target":
            clean[key] = scrub_target(value)
        elif key in ("requirements", "records", "baseline"):
            clean[key] = [_scrub_entry(entry) for entry in value]
        elif key in _CATALOG_FIELDS:
            clean[key] = value
        else:
            clean[key] = _scrub_value(value)
    return RunResult.from_dict(clean)


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

"""Severity of a requirement's finding, and the numbers GitHub code scanning reads.

The catalog gives every requirement one of :data:`SEVERITIES` (rubric in
``fixtures/catalog/README.md``). A requirement without one (an older catalog)
is treated as at or above any threshold, so a missing field can never let a
failure through the gate.
"""

from __future__ import annotations

SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "info")
_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}

#: GitHub maps security-severity to a label: >= 9.0 critical, 7.0-8.9 high,
#: 4.0-6.9 medium, 0.1-3.9 low. ``info`` gets no number, so no label.
SECURITY_SEVERITY: dict[str, str] = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}


def severity_rank(severity: str | None) -> int:
    """0 for critical ... 4 for info; an unknown severity ranks with critical."""
    return _RANK.get(severity or "", 0)


def at_or_above(severity: str | None, threshold: str | None) -> bool:
    """Whether a finding of ``severity`` counts under ``--severity-threshold threshold``."""
    if threshold is None:
        return True
    return severity_rank(severity) <= _RANK[threshold]


def check_severity(value: object, where: str) -> str:
    """``value`` if it names a severity, else a one-line ``ValueError``."""
    if value not in _RANK:
        raise ValueError(f"{where}: severity must be one of {', '.join(SEVERITIES)}, not {value!r}")
    return str(value)

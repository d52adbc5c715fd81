"""The findings of a run: every failing, warning, erroring or waived requirement, most severe first.

``summary.md``, ``results.sarif`` and ``results.json`` (``findings[]``) all
list findings from here, so they agree on what is a finding, on its severity,
on whether it counts for the gate, and on the fix. :func:`observations` lists
the requirements that ended as ``info`` (``results.json`` ``observations[]``):
what the target showed, with the fix, but never a finding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qdrant_conformance.reports.baseline import ACCEPTED, EXPIRED
from qdrant_conformance.reports.model import WAIVED, Requirement, TestRecord
from qdrant_conformance.reports.severity import at_or_above, severity_rank
from qdrant_conformance.reports.verdicts import RequirementResult, Verdicts, is_failing

FINDING_OUTCOMES = ("error", "fail", "warning")
#: How pytest starts the message of the assertion or ``pytest.fail`` that recorded an observation.
_PYTEST_PREFIXES = ("AssertionError: ", "Failed: ")


def remediation_text(req: Requirement) -> str:
    """The catalog's fix (with the advisory or fix commit, when the requirement has one), or a plain
    statement that the catalog has none."""
    text = req.remediation.strip() or f"No remediation is recorded in the catalog for {req.id}."
    return f"{text} Advisory / upstream fix: {req.fix}." if req.fix else text


@dataclass(frozen=True)
class Finding:
    result: RequirementResult
    outcome: str  # error | fail | warning | waived
    gating: bool  # this finding alone breaks the gate's verdict

    @property
    def requirement(self) -> Requirement:
        return self.result.requirement

    @property
    def records(self) -> list[TestRecord]:
        return [r for r in self.result.records if r.outcome in FINDING_OUTCOMES]

    @property
    def waiver_note(self) -> str:
        status = self.result.baseline
        if status is None:
            return ""
        entry = status.entry
        who = f", owner {entry.owner}" if entry.owner else ""
        if status.status == ACCEPTED:
            until = f" until {entry.expires}" if entry.expires else " (no expiry: old baseline file)"
            return f"waived{until}{who}: {entry.reason}"
        if status.status == EXPIRED:
            return f"waiver EXPIRED on {entry.expires}{who}, no longer waives: {entry.reason}"
        return ""

    def to_dict(self) -> dict[str, Any]:
        req = self.requirement
        return {
            "requirement": req.id,
            "outcome": self.outcome,
            "severity": req.severity,
            "level": req.level,
            "kind": req.kind,
            "gating": self.gating,
            "text": req.text,
            "remediation": req.remediation,
            "advisory": req.fix,
            "waiver": self.waiver_note or None,
            "tests": [r.nodeid for r in self.records],
        }


def findings(verdicts: Verdicts) -> list[Finding]:
    """Findings most severe first; security before compatibility within a severity."""
    out = []
    for result in verdicts.results:
        if result.outcome not in FINDING_OUTCOMES:
            continue
        failing = is_failing(result.outcome, verdicts.strict)
        # An INFO requirement (an errored observation) never decides a verdict, so never the gate.
        gating = (
            failing
            and not result.accepted
            and result.requirement.level != "INFO"
            and at_or_above(result.requirement.severity, verdicts.severity_threshold)
        )
        out.append(Finding(result, WAIVED if result.accepted else result.outcome, gating))
    order = {"error": 0, "fail": 1, "warning": 2, WAIVED: 3}
    out.sort(
        key=lambda f: (
            f.outcome == WAIVED,
            severity_rank(f.requirement.severity),
            f.requirement.kind != "security",
            order[f.outcome],
            f.requirement.id,
        )
    )
    return out


@dataclass(frozen=True)
class Observation:
    """An INFO-level requirement whose tests recorded what they observed (outcome ``info``)."""

    result: RequirementResult

    @property
    def requirement(self) -> Requirement:
        return self.result.requirement

    @property
    def records(self) -> list[TestRecord]:
        return [r for r in self.result.records if r.outcome == "info"]

    @property
    def observed(self) -> list[str]:
        """Each info record's reason (what the target showed), without pytest's exception prefix."""
        return [_without_prefix(r.reason.strip()) for r in self.records if r.reason.strip()]

    @property
    def seen(self) -> str:
        """The first line of the first record's reason, or the requirement's text."""
        observed = self.observed
        return observed[0].splitlines()[0] if observed else self.requirement.text

    def to_dict(self) -> dict[str, Any]:
        req = self.requirement
        return {
            "requirement": req.id,
            "severity": req.severity,
            "kind": req.kind,
            "protocol": req.protocol,
            "text": req.text,
            "seen": self.observed,
            "remediation": req.remediation,
            "tests": [r.nodeid for r in self.records],
        }


def observations(verdicts: Verdicts) -> list[Observation]:
    """Requirements whose overall outcome is ``info``, in catalog order."""
    return [Observation(result) for result in verdicts.results if result.outcome == "info"]


def _without_prefix(reason: str) -> str:
    for prefix in _PYTEST_PREFIXES:
        reason = reason.removeprefix(prefix)
    return reason

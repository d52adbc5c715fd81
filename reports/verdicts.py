"""From test records to the two verdicts (the gate and the exit code they decide: :mod:`reports.gate`).

Each requirement x protocol cell aggregates its records with a fixed
precedence (error > fail > warning > info > pass > unsupported > disabled); a
requirement with no record is *not run*. INFO-level requirements record
observations (``info``): no verdict, gate or exit code counts them, not even
under ``--strict``. The **secure** verdict is decided by
security requirements only, **compatible with Qdrant vX.Y.Z** by compatibility
requirements only. A failure decides a verdict (*fails*); otherwise a MUST that
ended in error (the harness or the target could not show it) makes the verdict
*incomplete*: an unrun MUST is not a pass. A verdict with nothing that held is
*inconclusive*. Neither is ever a pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from qdrant_conformance.reports.baseline import (
    ACCEPTED,
    EXPIRED,
    NOT_COVERED,
    OTHER_TARGET,
    STALE,
    UNEXERCISED,
    UNKNOWN,
    BaselineStatus,
    load_baseline,
)
from qdrant_conformance.reports.model import (
    NOT_RUN,
    OUTCOMES,
    PROTOCOLS,
    WAIVED,
    BaselineEntry,
    Requirement,
    RunResult,
    TestRecord,
)
from qdrant_conformance.reports.waivers import is_expired, matches_target, run_date, target_names

__all__ = [
    "INCOMPLETE",
    "RequirementResult",
    "Verdict",
    "Verdicts",
    "aggregate",
    "compute_verdicts",
    "is_failing",
    "load_baseline",
]

HOLDS = "holds"
HOLDS_WITH_DEVIATIONS = "holds_with_deviations"
FAILS = "fails"
INCOMPLETE = "incomplete"
INCONCLUSIVE = "inconclusive"
VERDICT_STATUSES: tuple[str, ...] = (HOLDS, HOLDS_WITH_DEVIATIONS, FAILS, INCOMPLETE, INCONCLUSIVE)

#: Outcomes that mean the target was really exercised and answered.
EXERCISED: frozenset[str] = frozenset({"pass", "fail", "warning", "info"})
_PRECEDENCE = {outcome: rank for rank, outcome in enumerate(OUTCOMES)}


def aggregate(outcomes: Iterable[str]) -> str:
    """The outcome of a group of records; :data:`NOT_RUN` for an empty group."""
    ranked = sorted(set(outcomes), key=lambda o: _PRECEDENCE[o])
    return ranked[0] if ranked else NOT_RUN


def is_failing(outcome: str, strict: bool) -> bool:
    """Whether ``outcome`` breaks a verdict (a SHOULD-level warning does only when strict; ``info`` never)."""
    return outcome in ("error", "fail") or (strict and outcome == "warning")


def is_finding(outcome: str, strict: bool) -> bool:
    """Whether ``outcome`` is a finding about the target: a fail (a warning only when strict)."""
    return outcome == "fail" or (strict and outcome == "warning")


def has_finding(result: RequirementResult, strict: bool) -> bool:
    """A fail among the requirement's records, even when another record errored: a failure wins."""
    return is_finding(result.outcome, strict) or any(is_finding(r.outcome, strict) for r in result.records)


def leaves_unshown(result: RequirementResult, strict: bool) -> bool:
    """An errored requirement the verdict depends on: a MUST, or a SHOULD in a strict run."""
    return result.outcome == "error" and (result.requirement.level == "MUST" or strict)


@dataclass(frozen=True)
class RequirementResult:
    """One catalog requirement and what the run made of it."""

    requirement: Requirement
    outcome: str
    protocols: dict[str, str]
    records: list[TestRecord]
    baseline: BaselineStatus | None = None

    @property
    def accepted(self) -> bool:
        return self.baseline is not None and self.baseline.status == ACCEPTED

    @property
    def shown_outcome(self) -> str:
        """What reports show: ``waived`` for a failure an active waiver covers, else the outcome."""
        return WAIVED if self.accepted else self.outcome

    def to_dict(self) -> dict[str, Any]:
        return {
            "requirement": self.requirement.id,
            "kind": self.requirement.kind,
            "level": self.requirement.level,
            "severity": self.requirement.severity,
            "outcome": self.shown_outcome,
            "protocols": {p: self.protocols.get(p, NOT_RUN) for p in PROTOCOLS if p in self.protocols},
            "tests": len(self.records),
            "baseline": self.baseline.status if self.baseline else None,
        }


@dataclass(frozen=True)
class Verdict:
    """One of the two verdicts and the requirements that decide it."""

    name: str  # "secure" | "compatible"
    kind: str  # the requirement kind that decides it
    label: str  # "secure" / "compatible with Qdrant v1.12.0"
    status: str  # one of VERDICT_STATUSES
    headline: str  # what a reader sees first: "NOT SECURE"
    explanation: str  # one sentence naming the deciding requirements
    deciding: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    applicable: int = 0
    held: int = 0

    @property
    def holds(self) -> bool:
        return self.status in (HOLDS, HOLDS_WITH_DEVIATIONS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "label": self.label,
            "status": self.status,
            "holds": self.holds,
            "headline": self.headline,
            "explanation": self.explanation,
            "deciding": list(self.deciding),
            "accepted_deviations": list(self.accepted),
            "warnings": list(self.warnings),
            "applicable": self.applicable,
            "held": self.held,
        }


@dataclass(frozen=True)
class Verdicts:
    """Both verdicts plus the per-requirement results they were derived from."""

    secure: Verdict
    compatible: Verdict
    results: list[RequirementResult]
    unattributed: list[TestRecord]
    baseline: list[BaselineStatus]
    strict: bool
    severity_threshold: str | None = None

    def by_id(self) -> dict[str, RequirementResult]:
        return {r.requirement.id: r for r in self.results}

    def stale(self) -> list[BaselineStatus]:
        return [b for b in self.baseline if b.status == STALE]

    def all(self) -> tuple[Verdict, Verdict]:
        return (self.secure, self.compatible)


def version_label(target_version: str | None) -> str:
    if not target_version:
        return "Qdrant (unknown version)"
    v = target_version.strip()
    return f"Qdrant {v}" if v[:1] in ("v", "V") else f"Qdrant v{v}"


def _list_ids(ids: Sequence[str], limit: int = 4) -> str:
    if len(ids) <= limit:
        return ", ".join(ids)
    return f"{', '.join(ids[:limit])} and {len(ids) - limit} more"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _baseline_status(
    entry: BaselineEntry, result: RequirementResult | None, strict: bool, run: RunResult
) -> BaselineStatus:
    if result is None:
        return BaselineStatus(entry, UNKNOWN, NOT_RUN)
    outcome = result.outcome
    if not matches_target(entry, target_names(run.target)):
        return BaselineStatus(entry, OTHER_TARGET, outcome)
    if is_expired(entry, run_date(run.started_at)):
        return BaselineStatus(entry, EXPIRED, outcome)
    if outcome == "error":
        status = NOT_COVERED
    elif is_failing(outcome, strict):
        status = ACCEPTED
    elif outcome in ("pass", "warning", "info"):
        status = STALE
    else:
        status = UNEXERCISED
    return BaselineStatus(entry, status, outcome)


def _requirement_results(run: RunResult) -> tuple[list[RequirementResult], list[TestRecord]]:
    index = run.requirement_index()
    grouped: dict[str, list[TestRecord]] = {rid: [] for rid in index}
    unattributed: list[TestRecord] = []
    for record in run.records:
        if record.requirement in grouped:
            grouped[record.requirement].append(record)
        else:
            unattributed.append(record)
    results = []
    for req in run.requirements:
        records = grouped[req.id]
        by_protocol: dict[str, list[str]] = {}
        for record in records:
            by_protocol.setdefault(record.protocol or req.protocol, []).append(record.outcome)
        results.append(
            RequirementResult(
                requirement=req,
                outcome=aggregate(r.outcome for r in records),
                protocols={p: aggregate(outs) for p, outs in by_protocol.items()},
                records=records,
            )
        )
    return results, unattributed


def _verdict(
    name: str,
    kind: str,
    label: str,
    results: list[RequirementResult],
    unattributed: list[TestRecord],
    strict: bool,
) -> Verdict:
    # An INFO requirement records an observation: it never decides, holds or leaves a verdict unshown.
    rows = [r for r in results if r.requirement.kind == kind and r.requirement.level != "INFO"]
    applicable = [r for r in rows if r.outcome in EXERCISED or r.outcome == "error"]
    failing = [r for r in rows if has_finding(r, strict)]
    accepted = [r.requirement.id for r in failing if r.accepted]
    blocking = [r.requirement.id for r in failing if not r.accepted]
    # A record outside the catalog cannot be assigned to a kind; if it failed,
    # neither verdict may claim that everything held.
    blocking += [f"unattributed test {rec.nodeid}" for rec in unattributed if is_finding(rec.outcome, strict)]
    # An error is no finding about the target, but a MUST it leaves unshown is no pass either.
    unshown = [r.requirement.id for r in rows if leaves_unshown(r, strict) and not has_finding(r, strict)]
    unshown += [f"unattributed test {rec.nodeid}" for rec in unattributed if rec.outcome == "error"]
    should_errors = [r.requirement.id for r in rows if r.outcome == "error" and not leaves_unshown(r, strict)]
    held = [r for r in rows if r.outcome in ("pass", "warning") and not is_failing(r.outcome, strict)]
    warnings = [r.requirement.id for r in rows if r.outcome == "warning"]
    word = "security" if kind == "security" else "compatibility"
    positive = "SECURE" if name == "secure" else f"COMPATIBLE with {label.removeprefix('compatible with ')}"
    negative = "NOT " + positive
    incomplete = (
        "SECURITY INCOMPLETE"
        if name == "secure"
        else f"COMPATIBILITY INCOMPLETE: {label.removeprefix('compatible with ')}"
    )
    undecided = (
        "SECURITY INCONCLUSIVE"
        if name == "secure"
        else f"COMPATIBILITY INCONCLUSIVE: {label.removeprefix('compatible with ')}"
    )

    def make(status: str, headline: str, explanation: str, deciding: list[str]) -> Verdict:
        return Verdict(
            name=name,
            kind=kind,
            label=label,
            status=status,
            headline=headline,
            explanation=explanation,
            deciding=deciding,
            accepted=accepted,
            warnings=warnings,
            applicable=len(applicable),
            held=len(held),
        )

    if blocking:
        return make(
            FAILS,
            negative,
            f"{_plural(len(blocking), word + ' requirement')} failed: {_list_ids(blocking)}",
            blocking,
        )
    if unshown:
        parts = [f"{_plural(len(unshown), word + ' requirement')} could not be shown (error: the harness or "
                 f"target gave no definite answer): {_list_ids(unshown)}",
                 f"{len(held)} of {len(applicable)} applicable held"]
        if should_errors:
            parts.append(f"{_plural(len(should_errors), 'SHOULD-level error')}: {_list_ids(should_errors)}")
        return make(INCOMPLETE, incomplete, "; ".join(parts), unshown)
    if not held:
        counts: dict[str, int] = {}
        for r in rows:
            counts[r.outcome] = counts.get(r.outcome, 0) + 1
        detail = ", ".join(f"{n} {o}" for o, n in sorted(counts.items())) or "none in the catalog"
        extra = f"; {_plural(len(accepted), 'accepted deviation')} only" if accepted else ""
        return make(INCONCLUSIVE, undecided, f"no {word} requirement held in this run ({detail}{extra})", accepted)
    if accepted:
        parts = [
            f"{len(held)} of {len(applicable)} applicable {word} requirements held",
            f"{_plural(len(accepted), 'accepted deviation')}: {_list_ids(accepted)}",
        ]
    else:
        parts = [f"all {len(applicable)} applicable {word} requirements held"]
    if warnings:
        parts.append(_plural(len(warnings), "SHOULD-level warning"))
    if should_errors:
        parts.append(f"{_plural(len(should_errors), 'SHOULD-level error')}: {_list_ids(should_errors)}")
    # A verdict that holds must still say how much of the catalog it did not cover.
    skipped: dict[str, int] = {}
    for r in rows:
        if r.outcome in ("unsupported", "disabled", NOT_RUN):
            skipped[r.outcome] = skipped.get(r.outcome, 0) + 1
    if skipped:
        parts.append("not exercised: " + ", ".join(f"{n} {o}" for o, n in sorted(skipped.items())))
    if accepted:
        return make(HOLDS_WITH_DEVIATIONS, f"{positive} (with accepted deviations)", "; ".join(parts), accepted)
    return make(HOLDS, positive, "; ".join(parts), [])


def compute_verdicts(run: RunResult) -> Verdicts:
    """Aggregate the run's records and derive both verdicts and the baseline status."""
    results, unattributed = _requirement_results(run)
    by_id = {r.requirement.id: r for r in results}
    statuses = [_baseline_status(entry, by_id.get(entry.id), run.strict, run) for entry in run.baseline]
    # A requirement shows one waiver: the one that waives it, else an expired one, else the first.
    rank = {ACCEPTED: 0, EXPIRED: 1}
    for number, status in enumerate(statuses):
        if status.entry.id not in by_id:
            continue
        old = by_id[status.entry.id]
        if old.accepted and status.status == ACCEPTED:
            # Two waivers cover the same failure: the second one waives nothing.
            statuses[number] = status = BaselineStatus(status.entry, STALE, status.outcome)
        if old.baseline is None or rank.get(status.status, 9) < rank.get(old.baseline.status, 9):
            by_id[status.entry.id] = RequirementResult(
                old.requirement, old.outcome, old.protocols, old.records, baseline=status
            )
    results = [by_id[r.requirement.id] for r in results]
    secure = _verdict("secure", "security", "secure", results, unattributed, run.strict)
    compat_label = f"compatible with {version_label(run.target_version)}"
    compatible = _verdict("compatible", "compatibility", compat_label, results, unattributed, run.strict)
    return Verdicts(secure, compatible, results, unattributed, statuses, run.strict, run.severity_threshold)

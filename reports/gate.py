"""The gate: which verdicts decide the exit code, under which severity threshold, and the counts beside it.

:func:`exit_code` is the number a CI job reads (:class:`reports.exit_codes.ExitCode`);
:func:`gate_holds` and :func:`outcome_counts` are what every report shows next to it.
All of them read a run and the verdicts :func:`reports.verdicts.compute_verdicts`
derived from it, and compute nothing the verdicts already hold.
"""

from __future__ import annotations

from qdrant_conformance.reports.errors import ReportInputError
from qdrant_conformance.reports.exit_codes import ExitCode
from qdrant_conformance.reports.model import GATES, NOT_RUN, WAIVED, RunResult
from qdrant_conformance.reports.severity import at_or_above
from qdrant_conformance.reports.verdicts import (
    EXERCISED,
    FAILS,
    HOLDS,
    HOLDS_WITH_DEVIATIONS,
    INCONCLUSIVE,
    Verdict,
    Verdicts,
    is_failing,
)


def gated(verdicts: Verdicts, gate: str) -> list[Verdict]:
    """The verdicts a gate name selects."""
    if gate not in GATES:
        raise ReportInputError(f"unknown gate {gate!r} (choose one of {', '.join(GATES)})")
    if gate == "secure":
        return [verdicts.secure]
    if gate == "compatible":
        return [verdicts.compatible]
    return [verdicts.secure, verdicts.compatible]


def gating_status(verdict: Verdict, verdicts: Verdicts) -> str:
    """The verdict's status as the gate sees it under ``--severity-threshold``.

    A failing verdict stays failing for the gate only if a deciding finding is
    at or above the threshold (a requirement without a severity always is).
    Otherwise the gate judges what remains: held if anything held, else inconclusive.
    """
    threshold = verdicts.severity_threshold
    if threshold is None or verdict.status != FAILS:
        return verdict.status
    index = verdicts.by_id()
    if any(at_or_above(index[d].requirement.severity if d in index else None, threshold) for d in verdict.deciding):
        return FAILS
    return HOLDS if verdict.held else INCONCLUSIVE


def gate_holds(verdicts: Verdicts, gate: str = "secure") -> bool:
    """True when every verdict the gate selects holds; an inconclusive verdict never does."""
    return all(gating_status(v, verdicts) in (HOLDS, HOLDS_WITH_DEVIATIONS) for v in gated(verdicts, gate))


def nothing_ran(run: RunResult) -> bool:
    """No record shows the target answering a test (no pass, fail, warning or info)."""
    return not any(record.outcome in EXERCISED for record in run.records)


def exit_code(run: RunResult, verdicts: Verdicts) -> ExitCode:
    """0 the gate holds; 1 a gated verdict fails; 3 nothing ran, or a gated verdict is incomplete or inconclusive.

    An incomplete or inconclusive gate means the run could not tell (a MUST
    errored, or nothing held), which is a harness outcome (3), not a finding
    about the target (1). A failure anywhere in the gate wins: 1.
    """
    if nothing_ran(run):
        return ExitCode.INCOMPLETE
    selected = [gating_status(v, verdicts) for v in gated(verdicts, run.gate)]
    if all(status in (HOLDS, HOLDS_WITH_DEVIATIONS) for status in selected):
        return ExitCode.GATE_HOLDS
    if FAILS in selected:
        return ExitCode.NOT_CONFORMANT
    return ExitCode.INCOMPLETE


def outcome_counts(run: RunResult, verdicts: Verdicts) -> dict[str, int]:
    """Records per outcome, plus requirements that were not run at all."""
    counts = {outcome: 0 for outcome in ("pass", "fail", "warning", "info", "unsupported", "disabled", "error", WAIVED)}
    waived = {r.requirement.id for r in verdicts.results if r.accepted}
    for record in run.records:
        if record.requirement in waived and is_failing(record.outcome, run.strict):
            counts[WAIVED] += 1
        else:
            counts[record.outcome] += 1
    counts["not_run"] = sum(1 for r in verdicts.results if r.outcome == NOT_RUN)
    return counts

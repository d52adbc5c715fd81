"""The short terminal summary a CI log shows at the end of a run."""

from __future__ import annotations

from pathlib import Path

from reports.baseline import ACCEPTED, NOT_COVERED, STALE
from reports.extras import describe_extra
from reports.model import RunResult
from reports.scrub import scrub_text
from reports.verdicts import Verdict, Verdicts, exit_code, gate_holds, outcome_counts

_MAX_WARNINGS = 3
_MAX_EXTRAS = 3
_MAX_WIDTH = 160


def _ids(ids: list[str], limit: int = 4) -> str:
    if len(ids) <= limit:
        return ", ".join(ids)
    return f"{', '.join(ids[:limit])} and {len(ids) - limit} more"


def _clip(text: str, width: int = _MAX_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _verdict_line(verdict: Verdict) -> str:
    return f"verdict: {verdict.headline} — {verdict.explanation}"


def summary_lines(run: RunResult, verdicts: Verdicts, report_dir: str | Path | None) -> list[str]:
    """About a dozen plain lines: verdicts, gate, counts, warnings, baseline, extras, report path."""
    lines = [_verdict_line(verdicts.secure), _verdict_line(verdicts.compatible)]
    code = exit_code(run, verdicts)
    if code == 3 and not any(r.outcome in ("pass", "fail", "warning") for r in run.records):
        gate = f"gate ({run.gate}): nothing ran — no test passed or failed against the target (exit 3)"
    else:
        state = "holds" if gate_holds(verdicts, run.gate) else "does not hold"
        gate = f"gate ({run.gate}{', strict' if run.strict else ''}): {state} (exit {code})"
    lines.append(gate)

    counts = outcome_counts(run, verdicts)
    tests = ", ".join(f"{counts[o]} {o}" for o in ("pass", "fail", "warning", "error", "unsupported", "disabled"))
    lines.append(f"tests: {len(run.records)} ({tests}); requirements not run: {counts['not_run']}")
    if verdicts.unattributed:
        lines.append(
            f"{len(verdicts.unattributed)} tests name no catalog requirement: "
            f"{_ids([r.nodeid for r in verdicts.unattributed], 2)}"
        )

    warned = [r for r in verdicts.results if r.outcome == "warning"]
    for result in warned[:_MAX_WARNINGS]:
        req = result.requirement
        lines.append(_clip(f"warning {req.id} ({req.level}, {req.protocol}): {req.text}"))
    if len(warned) > _MAX_WARNINGS:
        lines.append(f"… and {len(warned) - _MAX_WARNINGS} more warnings (see the report)")

    accepted = [b.entry.id for b in verdicts.baseline if b.status == ACCEPTED]
    stale = [b.entry.id for b in verdicts.baseline if b.status == STALE]
    errored = [b.entry.id for b in verdicts.baseline if b.status == NOT_COVERED]
    if verdicts.baseline:
        noun = "accepted deviation" if len(accepted) == 1 else "accepted deviations"
        parts = [f"{len(accepted)} {noun}" + (f" ({_ids(accepted)})" if accepted else "")]
        if stale:
            parts.append(f"STALE, now holding — remove from the baseline: {_ids(stale)}")
        if errored:
            parts.append(f"errored, not covered by the baseline: {_ids(errored)}")
        idle = [b.entry.id for b in verdicts.baseline if b.status not in (ACCEPTED, STALE, NOT_COVERED)]
        if idle:
            parts.append(f"not exercised in this run: {_ids(idle)}")
        lines.append(_clip("baseline: " + "; ".join(parts)))

    extras = list(run.extras.items())
    for key, value in extras[:_MAX_EXTRAS]:
        lines.append(_clip(describe_extra(str(key), value)))
    if len(extras) > _MAX_EXTRAS:
        lines.append(f"… and {len(extras) - _MAX_EXTRAS} more figures in results.json")

    if report_dir is not None:
        lines.append(f"report: {Path(report_dir) / 'report.html'}")
    return [scrub_text(line) for line in lines]

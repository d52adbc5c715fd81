"""The short terminal summary a CI log shows at the end of a run."""

from __future__ import annotations

from pathlib import Path

from qdrant_conformance.reports.baseline import ACCEPTED, EXPIRED, NOT_COVERED, OTHER_TARGET, STALE
from qdrant_conformance.reports.exit_codes import ExitCode
from qdrant_conformance.reports.extras import describe_extra
from qdrant_conformance.reports.findings import observations
from qdrant_conformance.reports.gate import exit_code, gate_holds, nothing_ran, outcome_counts
from qdrant_conformance.reports.model import RunResult
from qdrant_conformance.reports.scrub import scrub_text
from qdrant_conformance.reports.severity import at_or_above
from qdrant_conformance.reports.verdicts import Verdict, Verdicts, is_failing

_MAX_WARNINGS = 3
_MAX_INFO = 3
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


def _below_threshold(verdicts: Verdicts) -> list[str]:
    """Failing, unwaived requirements the gate ignores because of --severity-threshold."""
    if verdicts.severity_threshold is None:
        return []
    return [
        r.requirement.id
        for r in verdicts.results
        if is_failing(r.outcome, verdicts.strict)
        and not r.accepted
        and not at_or_above(r.requirement.severity, verdicts.severity_threshold)
    ]


def summary_lines(run: RunResult, verdicts: Verdicts, report_dir: str | Path | None) -> list[str]:
    """About a dozen plain lines: verdicts, gate, counts, warnings, info, baseline, extras, report path."""
    lines = [_verdict_line(verdicts.secure), _verdict_line(verdicts.compatible)]
    code = exit_code(run, verdicts)
    if code == ExitCode.INCOMPLETE and nothing_ran(run):
        gate = f"gate ({run.gate}): nothing ran — no test passed or failed against the target (exit 3)"
    else:
        state = "holds" if gate_holds(verdicts, run.gate) else "does not hold"
        threshold = f", severity >= {run.severity_threshold}" if run.severity_threshold else ""
        gate = f"gate ({run.gate}{', strict' if run.strict else ''}{threshold}): {state} (exit {code})"
    lines.append(gate)

    counts = outcome_counts(run, verdicts)
    shown = ("pass", "fail", "warning", "info", "error", "unsupported", "disabled")
    tests = ", ".join(f"{counts[o]} {o}" for o in shown)
    if counts["waived"]:
        tests += f", {counts['waived']} waived"
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

    # Observations: what the target showed, never a finding (no verdict or exit code counts them).
    seen = observations(verdicts)
    for item in seen[:_MAX_INFO]:
        req = item.requirement
        lines.append(_clip(f"info: {req.id} ({req.protocol}): {item.seen}"))
    if len(seen) > _MAX_INFO:
        lines.append(f"… and {len(seen) - _MAX_INFO} more info (see the report)")

    accepted = [b.entry.id for b in verdicts.baseline if b.status == ACCEPTED]
    stale = [b.entry.id for b in verdicts.baseline if b.status == STALE]
    errored = [b.entry.id for b in verdicts.baseline if b.status == NOT_COVERED]
    expired = [f"{b.entry.id} (expired {b.entry.expires})" for b in verdicts.baseline if b.status == EXPIRED]
    if verdicts.baseline:
        parts = [f"{len(accepted)} waived" + (f" ({_ids(accepted)})" if accepted else "")]
        if expired:
            parts.append(f"EXPIRED, no longer waiving: {_ids(expired, 2)}")
        if stale:
            parts.append(f"STALE, matching no failure — remove: {_ids(stale)}")
        if errored:
            parts.append(f"errored, a waiver does not cover a harness error: {_ids(errored)}")
        done = (ACCEPTED, STALE, NOT_COVERED, EXPIRED, OTHER_TARGET)
        idle = [b.entry.id for b in verdicts.baseline if b.status not in done]
        if idle:
            parts.append(f"not exercised in this run: {_ids(idle)}")
        others = sum(1 for b in verdicts.baseline if b.status == OTHER_TARGET)
        if others:
            parts.append(f"{others} for other targets")
        lines.append(_clip("waivers: " + "; ".join(parts)))
        legacy = [b.entry.id for b in verdicts.baseline if b.entry.legacy]
        if legacy:
            lines.append(
                _clip(
                    f"note: {len(legacy)} waiver(s) come from an old baseline file without expiry (deprecated): "
                    "move them to a --waivers file with expires and owner"
                )
            )
    below = _below_threshold(verdicts)
    if below:
        lines.append(_clip(f"below --severity-threshold {run.severity_threshold} (not gating): {_ids(below)}"))

    extras = list(run.extras.items())
    for key, value in extras[:_MAX_EXTRAS]:
        lines.append(_clip(describe_extra(str(key), value)))
    if len(extras) > _MAX_EXTRAS:
        lines.append(f"… and {len(extras) - _MAX_EXTRAS} more figures in results.json")

    if report_dir is not None:
        lines.append(f"report: {Path(report_dir) / 'report.html'} (also summary.md, results.sarif)")
    return [scrub_text(line) for line in lines]

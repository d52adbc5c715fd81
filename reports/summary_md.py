"""``summary.md``: the verdict and a table of findings with their fixes, for a PR or a CI step summary.

Short by design: the verdicts, the gate, one row per finding (severity,
requirement, outcome, what was seen, remediation), a short list of
observations (``info``: never findings), and the waivers that need attention.
``report.html`` has the evidence.
"""

from __future__ import annotations

import os
from pathlib import Path

from qdrant_conformance.reports.baseline import (
    ACCEPTED,
    EXPIRED,
    NOT_COVERED,
    OTHER_TARGET,
    STALE,
    UNEXERCISED,
    UNKNOWN,
)
from qdrant_conformance.reports.findings import findings, observations, remediation_text
from qdrant_conformance.reports.gate import exit_code, gate_holds, outcome_counts
from qdrant_conformance.reports.labels import target_label
from qdrant_conformance.reports.markdown import md, md_escape_guard, md_table
from qdrant_conformance.reports.model import RunResult
from qdrant_conformance.reports.scrub import guard
from qdrant_conformance.reports.verdicts import HOLDS, HOLDS_WITH_DEVIATIONS, Verdicts, version_label

_MAX_ROWS = 40
_MAX_INFO = 10
_MARK = {HOLDS: "✅", HOLDS_WITH_DEVIATIONS: "✅", "fails": "❌", "inconclusive": "⚠️"}
_WAIVER_TEXT = {
    ACCEPTED: "waives a failure",
    EXPIRED: "EXPIRED: no longer waives",
    STALE: "stale: matches no failure, remove it",
    UNEXERCISED: "not exercised in this run",
    NOT_COVERED: "requirement errored: a waiver does not cover a harness error",
    UNKNOWN: "unknown requirement",
    OTHER_TARGET: "scoped to other targets",
}


def _first_reason(finding_records: list[str]) -> str:
    return finding_records[0] if finding_records else ""


def render_summary_md(run: RunResult, verdicts: Verdicts) -> str:
    """The Markdown text (``run`` must already be scrubbed)."""
    code = exit_code(run, verdicts)
    holds = gate_holds(verdicts, run.gate)
    lines = [f"## Qdrant security conformance: {md(target_label(run))}", ""]
    for verdict in verdicts.all():
        lines.append(f"- {_MARK.get(verdict.status, '')} **{md(verdict.headline)}**: {md(verdict.explanation)}")
    threshold = f", findings of severity {run.severity_threshold} or above" if run.severity_threshold else ""
    lines.append(
        f"- Gate `{run.gate}`{' (strict)' if run.strict else ''}{threshold}: "
        f"**{'holds' if holds else 'does not hold'}** (exit {code})"
    )
    counts = outcome_counts(run, verdicts)
    shown = ("pass", "fail", "warning", "info", "error", "waived", "unsupported", "disabled")
    lines.append(
        f"- {version_label(run.target_version)} · run `{md(run.run_id)}` · tests: "
        + ", ".join(f"{counts[o]} {o}" for o in shown)
    )
    lines.append("")
    found = findings(verdicts)
    if found:
        lines += [f"### Findings ({len(found)})", ""]
        rows = []
        for finding in found[:_MAX_ROWS]:
            req = finding.requirement
            seen = [r.reason.strip().splitlines()[0] for r in finding.records if r.reason.strip()]
            what = _first_reason(seen) or req.text
            gate = "gating" if finding.gating else "not gating"
            note = f" ({finding.waiver_note})" if finding.waiver_note else ""
            rows.append(
                [
                    f"**{md(req.severity or 'unrated')}**",
                    f"`{md(req.id)}` {md(req.level)} {md(req.kind)}",
                    f"{md(finding.outcome)}, {gate}{md(note)}",
                    md(what),
                    md(remediation_text(req)),
                ]
            )
        lines += md_table(["Severity", "Requirement", "Outcome", "Seen", "Remediation"], rows)
        if len(found) > _MAX_ROWS:
            lines.append(f"\n… and {len(found) - _MAX_ROWS} more in report.html.")
        lines.append("")
    else:
        lines += ["No failure, warning or error in this run.", ""]
    observed = observations(verdicts)
    if observed:
        lines += [f"### Information ({len(observed)}): observations, not findings", ""]
        for item in observed[:_MAX_INFO]:
            req = item.requirement
            lines.append(f"- info: `{md(req.id)}` ({md(req.protocol)}): {md(item.seen.rstrip('.'))}. "
                         f"Remediation: {md(remediation_text(req))}")
        if len(observed) > _MAX_INFO:
            lines.append(f"- … and {len(observed) - _MAX_INFO} more in report.html.")
        lines.append("")
    attention = [b for b in verdicts.baseline if b.status != ACCEPTED or b.entry.legacy]
    if verdicts.baseline:
        lines += [f"### Waivers ({len(verdicts.baseline)})", ""]
        lines += md_table(
            ["Requirement", "Target", "Status", "Expires", "Owner", "Reason"],
            [
                [
                    f"`{md(b.entry.id)}`",
                    md(b.entry.target or "any"),
                    md(_WAIVER_TEXT[b.status]),
                    md(b.entry.expires or "never (old baseline file, deprecated)"),
                    md(b.entry.owner or "-"),
                    md(b.entry.reason),
                ]
                for b in verdicts.baseline
            ],
        )
        lines.append("")
        if any(b.entry.legacy for b in attention):
            lines += [
                "Entries without expiry come from an old baseline file, which is deprecated: "
                "move them to a `--waivers` file with `expires` and `owner`.",
                "",
            ]
    lines.append("Files: `report.html` (evidence), `results.sarif`, `results.json`, `junit.xml`.")
    return guard("\n".join(lines) + "\n", md_escape_guard)


def append_step_summary(text: str, environ: dict[str, str] | None = None) -> Path | None:
    """Append ``text`` to ``$GITHUB_STEP_SUMMARY`` when that variable is set; return its path."""
    env = os.environ if environ is None else environ
    target = env.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text if text.endswith("\n") else text + "\n")
    return path

"""``report.html``: the verdicts, the target, the matrix and every finding on one page."""

from __future__ import annotations

import html
import json
from typing import Any

from qdrant_conformance.reports.baseline import (
    ACCEPTED,
    EXPIRED,
    NOT_COVERED,
    OTHER_TARGET,
    STALE,
    UNEXERCISED,
    UNKNOWN,
)
from qdrant_conformance.reports.extras import describe_extra
from qdrant_conformance.reports.findings import Finding, Observation, observations, remediation_text
from qdrant_conformance.reports.gate import exit_code, gate_holds, outcome_counts
from qdrant_conformance.reports.html_style import (
    OUTCOME_CLASS,
    OUTCOME_MEANING,
    VERDICT_CLASS,
    badge,
    e,
    page,
    severity_tag,
)
from qdrant_conformance.reports.labels import target_label
from qdrant_conformance.reports.model import NOT_RUN, PROTOCOLS, RunResult, TestRecord
from qdrant_conformance.reports.scrub import guard
from qdrant_conformance.reports.severity import severity_rank
from qdrant_conformance.reports.verdicts import RequirementResult, Verdict, Verdicts, is_failing, version_label

_PROTOCOL_TITLE = {"rest": "REST", "grpc": "gRPC", "p2p": "p2p", "any": "any"}
_FINDING_OUTCOMES = ("error", "fail", "warning")
_BASELINE_TEXT = {
    ACCEPTED: "waived",
    STALE: "stale waiver: matches no failure, remove it",
    UNEXERCISED: "waiver not exercised in this run",
    NOT_COVERED: "errored: a waiver does not cover a harness error",
    UNKNOWN: "unknown requirement",
    EXPIRED: "waiver expired: no longer waives",
    OTHER_TARGET: "waiver for other targets",
}


def _anchor(deciding: str) -> str:
    """Where a deciding entry is explained: its finding, or the block of tests outside the catalog."""
    return "finding-unattributed" if deciding.startswith("unattributed") else f"finding-{e(deciding)}"


def _verdict_card(verdict: Verdict) -> str:
    cls = VERDICT_CLASS.get(verdict.status, "v-inconclusive")
    ids = "".join(f'<a href="#{_anchor(i)}"><code>{e(i)}</code></a>' for i in verdict.deciding[:12])
    more = f" and {len(verdict.deciding) - 12} more" if len(verdict.deciding) > 12 else ""
    ids_html = f'<div class="ids">{ids}{e(more)}</div>' if ids else ""
    return (
        f'<section class="verdict {cls}" id="verdict-{e(verdict.name)}">'
        f'<div class="eyebrow">{"Security verdict" if verdict.name == "secure" else "Compatibility verdict"}</div>'
        f'<div class="status">{e(verdict.headline)}</div>'
        f"<p>{e(verdict.explanation)}.</p>{ids_html}</section>"
    )


def _kv_table(rows: list[tuple[str, Any]]) -> str:
    cells = []
    for key, value in rows:
        shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        cells.append(f"<tr><th>{e(key)}</th><td class='mono'>{e(shown)}</td></tr>")
    return f'<table class="kv">{"".join(cells)}</table>'


def _counts(run: RunResult, verdicts: Verdicts) -> str:
    counts = outcome_counts(run, verdicts)
    order = [("pass", "pass"), ("fail", "fail"), ("warning", "warning"), ("info", "info"), ("error", "error")]
    order += [("waived", "waived"), ("unsupported", "unsupported"), ("disabled", "disabled"), ("not_run", NOT_RUN)]
    chips = []
    for key, outcome in order:
        label = "requirements not run" if key == "not_run" else f"{outcome} tests"
        cls = OUTCOME_CLASS[outcome]
        chips.append(
            f'<div class="count {cls}"><span class="n">{counts[key]}</span><span class="l">{e(label)}</span></div>'
        )
    return f'<div class="counts">{"".join(chips)}</div>'


def _cell(result: RequirementResult, protocol: str) -> str:
    outcome = result.protocols.get(protocol)
    if outcome is None and result.outcome == NOT_RUN:
        declared = result.requirement.protocol
        if protocol == declared:
            outcome = NOT_RUN
    if outcome is None:
        return '<td class="cell o-none">·</td>'
    tests = [r for r in result.records if (r.protocol or result.requirement.protocol) == protocol]
    # The tooltip carries the reasons (e.g. both versions for an unsupported test) without JS.
    title = (
        "\n".join(f"{r.outcome}: {r.nodeid}" + (f" ({r.reason})" if r.reason else "") for r in tests[:8])
        or OUTCOME_MEANING[outcome]
    )
    if result.accepted and is_failing(outcome, strict=True) and outcome != "error":
        outcome = "waived"
    return f'<td class="cell" title="{e(title)}">{badge(outcome)}</td>'


def _matrix(verdicts: Verdicts) -> str:
    head = "".join(f"<th>{_PROTOCOL_TITLE[p]}</th>" for p in PROTOCOLS)
    rows = []
    family = None
    for result in verdicts.results:
        req = result.requirement
        if req.family != family:
            family = req.family
            rows.append(f'<tr class="family"><th colspan="{3 + len(PROTOCOLS)}">{e(family)}</th></tr>')
        level_cls = "tag must" if req.level == "MUST" else "tag"
        extra = ""
        if result.baseline is not None:
            cls = "tag accepted" if result.baseline.status == ACCEPTED else "tag stale"
            extra = f' <span class="{cls}">{e(_BASELINE_TEXT[result.baseline.status])}</span>'
        cells = "".join(_cell(result, p) for p in PROTOCOLS)
        rows.append(
            f'<tr id="req-{e(req.id)}"><td><div class="rid mono">{e(req.id)} {severity_tag(req.severity)}{extra}</div>'
            f'<div class="rtext">{e(req.text)}</div></td>'
            f'<td><span class="{level_cls}">{e(req.level)}</span></td>'
            f'<td class="meta">{e(req.kind)}</td>{cells}</tr>'
        )
    return (
        '<table class="grid" id="matrix"><thead><tr><th>Requirement</th><th>Level</th><th>Kind</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _test_block(record: TestRecord) -> str:
    evidence = ""
    if record.evidence:
        evidence = '<pre class="evidence">' + e("\n".join(record.evidence)) + "</pre>"
    else:
        evidence = '<p class="meta">No exchange was recorded for this test.</p>'
    profile = f" · profile <code>{e(record.profile)}</code>" if record.profile else ""
    reason = f"<p>{e(record.reason)}</p>" if record.reason else ""
    return (
        f'<div class="test">{badge(record.outcome)} <code>{e(record.nodeid)}</code>'
        f'<span class="meta"> · {e(record.protocol or "-")}{profile} · {record.duration:.2f} s</span>'
        f"{reason}{evidence}</div>"
    )


def _finding(result: RequirementResult, strict: bool) -> str:
    req = result.requirement
    shown = [r for r in result.records if r.outcome in _FINDING_OUTCOMES]
    others = len(result.records) - len(shown)
    level_cls = "tag must" if req.level == "MUST" else "tag"
    tags = severity_tag(req.severity)
    tags += f'<span class="{level_cls}">{e(req.level)}</span><span class="tag">{e(req.kind)}</span>'
    tags += f'<span class="tag">{e(req.protocol)}</span>'
    if result.baseline is not None:
        tags += f'<span class="tag accepted">{e(_BASELINE_TEXT[result.baseline.status])}</span>'
    note = ""
    if result.outcome == "warning" and not strict:
        note = '<p class="meta">SHOULD-level: reported as a warning; it fails the run only with --strict.</p>'
    waiver = Finding(result, "", False).waiver_note
    if waiver:
        note += f"<p><b>Waiver:</b> {e(waiver)}</p>"
    note += f'<p class="remedy"><b>Remediation:</b> {e(remediation_text(req))}</p>'
    rest = f'<p class="meta">{others} other test(s) for this requirement did not fail.</p>' if others else ""
    frame = "accepted" if result.accepted else e(result.outcome)
    return (
        f'<article class="finding f-{frame}" id="finding-{e(req.id)}"><header>'
        f'{badge(result.shown_outcome)}<h3 class="mono">{e(req.id)}</h3>{tags}</header><div class="body">'
        f"<p>{e(req.text)}</p>"
        f'<p class="meta">Source: {e(req.source or "not given")} · since {e(req.since or "?")}'
        f"{' · until ' + e(req.until) if req.until else ''}</p>{note}"
        f"{''.join(_test_block(r) for r in shown)}{rest}</div></article>"
    )


def _findings(verdicts: Verdicts) -> str:
    ranked = sorted(
        (r for r in verdicts.results if r.outcome in _FINDING_OUTCOMES),
        # Open findings before waived ones, the most severe first, security before compatibility.
        key=lambda r: (
            r.accepted,
            severity_rank(r.requirement.severity),
            r.requirement.kind != "security",
            _FINDING_OUTCOMES.index(r.outcome),
        ),
    )
    parts = [_finding(r, verdicts.strict) for r in ranked]
    stray = [r for r in verdicts.unattributed if r.outcome in _FINDING_OUTCOMES]
    if stray:
        parts.append(
            '<article class="finding f-error" id="finding-unattributed"><header>'
            f'{badge("error")}<h3>Tests outside the requirement catalog</h3></header><div class="body">'
            "<p>These tests name no catalog requirement, so neither verdict can count them as held.</p>"
            f"{''.join(_test_block(r) for r in stray)}</div></article>"
        )
    if not parts:
        return '<p class="sub">No failure, warning or error in this run.</p>'
    return "".join(parts)


def _observation(item: Observation) -> str:
    req = item.requirement
    tags = severity_tag(req.severity) + f'<span class="tag">{e(req.level)}</span><span class="tag">{e(req.kind)}</span>'
    tags += f'<span class="tag">{e(req.protocol)}</span>'
    return (
        f'<article class="finding f-info" id="info-{e(req.id)}"><header>{badge("info")}'
        f'<h3 class="mono">{e(req.id)}</h3>{tags}</header><div class="body"><p>{e(req.text)}</p>'
        f'<p class="meta">Source: {e(req.source or "not given")}</p>'
        "<p>An observation: no verdict, gate or exit code counts it, not even under --strict.</p>"
        f'<p class="remedy"><b>Remediation:</b> {e(remediation_text(req))}</p>'
        f"{''.join(_test_block(r) for r in item.records)}</div></article>"
    )


def _observations(verdicts: Verdicts) -> str:
    seen = observations(verdicts)
    if not seen:
        return ""
    return (
        "<h2>Information</h2>"
        '<p class="sub">What the target showed that is neither a pass nor a finding: an unauthenticated caller '
        "learns its version, a browser page may call it, ...</p>" + "".join(_observation(item) for item in seen)
    )


def _baseline(verdicts: Verdicts) -> str:
    if not verdicts.baseline:
        return ""
    rows = "".join(
        f"<tr><td class='mono rid'>{e(b.entry.id)}</td><td>{badge(b.outcome)}</td>"
        f"<td>{e(_BASELINE_TEXT[b.status])}</td><td class='mono'>{e(b.entry.target or 'any')}</td>"
        f"<td class='mono'>{e(b.entry.expires or 'never (old baseline file, deprecated)')}</td>"
        f"<td>{e(b.entry.owner or '-')}</td><td>{e(b.entry.reason)}</td></tr>"
        for b in verdicts.baseline
    )
    return (
        "<h2>Waivers</h2>"
        '<table class="grid" id="baseline"><thead><tr><th>Requirement</th><th>Outcome</th><th>Status</th>'
        "<th>Target</th><th>Expires</th><th>Owner</th>"
        f"<th>Reason given</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _legend() -> str:
    rows = "".join(f"<div>{badge(o)}</div><div>{e(m)}</div>" for o, m in OUTCOME_MEANING.items())
    return f'<div class="legend">{rows}</div>'


def render_html(run: RunResult, verdicts: Verdicts) -> str:
    """The report page (``run`` must already be scrubbed; every value is escaped here)."""
    code = exit_code(run, verdicts)
    holds = gate_holds(verdicts, run.gate)
    gate = (
        f'<div class="gate"><span><b>Gate:</b> {e(run.gate)}</span>'
        f"<span><b>Result:</b> {'holds' if holds else 'does not hold'} (exit {code})</span>"
        f"<span><b>Severity threshold:</b> {e(run.severity_threshold or 'none: every failure counts')}</span>"
        f"<span><b>Strict:</b> {'on: SHOULD findings fail' if run.strict else 'off: SHOULD findings warn'}</span>"
        f"<span><b>Run:</b> <code>{e(run.run_id)}</code></span></div>"
    )
    target_rows: list[tuple[str, Any]] = [("version reported", version_label(run.target_version))]
    target_rows += sorted(run.target.items())
    run_rows: list[tuple[str, Any]] = [
        ("suite", run.suite_version),
        ("started", run.started_at),
        ("finished", run.finished_at),
    ]
    run_rows += sorted(run.tool_versions.items())
    extras = ""
    if run.extras:
        extras = "<h2>Other figures</h2>" + _kv_table(
            [(k.replace("_", " "), describe_extra(k, v).split(": ", 1)[-1]) for k, v in sorted(run.extras.items())]
        )
    body = (
        "<main>"
        '<div class="eyebrow">Qdrant security conformance report</div>'
        f"<h1>{e(target_label(run))}</h1>"
        f'<p class="sub">{e(version_label(run.target_version))} · run {e(run.run_id)} · '
        f"{e(run.started_at)} → {e(run.finished_at)}</p>"
        f'<div class="verdicts">{_verdict_card(verdicts.secure)}{_verdict_card(verdicts.compatible)}</div>'
        f"{gate}{_counts(run, verdicts)}"
        '<h2>Target and tools</h2><div class="cols">'
        f"<div>{_kv_table(target_rows)}</div><div>{_kv_table(run_rows)}</div></div>"
        f"{extras}"
        "<h2>Requirements &times; protocol</h2>"
        '<p class="sub">One row per catalog requirement. A cell aggregates every test of that requirement on '
        "that protocol: error, then fail, then warning, then info, then pass, then unsupported, then disabled.</p>"
        f"{_matrix(verdicts)}"
        f"<h2>Failures, warnings and errors</h2>{_findings(verdicts)}"
        f"{_observations(verdicts)}"
        f"{_baseline(verdicts)}"
        f"<h2>What the outcomes mean</h2>{_legend()}"
        f"<footer>Generated by qdrant-security-conformance {e(run.suite_version)}. Secrets are shown as "
        "&lt;redacted:NAME&gt;. Verdict rules: see reports/README.md.</footer>"
        "</main>"
    )
    return guard(page(f"Qdrant security conformance: {target_label(run)}", body), html.escape)

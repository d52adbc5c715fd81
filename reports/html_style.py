"""Markup helpers and the one stylesheet shared by report.html and compare.html.

Pages are self-contained: inline CSS, no script, no external URL, so a report
can be attached to a ticket or opened from an air-gapped CI artifact.
"""

from __future__ import annotations

import html

from qdrant_conformance.reports.scrub import scrub_text

#: Outcome → CSS class; every cell also carries the outcome as text, never colour alone.
OUTCOME_CLASS = {
    "pass": "o-pass",
    "fail": "o-fail",
    "warning": "o-warning",
    "info": "o-info",
    "error": "o-error",
    "unsupported": "o-unsupported",
    "disabled": "o-disabled",
    "not run": "o-notrun",
    "waived": "o-waived",
}

#: Severity → CSS class, for the severity tags and the fleet view's cells.
SEVERITY_CLASS = {
    "critical": "s-critical",
    "high": "s-high",
    "medium": "s-medium",
    "low": "s-low",
    "info": "s-info",
}

VERDICT_CLASS = {
    "holds": "v-holds",
    "holds_with_deviations": "v-deviations",
    "fails": "v-fails",
    "incomplete": "v-inconclusive",
    "inconclusive": "v-inconclusive",
}

OUTCOME_MEANING = {
    "pass": "the target behaved as the requirement says",
    "fail": "it did not",
    "warning": "a SHOULD-level requirement was not met (a failure under --strict)",
    "info": "an observation (what the target discloses or allows by default): never a finding, even under --strict",
    "error": "the harness could not decide (setup failure, crash); never a pass",
    "unsupported": "the target's version predates or postdates the behaviour, or it validly refuses it",
    "disabled": "not exercised in this configuration (profile not selected)",
    "not run": "no test produced a result for this requirement",
    "waived": "it failed, and an active waiver (reason, owner, expiry) accepts that; the gate is not broken",
}


def e(value: object) -> str:
    """Redact, then HTML-escape, any value for use in text or a quoted attribute."""
    return html.escape(scrub_text(str(value)), quote=True)


def severity_tag(severity: str | None) -> str:
    cls = SEVERITY_CLASS.get(severity or "", "s-unrated")
    return f'<span class="sev {cls}">{e(severity or "unrated")}</span>'


def badge(outcome: str, text: str | None = None) -> str:
    cls = OUTCOME_CLASS.get(outcome, "o-notrun")
    return f'<span class="badge {cls}">{e(text or outcome)}</span>'


def page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(title)}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


CSS = """
:root {
  --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa;
  --pass: #1a7f37; --pass-bg: #dafbe1; --fail: #cf222e; --fail-bg: #ffebe9;
  --warn: #9a6700; --warn-bg: #fff8c5; --err: #8250df; --err-bg: #fbefff;
  --uns: #57606a; --uns-bg: #eaeef2; --dis: #6e7781; --dis-bg: #f6f8fa;
  --info: #0550ae; --info-bg: #ddf4ff;
}
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 14px/1.5 -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 28px 32px 48px; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  font-size: 12.5px; }
h1 { font-size: 24px; margin: 2px 0 4px; font-weight: 600; }
h2 { font-size: 17px; margin: 34px 0 10px; padding-bottom: 6px; border-bottom: 1px solid var(--line);
  font-weight: 600; }
h3 { font-size: 14px; margin: 0; font-weight: 600; }
.eyebrow { text-transform: uppercase; letter-spacing: .08em; font-size: 11px; color: var(--muted);
  font-weight: 600; }
.sub { color: var(--muted); margin: 0; }
.verdicts { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; margin: 22px 0 12px; }
.verdict { border: 1px solid var(--line); border-left-width: 8px; border-radius: 8px; padding: 16px 20px; }
.verdict .status { font-size: 26px; font-weight: 700; letter-spacing: .01em; line-height: 1.2; margin: 4px 0 6px; }
.verdict p { margin: 4px 0 0; }
.v-holds { border-color: var(--pass); background: var(--pass-bg); }
.v-holds .status { color: var(--pass); }
.v-deviations { border-color: var(--warn); background: var(--warn-bg); }
.v-deviations .status { color: var(--warn); }
.v-fails { border-color: var(--fail); background: var(--fail-bg); }
.v-fails .status { color: var(--fail); }
.v-inconclusive { border-color: var(--uns); background: var(--uns-bg); }
.v-inconclusive .status { color: var(--uns); }
.ids { margin-top: 8px; }
.ids code { display: inline-block; background: rgba(255,255,255,.75); border: 1px solid rgba(0,0,0,.12);
  border-radius: 4px; padding: 0 5px; margin: 2px 4px 2px 0; }
.gate { display: flex; flex-wrap: wrap; gap: 8px 22px; padding: 10px 14px; background: var(--soft);
  border: 1px solid var(--line); border-radius: 6px; }
.gate b { font-weight: 600; }
.counts { display: flex; flex-wrap: wrap; gap: 8px; margin: 12px 0 0; }
.count { border: 1px solid var(--line); border-radius: 6px; padding: 6px 12px; min-width: 92px; }
.count .n { font-size: 20px; font-weight: 700; display: block; line-height: 1.2; }
.count .l { color: var(--muted); font-size: 12px; }
.count.o-pass .n { color: var(--pass); } .count.o-fail .n { color: var(--fail); }
.count.o-warning .n { color: var(--warn); } .count.o-error .n { color: var(--err); }
.count.o-info .n { color: var(--info); }
.count.o-pass, .count.o-fail, .count.o-warning, .count.o-info, .count.o-error, .count.o-unsupported,
.count.o-disabled, .count.o-notrun, .count.o-waived { background: #fff; border-style: solid; }
.cols { display: grid; grid-template-columns: 3fr 2fr; gap: 24px; }
table { border-collapse: collapse; width: 100%; }
table.kv th { text-align: left; font-weight: 500; color: var(--muted); width: 34%; vertical-align: top; }
table.kv th, table.kv td { padding: 4px 8px 4px 0; border-bottom: 1px solid #eef1f4; word-break: break-word; }
table.grid { border: 1px solid var(--line); }
table.grid th, table.grid td { border-bottom: 1px solid var(--line); padding: 7px 10px; vertical-align: top; }
table.grid thead th { position: sticky; top: 0; background: var(--soft); text-align: left; font-weight: 600;
  font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); z-index: 1; }
table.grid thead th.run { text-transform: none; letter-spacing: 0; color: var(--ink); font-size: 12.5px;
  text-align: center; }
table.grid .mark { width: 28px; text-align: center; font-weight: 700; color: var(--warn); }
table.grid td.cell { text-align: center; width: 92px; vertical-align: middle; }
table.grid tr.family th { background: #fff; text-align: left; font-size: 12px; letter-spacing: .06em;
  color: var(--muted); padding-top: 14px; border-bottom: 2px solid var(--line); }
.rid { font-weight: 600; white-space: nowrap; }
.rtext { color: var(--ink); margin-top: 2px; }
.meta { color: var(--muted); font-size: 12px; white-space: nowrap; }
.badge { display: inline-block; border-radius: 999px; padding: 1px 9px; font-size: 12px; font-weight: 600;
  white-space: nowrap; border: 1px solid transparent; }
.o-pass { color: var(--pass); background: var(--pass-bg); border-color: #aceebb; }
.o-fail { color: var(--fail); background: var(--fail-bg); border-color: #ffcecb; }
.o-warning { color: var(--warn); background: var(--warn-bg); border-color: #f5e0a0; }
.o-error { color: var(--err); background: var(--err-bg); border-color: #e7d3fb; }
.o-info { color: var(--info); background: var(--info-bg); border-color: #b6e3ff; }
.o-unsupported { color: var(--uns); background: var(--uns-bg); border-color: #d0d7de; }
.o-disabled { color: var(--dis); background: var(--dis-bg); border-color: #e1e6eb; }
.o-notrun { color: #8c959f; background: #fff; border: 1px dashed #c8d1da; }
.o-none { color: #c8d1da; }
.o-waived { color: var(--warn); background: #fff; border: 1px dashed var(--warn); }
.sev { display: inline-block; font-size: 11px; font-weight: 700; border-radius: 4px; padding: 0 6px;
  text-transform: uppercase; letter-spacing: .03em; border: 1px solid; margin-right: 4px; }
.s-critical { color: #fff; background: #a40e26; border-color: #a40e26; }
.s-high { color: #fff; background: #cf222e; border-color: #cf222e; }
.s-medium { color: #7d4e00; background: #fff1c2; border-color: #d4a72c; }
.s-low { color: #0550ae; background: #ddf4ff; border-color: #80ccff; }
.s-info, .s-unrated { color: var(--muted); background: #fff; border-color: var(--line); }
.s-clear { color: var(--pass); background: var(--pass-bg); border-color: #aceebb; }
.remedy { border-left: 3px solid var(--pass); padding: 4px 10px; background: #f6fff8; }
.tag { display: inline-block; font-size: 11px; font-weight: 600; border-radius: 4px; padding: 0 5px;
  border: 1px solid var(--line); color: var(--muted); margin-right: 4px; }
.tag.must { color: var(--ink); border-color: #8c959f; }
.tag.accepted { color: var(--warn); border-color: var(--warn); }
.tag.stale { color: var(--err); border-color: var(--err); }
.finding { border: 1px solid var(--line); border-radius: 8px; margin: 0 0 14px; overflow: hidden; }
.finding > header { display: flex; flex-wrap: wrap; align-items: center; gap: 8px; padding: 10px 14px;
  background: var(--soft); border-bottom: 1px solid var(--line); }
.finding.f-fail > header { border-left: 5px solid var(--fail); }
.finding.f-warning > header { border-left: 5px solid var(--warn); }
.finding.f-error > header { border-left: 5px solid var(--err); }
.finding.f-info > header { border-left: 5px solid var(--info); }
.finding.f-accepted > header { border-left: 5px solid var(--warn); }
.finding .body { padding: 10px 14px 12px; }
.finding .body p { margin: 2px 0 8px; }
.test { border-top: 1px dashed var(--line); padding-top: 8px; margin-top: 8px; }
.test:first-of-type { border-top: 0; margin-top: 0; padding-top: 0; }
pre.evidence { background: #0d1117; color: #e6edf3; border-radius: 6px; padding: 10px 12px; margin: 6px 0 0;
  white-space: pre-wrap; word-break: break-all; max-height: 340px; overflow: auto; }
.verdict-chip { display: inline-block; font-weight: 700; font-size: 12px; border-radius: 4px; padding: 2px 8px;
  border: 1px solid; border-left-width: 4px; }
.verdict-chip.v-holds { color: var(--pass); } .verdict-chip.v-fails { color: var(--fail); }
.verdict-chip.v-deviations { color: var(--warn); } .verdict-chip.v-inconclusive { color: var(--uns); }
.legend { display: grid; grid-template-columns: max-content 1fr; gap: 4px 12px; align-items: baseline; }
tr.differs td, tr.differs th { background: #fff8c5; }
tr.differs td.cell { background: #fff8c5; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line);
  padding-top: 10px; }
@media print { table.grid thead th { position: static; } pre.evidence { max-height: none; } }
@media (max-width: 800px) { .verdicts, .cols { grid-template-columns: 1fr; } }
"""

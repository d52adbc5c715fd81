"""``junit.xml``: one testsuite per requirement family, readable by any CI.

Every testcase has a ``name`` and a ``classname`` (h2spec #123: a missing name
breaks CI parsers). A SHOULD-level warning is a passing testcase with the
finding in ``system-out`` unless the run is strict; an accepted deviation is
``skipped`` so the CI view agrees with the gate. ``tests`` always equals
passed + failures + errors + skipped.
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from qdrant_conformance.reports.findings import Finding, remediation_text
from qdrant_conformance.reports.gate import exit_code, gate_holds
from qdrant_conformance.reports.model import WAIVED, Requirement, RunResult, TestRecord, family_of
from qdrant_conformance.reports.scrub import guard, scrub_text, xml_safe
from qdrant_conformance.reports.verdicts import Verdicts, is_failing

_UNATTRIBUTED_FAMILY = "UNATTRIBUTED"


def _text(value: object) -> str:
    return xml_safe(scrub_text(str(value)))


def _properties(parent: ET.Element, items: Iterable[tuple[str, object]]) -> None:
    props = ET.SubElement(parent, "properties")
    for name, value in items:
        ET.SubElement(props, "property", {"name": _text(name), "value": _text(value)})


def _run_properties(run: RunResult, verdicts: Verdicts) -> list[tuple[str, object]]:
    items: list[tuple[str, object]] = [
        ("qsc.run_id", run.run_id),
        ("qsc.suite_version", run.suite_version),
        ("qsc.started_at", run.started_at),
        ("qsc.strict", str(run.strict).lower()),
        ("qsc.gate", run.gate),
        ("qsc.gate_holds", str(gate_holds(verdicts, run.gate)).lower()),
        ("qsc.exit_code", exit_code(run, verdicts)),
        ("qsc.verdict.secure", f"{verdicts.secure.status}: {verdicts.secure.explanation}"),
        ("qsc.verdict.compatible", f"{verdicts.compatible.status}: {verdicts.compatible.explanation}"),
        ("target_version", run.target_version or "unknown"),
    ]
    items += [(f"target.{key}", value) for key, value in sorted(run.target.items())]
    items += [(f"tool.{key}", value) for key, value in sorted(run.tool_versions.items())]
    return items


def _details(record: TestRecord, req: Requirement | None, waiver: str = "") -> str:
    text = req.text if req else "(not in the requirement catalog)"
    lines = [f"requirement {record.requirement}: {text}"]
    if req is not None:
        lines.append(f"severity: {req.severity or 'unrated'}")
        lines.append(f"remediation: {remediation_text(req)}")
        if req.source:
            lines.append(f"source: {req.source}")
    if waiver:
        lines.append(waiver)
    if record.reason:
        lines.append(f"reason: {record.reason}")
    if record.evidence:
        lines.append("evidence (sent -> received):")
        lines += [f"  {line}" for line in record.evidence]
    return "\n".join(lines)


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def render_junit(run: RunResult, verdicts: Verdicts) -> str:
    """The JUnit XML text (``run`` must already be scrubbed; it is scrubbed again here)."""
    index = run.requirement_index()
    by_id = verdicts.by_id()
    families: dict[str, list[TestRecord]] = {}
    for record in run.records:
        req = index.get(record.requirement)
        family = (req.family or family_of(req.id)) if req else _UNATTRIBUTED_FAMILY
        families.setdefault(family, []).append(record)

    root = ET.Element("testsuites", {"name": "qdrant-security-conformance"})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    for family in sorted(families):
        records = families[family]
        suite = ET.SubElement(root, "testsuite", {"name": _text(family), "timestamp": _text(run.started_at)})
        _properties(suite, _run_properties(run, verdicts))
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        suite_time = 0.0
        for record in records:
            req = index.get(record.requirement)
            text = req.text if req else "(not in the requirement catalog)"
            result = by_id.get(record.requirement)
            accepted = result is not None and result.accepted
            waiver = Finding(result, "", False).waiver_note if result is not None else ""
            protocol = record.protocol or (req.protocol if req else "")
            name = record.name or record.nodeid.rsplit("::", 1)[-1]
            classname = record.classname or record.nodeid.split("::", 1)[0].removesuffix(".py").replace("/", ".")
            case = ET.SubElement(
                suite,
                "testcase",
                {
                    "name": _text(f"{record.requirement or 'UNATTRIBUTED'} {name}"),
                    "classname": _text(classname or "qsc"),
                    "time": f"{record.duration:.3f}",
                },
            )
            failing = is_failing(record.outcome, run.strict)
            _properties(
                case,
                [
                    ("requirement", record.requirement),
                    ("severity", (req.severity or "unrated") if req else ""),
                    ("level", req.level if req else ""),
                    ("kind", req.kind if req else ""),
                    ("protocol", protocol),
                    ("outcome", WAIVED if accepted and failing else record.outcome),
                    ("profile", record.profile or ""),
                    ("nodeid", record.nodeid),
                ],
            )
            details = _text(_details(record, req, waiver))
            message = _text(_first_line(record.reason) or text)
            # A harness error says nothing about the target, so it carries no severity.
            rated = _text(f"[{req.severity}] ") + message if req and req.severity else message
            counts["tests"] += 1
            suite_time += record.duration
            if record.outcome == "error":
                counts["errors"] += 1
                ET.SubElement(case, "error", {"message": message, "type": "error"}).text = details
            elif failing and accepted:
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", {"message": _text(f"{waiver}; finding: ") + rated, "type": WAIVED})
                ET.SubElement(case, "system-out").text = details
            elif failing:
                counts["failures"] += 1
                kind = "warning" if record.outcome == "warning" else "fail"
                ET.SubElement(case, "failure", {"message": rated, "type": kind}).text = details
            elif record.outcome in ("unsupported", "disabled"):
                counts["skipped"] += 1
                prefix = f"{record.outcome}: "
                skip_message = message if message.startswith(prefix) else prefix + message
                ET.SubElement(case, "skipped", {"message": skip_message, "type": record.outcome})
            elif record.outcome == "warning":
                ET.SubElement(case, "system-out").text = (
                    _text(f"WARNING ({req.level if req else 'SHOULD'}-level, not a failure without --strict)\n")
                    + details
                )
            elif record.outcome == "info":
                ET.SubElement(case, "system-out").text = (
                    _text("INFO (an observation: never a failure, not even with --strict)\n") + details
                )
        suite.set("tests", str(counts["tests"]))
        suite.set("failures", str(counts["failures"]))
        suite.set("errors", str(counts["errors"]))
        suite.set("skipped", str(counts["skipped"]))
        suite.set("time", f"{suite_time:.3f}")
        for key in totals:
            totals[key] += counts[key]
        total_time += suite_time
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return guard('<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n", html.escape)

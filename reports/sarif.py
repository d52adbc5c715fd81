"""``results.sarif``: the run as SARIF 2.1.0, for GitHub code scanning and other SARIF viewers.

One rule per catalog requirement (help = the catalog's remediation, with the
``security-severity`` number GitHub uses to label alerts), one result per
failing or warning test with the target URL as its location, and one at
level ``note`` per ``info`` test (an observation: it never fails the gate). A waived
failure keeps its result with an accepted external suppression; a harness
error is not a finding about the target, so it becomes a tool execution
notification instead. Validated in the self-tests against the OASIS schema
shipped in ``reports/schemas/``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import quote

from qdrant_conformance.reports.findings import remediation_text
from qdrant_conformance.reports.gate import exit_code, gate_holds
from qdrant_conformance.reports.labels import target_label
from qdrant_conformance.reports.model import Requirement, RunResult, TestRecord
from qdrant_conformance.reports.scrub import guard
from qdrant_conformance.reports.severity import SECURITY_SEVERITY
from qdrant_conformance.reports.verdicts import Verdicts, is_failing

SARIF_SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
UNATTRIBUTED_RULE = "QSC-UNATTRIBUTED"
#: Catalog level → SARIF level of the rule (and of a non-failing result of it).
_RULE_LEVEL = {"MUST": "error", "SHOULD": "warning", "INFO": "note"}


def _rule(req: Requirement) -> dict[str, Any]:
    fix = remediation_text(req)
    # GitHub shows security-severity only on rules tagged "security" (the kind, for security requirements).
    tags = list(dict.fromkeys([req.kind, req.family, req.level, req.protocol]))
    properties: dict[str, Any] = {"tags": tags, "precision": "high"}
    if req.severity in SECURITY_SEVERITY:
        properties["security-severity"] = SECURITY_SEVERITY[req.severity]
    if req.severity:
        properties["severity"] = req.severity
    source = f" Source: {req.source}." if req.source else ""
    return {
        "id": req.id,
        "name": req.id.replace("-", ""),
        "shortDescription": {"text": req.text},
        "fullDescription": {"text": f"{req.text}{source}"},
        "help": {"text": fix, "markdown": f"**Remediation ({req.severity or 'unrated'}):** {fix}"},
        "defaultConfiguration": {"level": _RULE_LEVEL.get(req.level, "warning")},
        "properties": properties,
    }


def _uri(run: RunResult, protocol: str) -> str:
    """The target URL a finding is located at (the gRPC one for gRPC tests), as a URI."""
    target = run.target
    keys = ("grpc_url", "rest_url") if protocol == "grpc" else ("p2p_url", "rest_url") if protocol == "p2p" else ()
    for key in (*keys, "rest_url", "grpc_url", "label"):
        value = target.get(key)
        if isinstance(value, str) and value:
            if "://" not in value:
                value = ("grpc://" if key == "grpc_url" else "qsc-target:") + value
            # Redaction placeholders and spaces are not URI characters.
            return quote(value, safe=":/?#[]@!$&'()*+,;=%")
    return "qsc-target:unknown"


def _fingerprint(run: RunResult, record: TestRecord) -> str:
    # Stable across runs of the same target (ports and run ids excluded), so alerts track.
    basis = f"{record.requirement}|{record.nodeid}|{target_label(run)}"
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


def _message(record: TestRecord, req: Requirement | None) -> str:
    text = req.text if req else "(not in the requirement catalog)"
    reason = record.reason.strip().splitlines()[0] if record.reason.strip() else ""
    severity = f" [{req.severity}]" if req and req.severity else ""
    head = f"{record.requirement or 'unattributed'}{severity} {record.outcome}: {text}"
    return f"{head} Observed: {reason}" if reason else head


def sarif_document(run: RunResult, verdicts: Verdicts) -> dict[str, Any]:
    """The SARIF log as a dict (``run`` must already be scrubbed)."""
    index = run.requirement_index()
    by_id = verdicts.by_id()
    rules = [_rule(req) for req in run.requirements]
    rule_index = {req.id: n for n, req in enumerate(run.requirements)}
    results: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    for record in run.records:
        req = index.get(record.requirement)
        protocol = record.protocol or (req.protocol if req else "any")
        if record.outcome == "error":
            note: dict[str, Any] = {
                "level": "error",
                "message": {"text": f"harness error in {record.nodeid}: {record.reason or 'no reason given'}"},
            }
            if req is not None:
                note["associatedRule"] = {"id": req.id, "index": rule_index[req.id]}
            notifications.append(note)
            continue
        if record.outcome not in ("fail", "warning", "info"):
            continue
        failing = is_failing(record.outcome, run.strict)
        level = "error" if failing else "note" if record.outcome == "info" else "warning"
        result: dict[str, Any] = {
            "ruleId": req.id if req else UNATTRIBUTED_RULE,
            # SARIF: a level other than "none" needs kind "fail"; "note" is its "minor problem" level.
            "level": level,
            "kind": "fail",
            "message": {"text": _message(record, req)},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(run, protocol)}}}],
            "partialFingerprints": {"qscFinding/v1": _fingerprint(run, record)},
            "properties": {
                "outcome": record.outcome,
                "severity": req.severity if req else None,
                "protocol": protocol,
                "nodeid": record.nodeid,
                "profile": record.profile,
                "evidence": record.evidence[:20],
            },
        }
        if req is not None:
            result["ruleIndex"] = rule_index[req.id]
            result["properties"]["remediation"] = remediation_text(req)
        outcome = by_id.get(record.requirement)
        if outcome is not None and outcome.accepted and failing and outcome.baseline is not None:
            entry = outcome.baseline.entry
            expiry = f" (expires {entry.expires})" if entry.expires else " (old baseline entry, no expiry)"
            owner = f", owner {entry.owner}" if entry.owner else ""
            result["suppressions"] = [
                {"kind": "external", "status": "accepted", "justification": f"{entry.reason}{expiry}{owner}"}
            ]
            result["properties"]["outcome"] = "waived"
        results.append(result)
    code = exit_code(run, verdicts)
    invocation: dict[str, Any] = {
        # The tool ran to a verdict unless it could not tell (exit 3).
        "executionSuccessful": code in (0, 1),
        "exitCode": code,
        "startTimeUtc": run.started_at,
        "endTimeUtc": run.finished_at,
        "toolExecutionNotifications": notifications,
    }
    label = "".join(c if c.isalnum() or c in "-._" else "-" for c in target_label(run)).strip("-") or "target"
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "qdrant-security-conformance",
                        "version": run.suite_version,
                        "rules": rules,
                    }
                },
                "automationDetails": {"id": f"qdrant-security-conformance/{label}/{run.run_id}"},
                "invocations": [invocation],
                "results": results,
                "properties": {
                    "target": target_label(run),
                    "target_version": run.target_version,
                    "gate": run.gate,
                    "severity_threshold": run.severity_threshold,
                    "gate_holds": gate_holds(verdicts, run.gate),
                    "verdicts": {v.name: {"status": v.status, "headline": v.headline} for v in verdicts.all()},
                },
            }
        ],
    }


def render_sarif(run: RunResult, verdicts: Verdicts) -> str:
    text = json.dumps(sarif_document(run, verdicts), indent=2, ensure_ascii=False, default=str)
    return guard(text) + "\n"

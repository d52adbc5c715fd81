"""Verdicts, baseline, exit codes and the results.json / junit.xml / compare writers.

Every run here is built in code; no server is started.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

import qdrant_conformance.reports.scrub as reports_scrub
import qdrant_conformance.reports.writers as reports_writers
from qdrant_conformance.fixtures.secrets import REDACTOR, Redactor
from qdrant_conformance.reports import (
    ReportInputError,
    Requirement,
    RunResult,
    TestRecord,
    compute_verdicts,
    exit_code,
    gate_holds,
    load_baseline,
    load_results,
    summary_lines,
    write_all,
)
from qdrant_conformance.reports.compare import build_rows, load_runs, main, render_markdown
from qdrant_conformance.reports.demo import demo_run
from qdrant_conformance.reports.junit import render_junit
from qdrant_conformance.reports.model import BaselineEntry
from qdrant_conformance.reports.results_json import SCHEMA_PATH, results_document
from qdrant_conformance.reports.verdicts import aggregate

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------
# builders


def req(
    rid: str,
    kind: str = "security",
    level: str = "MUST",
    protocol: str = "rest",
    text: str | None = None,
    since: str = "1.2.0",
    until: str | None = None,
) -> Requirement:
    return Requirement(
        id=rid,
        family=rid.split("-")[0],
        text=text or f"{rid}: the target MUST behave.",
        level=level,
        kind=kind,
        protocol=protocol,
        since=since,
        until=until,
        source="spec §2.4",
    )


def rec(
    rid: str,
    outcome: str,
    protocol: str = "",
    *,
    reason: str = "",
    evidence: list[str] | None = None,
    name: str | None = None,
    classname: str = "suites.test_x",
) -> TestRecord:
    test = name if name is not None else f"test_{rid.lower().replace('-', '_')}[{protocol or 'x'}]"
    return TestRecord(
        nodeid=f"suites/test_x.py::test_{rid.lower().replace('-', '_')}[{protocol or 'x'}-{outcome}]",
        name=test,
        classname=classname,
        requirement=rid,
        protocol=protocol,
        outcome=outcome,
        reason=reason,
        evidence=evidence or [],
        duration=0.25,
        profile="api-key",
    )


def make_run(
    requirements: list[Requirement],
    records: list[TestRecord],
    *,
    strict: bool = False,
    gate: str = "secure",
    version: str | None = "1.19.0",
    baseline: list[BaselineEntry] | None = None,
    target: dict[str, object] | None = None,
    extras: dict[str, object] | None = None,
) -> RunResult:
    return RunResult(
        run_id="test-run",
        started_at="2026-08-01T12:00:00+00:00",
        finished_at="2026-08-01T12:01:00+00:00",
        suite_version="0.1.0",
        target=dict(target or {"launcher": "process", "label": "reference-server"}),
        target_version=version,
        tool_versions={"python": "3.11", "pytest": "9.0"},
        strict=strict,
        gate=gate,
        requirements=requirements,
        records=records,
        baseline=baseline or [],
        extras=dict(extras or {}),
    )


SEC = req("AUTH-REST-001", "security")
SEC2 = req("AUTH-GRPC-001", "security", protocol="grpc")
COMPAT = req("AUTH-REST-003", "compatibility")
SHOULD = req("HYG-REST-001", "security", level="SHOULD", text="An API key SHOULD NOT be accepted over plain HTTP.")
INFO = req("HARD-REST-011", "security", level="INFO", text="What GET / tells is recorded for information.")
INFO2 = req("HARD-GRPC-012", "security", level="INFO", protocol="grpc", text="HealthCheck: recorded for information.")


# ---------------------------------------------------------------------------
# aggregation


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        (["pass", "error", "fail"], "error"),
        (["pass", "fail", "warning"], "fail"),
        (["pass", "warning", "unsupported"], "warning"),
        (["unsupported", "pass", "disabled"], "pass"),
        (["disabled", "unsupported"], "unsupported"),
        (["pass", "info", "unsupported"], "info"),
        (["info", "warning"], "warning"),
        (["info", "error"], "error"),
        (["disabled"], "disabled"),
        ([], "not run"),
    ],
)
def test_aggregate_precedence(outcomes: list[str], expected: str) -> None:
    assert aggregate(outcomes) == expected


def test_matrix_cell_per_protocol_and_requirement_outcome() -> None:
    any_req = req("AUTHZ-ANY-002", protocol="any")
    run = make_run([any_req], [rec("AUTHZ-ANY-002", "pass", "rest"), rec("AUTHZ-ANY-002", "fail", "grpc")])
    result = compute_verdicts(run).by_id()["AUTHZ-ANY-002"]
    assert result.protocols == {"rest": "pass", "grpc": "fail"}
    assert result.outcome == "fail"


def test_record_without_protocol_lands_in_the_requirement_column() -> None:
    run = make_run([SEC2], [rec("AUTH-GRPC-001", "pass")])
    assert compute_verdicts(run).by_id()["AUTH-GRPC-001"].protocols == {"grpc": "pass"}


# ---------------------------------------------------------------------------
# verdicts


def test_secure_but_not_compatible() -> None:
    run = make_run([SEC, COMPAT], [rec("AUTH-REST-001", "pass"), rec("AUTH-REST-003", "fail")])
    v = compute_verdicts(run)
    assert v.secure.status == "holds" and v.secure.holds
    assert v.secure.explanation == "all 1 applicable security requirements held"
    assert v.compatible.status == "fails"
    assert v.compatible.deciding == ["AUTH-REST-003"]
    assert v.compatible.label == "compatible with Qdrant v1.19.0"
    assert "NOT COMPATIBLE with Qdrant v1.19.0" == v.compatible.headline
    assert gate_holds(v, "secure") and not gate_holds(v, "compatible") and not gate_holds(v, "both")
    assert exit_code(run, v) == 0
    assert exit_code(dataclasses.replace(run, gate="compatible"), v) == 1
    assert exit_code(dataclasses.replace(run, gate="both"), v) == 1


def test_compatible_but_not_secure() -> None:
    run = make_run(
        [SEC, SEC2, COMPAT], [rec("AUTH-REST-001", "fail"), rec("AUTH-GRPC-001", "pass"), rec("AUTH-REST-003", "pass")]
    )
    v = compute_verdicts(run)
    assert v.secure.status == "fails" and v.secure.deciding == ["AUTH-REST-001"]
    assert v.secure.headline == "NOT SECURE"
    assert v.compatible.status == "holds"
    assert exit_code(run, v) == 1
    assert exit_code(dataclasses.replace(run, gate="compatible"), v) == 0


def test_an_errored_must_makes_the_verdict_incomplete_not_a_pass() -> None:
    run = make_run([SEC, SEC2], [rec("AUTH-REST-001", "error"), rec("AUTH-GRPC-001", "pass")])
    v = compute_verdicts(run)
    assert v.secure.status == "incomplete" and not v.secure.holds
    assert v.secure.headline == "SECURITY INCOMPLETE"
    assert "could not be shown" in v.secure.explanation and v.secure.deciding == ["AUTH-REST-001"]
    assert exit_code(run, v) == 3
    assert any("SECURITY INCOMPLETE" in line and "exit 3" not in line for line in summary_lines(run, v, None))
    assert any("does not hold (exit 3)" in line for line in summary_lines(run, v, None))


def test_a_fail_wins_over_an_error() -> None:
    elsewhere = make_run([SEC, SEC2], [rec("AUTH-REST-001", "error"), rec("AUTH-GRPC-001", "fail")])
    v = compute_verdicts(elsewhere)
    assert v.secure.status == "fails" and v.secure.deciding == ["AUTH-GRPC-001"]
    assert exit_code(elsewhere, v) == 1
    # The same requirement: one row failed, another errored. The requirement aggregates to error,
    # but the failure is a finding about the target and decides the verdict.
    same = make_run([SEC, SEC2], [rec("AUTH-REST-001", "fail", name="a"), rec("AUTH-REST-001", "error", name="b"),
                                  rec("AUTH-GRPC-001", "pass")])
    v = compute_verdicts(same)
    assert v.secure.status == "fails" and v.secure.deciding == ["AUTH-REST-001"]
    assert exit_code(same, v) == 1


def test_an_errored_should_is_named_and_counts_only_when_strict() -> None:
    records = [rec("AUTH-REST-001", "pass"), rec("HYG-REST-001", "error")]
    lenient_run = make_run([SEC, SHOULD], records)
    lenient = compute_verdicts(lenient_run)
    assert lenient.secure.status == "holds" and "1 SHOULD-level error: HYG-REST-001" in lenient.secure.explanation
    assert exit_code(lenient_run, lenient) == 0
    strict_run = make_run([SEC, SHOULD], records, strict=True)
    strict = compute_verdicts(strict_run)
    assert strict.secure.status == "incomplete" and strict.secure.deciding == ["HYG-REST-001"]
    assert exit_code(strict_run, strict) == 3


def test_incomplete_results_json_validates(tmp_path: Path) -> None:
    run = make_run([SEC, SEC2], [rec("AUTH-REST-001", "error"), rec("AUTH-GRPC-001", "pass")])
    v = compute_verdicts(run)
    doc = results_document(run, v)
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    assert doc["verdicts"]["secure"]["status"] == "incomplete" and doc["gate_result"]["exit_code"] == 3


def test_should_warning_fails_only_when_strict() -> None:
    records = [rec("AUTH-REST-001", "pass"), rec("HYG-REST-001", "warning", reason="API key accepted over plain HTTP")]
    lenient = compute_verdicts(make_run([SEC, SHOULD], records))
    assert lenient.secure.status == "holds"
    assert lenient.secure.warnings == ["HYG-REST-001"]
    assert "1 SHOULD-level warning" in lenient.secure.explanation
    strict_run = make_run([SEC, SHOULD], records, strict=True)
    strict = compute_verdicts(strict_run)
    assert strict.secure.status == "fails" and strict.secure.deciding == ["HYG-REST-001"]
    assert exit_code(strict_run, strict) == 1


# ---------------------------------------------------------------------------
# info: observations that no verdict, gate or exit code counts


DISCLOSED = "Failed: GET / without a credential discloses version 1.19.0 and commit 0123456789ab"


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
def test_info_never_affects_the_verdicts_or_the_exit_code(strict: bool) -> None:
    records = [rec("AUTH-REST-001", "pass"), rec("AUTH-REST-003", "pass"),
               rec("HARD-REST-011", "info", reason=DISCLOSED, evidence=["GET / -> HTTP 200 version 1.19.0"])]
    run = make_run([SEC, COMPAT, INFO], records, strict=strict, gate="both")
    v = compute_verdicts(run)
    assert v.by_id()["HARD-REST-011"].outcome == "info"
    for verdict in v.all():
        assert verdict.status == "holds" and verdict.applicable == 1 and verdict.held == 1, verdict
        assert "HARD-REST-011" not in verdict.explanation and not verdict.warnings and not verdict.deciding
    assert exit_code(run, v) == 0 and gate_holds(v, "both")
    doc = results_document(run, v)
    assert doc["counts"]["info"] == 1 and doc["counts"]["warning"] == 0
    assert doc["findings"] == []  # an observation is no finding
    (observation,) = doc["observations"]
    assert observation["requirement"] == "HARD-REST-011" and observation["seen"] == [DISCLOSED.removeprefix("Failed: ")]
    assert observation["tests"] == [records[2].nodeid]


def test_info_records_alone_are_no_verdict() -> None:
    """The target answered (not "nothing ran"), but no MUST or SHOULD held: both verdicts inconclusive, exit 3."""
    run = make_run([SEC, INFO], [rec("HARD-REST-011", "info"), rec("AUTH-REST-001", "disabled")])
    v = compute_verdicts(run)
    assert v.secure.status == "inconclusive" and exit_code(run, v) == 3
    assert "nothing ran" not in summary_lines(run, v, None)[2]


def test_an_errored_info_requirement_leaves_the_verdict_whole() -> None:
    run = make_run([SEC, INFO], [rec("AUTH-REST-001", "pass"), rec("HARD-REST-011", "error", reason="no answer")],
                   strict=True)
    v = compute_verdicts(run)
    assert v.secure.status == "holds" and exit_code(run, v) == 0
    # Listed (the run could not show it), but it gates nothing.
    assert [(f["requirement"], f["outcome"], f["gating"]) for f in results_document(run, v)["findings"]] == [
        ("HARD-REST-011", "error", False)]
    assert "HARD-REST-011" not in v.secure.explanation


def test_a_waiver_on_an_observation_is_stale() -> None:
    run = make_run([SEC, INFO], [rec("AUTH-REST-001", "pass"), rec("HARD-REST-011", "info")],
                   baseline=[BaselineEntry("HARD-REST-011", "we accept it", expires="2099-01-01", owner="x")])
    (status,) = compute_verdicts(run).baseline
    assert status.status == "stale" and status.outcome == "info"


def test_info_in_every_report_file(tmp_path: Path) -> None:
    records = [rec("AUTH-REST-001", "pass"), rec("HARD-REST-011", "info", reason=DISCLOSED,
                                                 evidence=["GET / -> HTTP 200 version 1.19.0"]),
               rec("HARD-GRPC-012", "pass")]
    run = make_run([SEC, INFO, INFO2], records)
    paths = write_all(run, compute_verdicts(run), tmp_path)
    html = paths["html"].read_text(encoding="utf-8")
    assert "<h2>Information</h2>" in html and 'id="info-HARD-REST-011"' in html
    assert 'id="info-HARD-GRPC-012"' not in html  # it passed
    assert 'class="badge o-info"' in html and "GET / -&gt; HTTP 200 version 1.19.0" in html
    assert 'id="finding-HARD-REST-011"' not in html  # not among the failures, warnings and errors
    md = paths["summary"].read_text(encoding="utf-8")
    assert "1 info" in md and "### Information (1)" in md and "info: `HARD-REST-011` (rest): GET / without" in md
    assert "No failure, warning or error in this run." in md
    doc = json.loads(paths["results"].read_text(encoding="utf-8"))
    assert [r["outcome"] for r in doc["records"]] == ["pass", "info", "pass"]
    assert load_results(paths["results"]) == run
    junit = ET.fromstring(paths["junit"].read_text(encoding="utf-8"))
    assert junit.get("failures") == "0" and junit.get("errors") == "0" and junit.get("skipped") == "0"
    sarif = json.loads(paths["sarif"].read_text(encoding="utf-8"))["runs"][0]
    (result,) = sarif["results"]
    assert result["ruleId"] == "HARD-REST-011" and result["level"] == "note" and result["kind"] == "fail"
    rule = next(r for r in sarif["tool"]["driver"]["rules"] if r["id"] == "HARD-REST-011")
    assert rule["defaultConfiguration"]["level"] == "note"
    lines = summary_lines(run, compute_verdicts(run), None)
    assert "info: HARD-REST-011 (rest): GET / without a credential discloses version 1.19.0 and commit " \
        "0123456789ab" in lines
    assert "tests: 3 (2 pass, 0 fail, 0 warning, 1 info, 0 error, 0 unsupported, 0 disabled); " \
        "requirements not run: 0" in lines


def test_summary_caps_the_info_list() -> None:
    reqs = [req(f"HARD-REST-{n:03d}", level="INFO", text="x is recorded for information.") for n in range(1, 7)]
    records = [rec(r.id, "info", reason=f"Failed: seen {r.id}") for r in reqs] + [rec("AUTH-REST-001", "pass")]
    run = make_run([*reqs, SEC], records)
    lines = summary_lines(run, compute_verdicts(run), None)
    assert sum(line.startswith("info: ") for line in lines) == 3
    assert "… and 3 more info (see the report)" in lines
    assert "info: HARD-REST-001 (rest): seen HARD-REST-001" in lines


def test_verdict_with_nothing_that_held_is_inconclusive() -> None:
    run = make_run(
        [SEC, SEC2, COMPAT],
        [rec("AUTH-REST-001", "unsupported"), rec("AUTH-GRPC-001", "disabled"), rec("AUTH-REST-003", "pass")],
    )
    v = compute_verdicts(run)
    assert v.secure.status == "inconclusive" and not v.secure.holds
    assert "no security requirement held" in v.secure.explanation
    assert "1 unsupported" in v.secure.explanation and "1 disabled" in v.secure.explanation
    assert v.compatible.status == "holds"
    assert not gate_holds(v, "secure") and not gate_holds(v, "both")
    # Something ran (the compatibility test), but the gated verdict could not be decided.
    assert exit_code(run, v) == 3
    assert exit_code(dataclasses.replace(run, gate="compatible"), v) == 0


def test_kind_absent_from_catalog_is_inconclusive() -> None:
    v = compute_verdicts(make_run([SEC], [rec("AUTH-REST-001", "pass")]))
    assert v.compatible.status == "inconclusive"
    assert "none in the catalog" in v.compatible.explanation


def test_requirement_without_record_is_not_run_and_not_counted() -> None:
    run = make_run([SEC, SEC2], [rec("AUTH-REST-001", "pass")])
    v = compute_verdicts(run)
    assert v.by_id()["AUTH-GRPC-001"].outcome == "not run"
    assert v.secure.applicable == 1 and v.secure.status == "holds"
    # A verdict that holds still says how much of the catalog it did not cover.
    assert v.secure.explanation == "all 1 applicable security requirements held; not exercised: 1 not run"
    assert results_document(run, v)["counts"]["not_run"] == 1


@pytest.mark.parametrize(
    "records",
    [
        [],
        [rec("AUTH-REST-001", "unsupported"), rec("AUTH-REST-003", "disabled")],
        [rec("AUTH-REST-001", "error"), rec("AUTH-REST-003", "error")],
    ],
    ids=["no-records", "all-skipped", "all-errors"],
)
def test_nothing_ran_exits_3(records: list[TestRecord]) -> None:
    run = make_run([SEC, COMPAT], records)
    v = compute_verdicts(run)
    assert exit_code(run, v) == 3
    assert not gate_holds(v, "secure")
    assert "nothing ran" in summary_lines(run, v, None)[2]


def test_unknown_version_label() -> None:
    v = compute_verdicts(make_run([COMPAT], [rec("AUTH-REST-003", "pass")], version=None))
    assert v.compatible.label == "compatible with Qdrant (unknown version)"
    v3 = compute_verdicts(make_run([COMPAT], [rec("AUTH-REST-003", "unsupported")], version=None))
    assert v3.compatible.headline == "COMPATIBILITY INCONCLUSIVE: Qdrant (unknown version)"
    v2 = compute_verdicts(make_run([COMPAT], [rec("AUTH-REST-003", "pass")], version="v1.12.6"))
    assert v2.compatible.label == "compatible with Qdrant v1.12.6"


@pytest.mark.parametrize(("outcome", "status"), [("fail", "fails"), ("error", "incomplete")])
def test_record_outside_the_catalog_breaks_both_verdicts(outcome: str, status: str) -> None:
    stray = dataclasses.replace(rec("AUTH-REST-001", outcome), requirement="NOPE-REST-001")
    run = make_run([SEC, COMPAT], [rec("AUTH-REST-001", "pass"), rec("AUTH-REST-003", "pass"), stray])
    v = compute_verdicts(run)
    assert v.secure.status == status and v.compatible.status == status
    assert v.unattributed == [stray]
    assert any("unattributed" in d for d in v.secure.deciding)


def test_deciding_list_is_complete_and_explanation_is_short() -> None:
    reqs = [req(f"AUTH-REST-{n:03d}") for n in range(1, 11)]
    v = compute_verdicts(make_run(reqs, [rec(r.id, "fail") for r in reqs]))
    assert len(v.secure.deciding) == 10
    assert v.secure.explanation.endswith("and 6 more")


# ---------------------------------------------------------------------------
# baseline


def test_baselined_failure_is_an_accepted_deviation() -> None:
    run = make_run(
        [SEC, SEC2],
        [rec("AUTH-REST-001", "fail"), rec("AUTH-GRPC-001", "pass")],
        baseline=[BaselineEntry("AUTH-REST-001", "vendor answers 404 on unknown routes")],
    )
    v = compute_verdicts(run)
    assert v.secure.status == "holds_with_deviations" and v.secure.holds
    assert v.secure.accepted == ["AUTH-REST-001"] and v.secure.deciding == ["AUTH-REST-001"]
    assert "with accepted deviations" in v.secure.headline
    assert [b.status for b in v.baseline] == ["accepted"]
    assert exit_code(run, v) == 0


def test_baselined_requirement_that_holds_is_stale() -> None:
    run = make_run(
        [SEC, SEC2],
        [rec("AUTH-REST-001", "pass"), rec("AUTH-GRPC-001", "unsupported")],
        baseline=[BaselineEntry("AUTH-REST-001", "was broken in 1.12"), BaselineEntry("AUTH-GRPC-001", "n/a")],
    )
    v = compute_verdicts(run)
    assert {b.entry.id: b.status for b in v.baseline} == {"AUTH-REST-001": "stale", "AUTH-GRPC-001": "unexercised"}
    assert [b.entry.id for b in v.stale()] == ["AUTH-REST-001"]
    assert v.secure.status == "holds"
    line = next(line for line in summary_lines(run, v, None) if line.startswith("waivers:"))
    assert "STALE" in line and "AUTH-REST-001" in line
    assert "not exercised in this run: AUTH-GRPC-001" in line


def test_baseline_never_covers_an_error() -> None:
    run = make_run(
        [SEC, SEC2],
        [rec("AUTH-REST-001", "error"), rec("AUTH-GRPC-001", "pass")],
        baseline=[BaselineEntry("AUTH-REST-001", "flaky")],
    )
    v = compute_verdicts(run)
    assert v.secure.status == "incomplete"
    assert v.baseline[0].status == "error-not-covered"


def test_only_accepted_deviations_is_inconclusive() -> None:
    run = make_run([SEC], [rec("AUTH-REST-001", "fail")], baseline=[BaselineEntry("AUTH-REST-001", "known")])
    v = compute_verdicts(run)
    assert v.secure.status == "inconclusive"
    assert exit_code(run, v) == 3


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "baseline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_baseline_reads_entries(tmp_path: Path) -> None:
    path = _write(tmp_path, "- id: AUTH-REST-001\n  reason: vendor returns 404\n- {id: AUTH-GRPC-001, reason: 'n/a'}\n")
    assert load_baseline(path, ["AUTH-REST-001", "AUTH-GRPC-001"]) == [
        BaselineEntry("AUTH-REST-001", "vendor returns 404"),
        BaselineEntry("AUTH-GRPC-001", "n/a"),
    ]
    assert load_baseline(_write(tmp_path, "# nothing accepted\n"), ["AUTH-REST-001"]) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- id: [unclosed\n", "is not valid YAML"),
        ("id: AUTH-REST-001\nreason: x\n", "expected a list"),
        ("- AUTH-REST-001\n", "entry 1 must be a mapping"),
        ("- reason: x\n", "entry 1 has no 'id'"),
        ("- id: NOPE-REST-001\n  reason: x\n", "unknown requirement ID 'NOPE-REST-001'"),
        ("- id: AUTH-REST-001\n", "has no 'reason'"),
        ("- id: AUTH-REST-001\n  reason: '  '\n", "has no 'reason'"),
        ("- id: AUTH-REST-001\n  reasons: x\n", "unknown key 'reasons'"),
        ("- {id: AUTH-REST-001, reason: a}\n- {id: AUTH-REST-001, reason: b}\n", "AUTH-REST-001 is listed twice"),
    ],
)
def test_load_baseline_rejects_bad_input_in_one_line(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ReportInputError) as info:
        load_baseline(path, ["AUTH-REST-001"])
    message = str(info.value)
    assert expected in message and str(path) in message
    assert "\n" not in message


def test_load_baseline_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ReportInputError, match=r"cannot read baseline .*missing\.yaml"):
        load_baseline(tmp_path / "missing.yaml", ["AUTH-REST-001"])


# ---------------------------------------------------------------------------
# model


def test_model_rejects_unknown_outcome_and_round_trips() -> None:
    with pytest.raises(ReportInputError, match="outcome must be one of"):
        rec("AUTH-REST-001", "skipped")
    with pytest.raises(ReportInputError, match="listed twice"):
        make_run([SEC, SEC], [])
    with pytest.raises(ReportInputError, match="gate"):
        make_run([SEC], [], gate="everything")
    run = demo_run()
    assert RunResult.from_dict(json.loads(json.dumps(run.to_dict()))) == run


# ---------------------------------------------------------------------------
# summary


def test_summary_is_short_and_names_what_matters(tmp_path: Path) -> None:
    run = demo_run()
    v = compute_verdicts(run)
    lines = summary_lines(run, v, tmp_path / "out")
    text = "\n".join(lines)
    assert len(lines) <= 15
    assert lines[0].startswith("verdict: NOT SECURE") and "AUTHZ-ANY-002" in lines[0]
    # The demo's only compatibility problem is an error: the verdict is incomplete, not a failure.
    assert lines[1].startswith("verdict: COMPATIBILITY INCOMPLETE: Qdrant v1.19.0") and "ROT-REST-001" in lines[1]
    assert "gate (secure): does not hold (exit 1)" in text
    assert "4 pass, 1 fail, 1 warning, 1 info, 1 error, 1 unsupported, 1 disabled, 1 waived" in text
    assert "warning HYG-REST-001 (SHOULD, rest): An API key SHOULD NOT be accepted over plain HTTP." in text
    assert "info: HARD-REST-011 (rest): GET / without a credential discloses Qdrant 1.19.0, commit 0f3c9e1" in text
    assert "waivers: 1 waived (TLS-GRPC-004)" in text
    assert "kill score: 31/31" in text and "rest routes 97" in text and "grpc methods 58" in text
    assert lines[-1] == f"report: {tmp_path / 'out' / 'report.html'} (also summary.md, results.sarif)"
    assert "\x1b[" not in text


def test_summary_caps_lists() -> None:
    reqs = [req(f"HYG-REST-{n:03d}", level="SHOULD") for n in range(1, 9)] + [SEC]
    records = [rec(r.id, "warning") for r in reqs[:-1]] + [rec("AUTH-REST-001", "pass")]
    extras = {f"figure_{n}": n for n in range(6)}
    lines = summary_lines(make_run(reqs, records, extras=extras), compute_verdicts(make_run(reqs, records)), None)
    assert len(lines) <= 15
    assert sum(line.startswith("warning ") for line in lines) == 3
    assert any("and 5 more warnings" in line for line in lines)
    assert any("3 more figures" in line for line in lines)


# ---------------------------------------------------------------------------
# results.json


def test_schema_is_valid_draft_2020_12() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize(
    "run",
    [
        demo_run(),
        make_run([SEC, COMPAT], [], version=None),
        make_run([SEC], [rec("AUTH-REST-001", "fail")], baseline=[BaselineEntry("AUTH-REST-001", "x")], strict=True),
    ],
    ids=["demo", "empty", "strict-baseline"],
)
def test_results_json_validates_and_reads_back(tmp_path: Path, run: RunResult) -> None:
    v = compute_verdicts(run)
    paths = write_all(run, v, tmp_path)
    doc = json.loads(paths["results"].read_text(encoding="utf-8"))
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    assert doc["gate_result"]["exit_code"] == exit_code(run, v)
    assert doc["verdicts"]["secure"]["status"] == v.secure.status
    assert [row["requirement"] for row in doc["matrix"]] == [r.id for r in run.requirements]
    assert load_results(paths["results"]) == run


def test_write_all_writes_three_files_atomically(tmp_path: Path) -> None:
    paths = write_all(demo_run(), None, tmp_path / "run")
    assert set(paths) == {"results", "junit", "html", "sarif", "summary"}
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "junit.xml",
        "report.html",
        "results.json",
        "results.sarif",
        "summary.md",
    ]


def test_write_all_takes_the_verdicts_of_a_scrubbed_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The plugin scrubs, computes the verdicts once, and hands both over: the writers must not compute again.
    run = reports_scrub.scrub_run(demo_run())
    verdicts = compute_verdicts(run)

    def again(_run: RunResult) -> None:
        raise AssertionError("write_all computed the verdicts a second time")

    monkeypatch.setattr(reports_writers, "compute_verdicts", again)
    doc = json.loads(write_all(run, verdicts, tmp_path)["results"].read_text(encoding="utf-8"))
    assert doc["verdicts"]["secure"]["status"] == verdicts.secure.status
    with pytest.raises(AssertionError, match="second time"):
        write_all(demo_run(), verdicts, tmp_path / "unscrubbed")  # an unscrubbed run is scrubbed and judged here


def test_exit_codes_are_one_table_with_pytests_own_numbers() -> None:
    from qdrant_conformance.reports.exit_codes import ExitCode

    assert [(c.name, int(c)) for c in ExitCode] == [
        ("GATE_HOLDS", 0), ("NOT_CONFORMANT", 1), ("INTERRUPTED", 2), ("INCOMPLETE", 3), ("BAD_INPUT", 4)]
    # A run stopped by pytest itself (Ctrl-C, a usage error) exits with the same meaning.
    assert ExitCode.INTERRUPTED == pytest.ExitCode.INTERRUPTED
    assert ExitCode.BAD_INPUT == pytest.ExitCode.USAGE_ERROR
    assert f"{ExitCode.INCOMPLETE}" == "3" and json.dumps(ExitCode.BAD_INPUT) == "4"


# ---------------------------------------------------------------------------
# junit.xml


def _junit(run: RunResult) -> ET.Element:
    return ET.fromstring(render_junit(run, compute_verdicts(run)))


def test_junit_counts_add_up_and_every_case_is_named() -> None:
    run = demo_run()
    unnamed = dataclasses.replace(run.records[0], nodeid="suites/test_auth.py::test_bare", name="", classname="")
    run = dataclasses.replace(run, records=[*run.records, unnamed])
    root = _junit(run)
    suites = root.findall("testsuite")
    assert sorted(s.get("name") for s in suites) == ["AUTH", "AUTHZ", "CLUSTER", "HARD", "HYG", "ROT", "TLS"]
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for suite in suites:
        cases = suite.findall("testcase")
        failures = sum(1 for c in cases if c.find("failure") is not None)
        errors = sum(1 for c in cases if c.find("error") is not None)
        skipped = sum(1 for c in cases if c.find("skipped") is not None)
        assert int(suite.get("tests", -1)) == len(cases)
        assert int(suite.get("failures", -1)) == failures
        assert int(suite.get("errors", -1)) == errors
        assert int(suite.get("skipped", -1)) == skipped
        for key, value in zip(totals, (len(cases), failures, errors, skipped), strict=True):
            totals[key] += value
        for case in cases:
            assert case.get("name") and case.get("classname")
    assert {k: int(root.get(k, -1)) for k in totals} == totals
    assert totals == {"tests": 12, "failures": 1, "errors": 1, "skipped": 3}
    bare = next(c for c in root.iter("testcase") if "test_bare" in (c.get("name") or ""))
    assert bare.get("classname") == "suites.test_auth"


def test_junit_elements_messages_and_properties() -> None:
    root = _junit(demo_run())
    cases = {c.get("name"): c for c in root.iter("testcase")}
    failure = cases["AUTHZ-ANY-002 test_read_only_cannot_write[grpc]"].find("failure")
    assert failure is not None
    assert failure.get("message") == "[high] read-only key was allowed to call qdrant.Points/Upsert"
    assert "remediation: Set service.read_only_api_key" in (failure.text or "")
    assert "severity: high" in (failure.text or "")
    assert "qdrant.Points/Upsert api-key=<redacted:read_only_key> -> OK" in (failure.text or "")
    assert "The read-only key MUST NOT be able to write." in (failure.text or "")
    error = cases["ROT-REST-001 test_rotation_served[rest]"].find("error")
    assert error is not None and error.get("message") == "server did not start: port 6333 in use"
    skipped = cases["AUTH-REST-005 test_legacy_403[rest]"].find("skipped")
    assert skipped is not None and (skipped.get("message") or "").startswith("unsupported:")
    accepted = cases["TLS-GRPC-004 test_client_without_cert[grpc]"].find("skipped")
    assert accepted is not None and accepted.get("type") == "waived"
    assert (accepted.get("message") or "").startswith("waived until 2099-12-31, owner")
    warning = cases["HYG-REST-001 test_key_over_plain_http[rest]"]
    assert warning.find("failure") is None and warning.find("skipped") is None
    assert "WARNING" in (warning.findtext("system-out") or "")
    info = cases["HARD-REST-011 test_rest_root_version_disclosure[rest]"]
    assert info.find("failure") is None and info.find("skipped") is None and info.find("error") is None
    assert "INFO (an observation" in (info.findtext("system-out") or "")
    assert {p.get("name"): p.get("value") for p in info.iter("property")}["outcome"] == "info"
    props = {p.get("name"): p.get("value") for p in root.find("testsuite").find("properties")}  # type: ignore[union-attr]
    assert props["target.image"] == "qdrant/qdrant:v1.19.0"
    assert props["target_version"] == "1.19.0"
    assert props["tool.sslyze"] == "6.3.1"
    assert (props["qsc.verdict.secure"] or "").startswith("fails")


def test_junit_warning_is_a_failure_when_strict() -> None:
    run = make_run([SEC, SHOULD], [rec("AUTH-REST-001", "pass"), rec("HYG-REST-001", "warning")], strict=True)
    case = next(c for c in _junit(run).iter("testcase") if (c.get("name") or "").startswith("HYG"))
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "warning"


def test_junit_survives_control_characters_in_evidence() -> None:
    run = make_run([SEC], [rec("AUTH-REST-001", "fail", reason="bad\x00byte", evidence=["body: \x01\x02\x1b[31m"])])
    root = _junit(run)
    assert root.find(".//failure") is not None


# ---------------------------------------------------------------------------
# secrets


@pytest.fixture
def redactor(monkeypatch: pytest.MonkeyPatch) -> Redactor:
    """A private redactor, so secrets registered here do not leak into other tests."""
    fresh = Redactor()
    monkeypatch.setattr(reports_scrub, "REDACTOR", fresh)
    return fresh


def test_registered_secret_never_reaches_any_file(tmp_path: Path) -> None:
    # The process-wide redactor, as the harness uses it; random secrets cannot disturb other tests.
    key = "qsc-" + secrets.token_hex(16)
    odd = 'k&<"' + secrets.token_hex(12)  # escaping must not let a secret slip past redaction
    REDACTOR.register("api_key", key)
    REDACTOR.register("odd_key", odd)
    run = make_run(
        [SEC, req("AUTH-REST-009", text=f"MUST accept {key}")],
        [
            rec(
                "AUTH-REST-001",
                "fail",
                reason=f"server echoed {key}",
                evidence=[f"GET /collections api-key={key} -> 200", f"Authorization: Bearer {odd} -> 200"],
            ),
            rec("AUTH-REST-009", "warning", reason=odd),
        ],
        target={"launcher": "external", "rest_url": f"https://x/?k={key}", "api_key": "unregistered-value"},
        extras={"note": key},
        baseline=[BaselineEntry("AUTH-REST-009", f"uses {key}")],
    )
    paths = write_all(run, compute_verdicts(run), tmp_path)
    texts = {name: path.read_text(encoding="utf-8") for name, path in paths.items()}
    texts["summary"] = "\n".join(summary_lines(run, compute_verdicts(run), tmp_path))
    import html as html_module

    for name, text in texts.items():
        for secret in (key, odd, html_module.escape(odd), json.dumps(odd)[1:-1], "unregistered-value"):
            assert secret not in text, f"{secret!r} leaked into {name}"
    assert "<redacted:api_key>" in texts["results"]
    assert "&lt;redacted:api_key&gt;" in texts["html"]
    ET.fromstring(texts["junit"])  # still well-formed after redaction


def test_short_secret_does_not_corrupt_the_run(tmp_path: Path, redactor: Redactor) -> None:
    # Someone's CI config uses api_key "pass": outcomes and IDs must survive redaction.
    redactor.register("api_key", "pass")
    run = make_run([SEC], [rec("AUTH-REST-001", "pass", evidence=["api-key=pass -> 401"])])
    paths = write_all(run, compute_verdicts(run), tmp_path)
    doc = json.loads(paths["results"].read_text(encoding="utf-8"))
    assert doc["records"][0]["outcome"] == "pass"
    assert doc["records"][0]["evidence"] == ["api-key=<redacted:api_key> -> 401"]
    assert doc["verdicts"]["secure"]["status"] == "holds"
    assert 'class="badge o-pass"' in paths["html"].read_text(encoding="utf-8")


# ---------------------------------------------------------------------------
# compare

MISSING_KEY_401 = req(
    "AUTH-REST-003", "compatibility", text="Without a credential, REST MUST answer 401.", since="1.9.0"
)
MISSING_KEY_403 = req(
    "AUTH-REST-005", "compatibility", text="Before v1.9.0, REST MUST answer 403 | legacy.", until="1.9.0"
)


def _version_run(tmp_path: Path, version: str, outcomes: dict[str, str]) -> Path:
    run = make_run(
        [SEC, MISSING_KEY_401, MISSING_KEY_403],
        [rec(rid, outcome) for rid, outcome in outcomes.items()],
        version=version,
        target={"launcher": "docker", "image": f"qdrant/qdrant:v{version}"},
    )
    run = dataclasses.replace(run, run_id=f"run-{version}")
    return write_all(run, None, tmp_path / version)["results"]


def test_compare_shows_where_versions_differ(tmp_path: Path) -> None:
    new = _version_run(
        tmp_path, "1.19.0", {"AUTH-REST-001": "pass", "AUTH-REST-003": "pass", "AUTH-REST-005": "unsupported"}
    )
    old = _version_run(
        tmp_path, "1.8.0", {"AUTH-REST-001": "pass", "AUTH-REST-003": "unsupported", "AUTH-REST-005": "pass"}
    )
    assert main([str(new), str(old), "-o", str(tmp_path / "cmp")]) == 0
    markdown = (tmp_path / "cmp" / "compare.md").read_text(encoding="utf-8")
    page = (tmp_path / "cmp" / "compare.html").read_text(encoding="utf-8")
    header = (
        "| ≠ | Requirement | Kind | Level | "
        + "qdrant/qdrant:v1.19.0 · Qdrant v1.19.0 | qdrant/qdrant:v1.8.0 · Qdrant v1.8.0 |"
    )
    assert header in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    row_401 = next(line for line in rows if "AUTH-REST-003" in line)
    row_403 = next(line for line in rows if "AUTH-REST-005" in line)
    row_same = next(line for line in rows if "AUTH-REST-001" in line)
    assert row_401.startswith("| ≠ |") and row_401.endswith("| pass | unsupported |")
    assert row_403.startswith("| ≠ |") and row_403.endswith("| unsupported | pass |")
    assert row_same.startswith("|  |")
    assert "403 \\| legacy" in row_403  # a pipe in the text does not split the cell
    cells = [len(re.split(r"(?<!\\)\|", line)) for line in rows if "AUTH-" in line]
    assert set(cells) == {len(header.split("|"))}
    assert "2 of 3 requirements differ" in markdown
    assert page.count('<tr class="differs">') == 4  # two rows, in both tables
    assert 'id="compare"' in page and "<script" not in page


def test_compare_keeps_same_target_columns_apart(tmp_path: Path) -> None:
    a = _version_run(tmp_path / "a", "1.19.0", {"AUTH-REST-001": "pass"})
    b = _version_run(tmp_path / "b", "1.19.0", {"AUTH-REST-001": "fail"})
    runs = load_runs([a, b])
    assert runs[0].label != runs[1].label
    rows = build_rows(runs)
    assert [r.cells for r in rows if r.requirement.id == "AUTH-REST-001"] == [["pass", "fail"]]
    assert "≠" in render_markdown(runs, rows)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        ("{not json", "is not valid JSON"),
        ('{"schema_version": 1}', "does not match results.schema.json"),
    ],
    ids=["missing", "invalid-json", "schema-violation"],
)
def test_compare_bad_input_exits_4_with_one_line(tmp_path: Path, content: str | None, expected: str) -> None:
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "reports.compare", str(path), "-o", str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 4
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qsc: error: ") and expected in lines[0]
    assert not (tmp_path / "out").exists()


def test_compare_usage_error_exits_4(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 4
    assert capsys.readouterr().err.startswith("qsc: error: ")

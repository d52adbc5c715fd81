"""Severity, remediation, waivers, the severity threshold, results.sarif and summary.md.

Unit level: runs are built in memory, so every waiver state and its exit code
is checked exactly; the end-to-end runs live in tests/test_gate_e2e.py.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest

from qdrant_conformance.reports import compute_verdicts, exit_code, load_results, write_all
from qdrant_conformance.reports.demo import demo_run
from qdrant_conformance.reports.errors import ReportInputError
from qdrant_conformance.reports.model import BaselineEntry, Requirement, RunResult, TestRecord
from qdrant_conformance.reports.sarif import sarif_document
from qdrant_conformance.reports.summary_md import append_step_summary, render_summary_md
from qdrant_conformance.reports.waivers import load_all_waivers, load_waivers

SARIF_SCHEMA = Path(__file__).resolve().parents[1] / "reports" / "schemas" / "sarif-schema-2.1.0.json"
FIX_001 = "Set service.api_key (QDRANT__SERVICE__API_KEY) to a random key of 32+ bytes."
FIX_002 = "Set service.read_only_api_key and upgrade to Qdrant v1.7.0 or later."


def _req(rid: str, severity: str | None, level: str = "MUST", kind: str = "security") -> Requirement:
    return Requirement(
        id=rid,
        family=rid.split("-")[0],
        text=f"{rid}: the target {level} behave.",
        level=level,
        kind=kind,
        protocol="rest",
        since="1.2.0",
        until=None,
        source="spec §2",
        severity=severity,
        remediation={"AUTH-REST-001": FIX_001, "AUTHZ-REST-004": FIX_002}.get(rid, ""),
    )


def _rec(rid: str, outcome: str, reason: str = "") -> TestRecord:
    return TestRecord(
        nodeid=f"suites/test_x.py::test_{rid.lower()}",
        name=f"test_{rid.lower()}",
        classname="suites.test_x",
        requirement=rid,
        protocol="rest",
        outcome=outcome,
        reason=reason,
        evidence=["GET /collections (no credential) -> 200"],
    )


CRITICAL = _req("AUTH-REST-001", "critical")
MEDIUM = _req("AUTHZ-REST-004", "medium")
HELD = _req("AUTH-GRPC-001", "critical")


def _run(
    outcomes: dict[str, str],
    waivers: list[BaselineEntry] | None = None,
    *,
    threshold: str | None = None,
    started: str = "2026-08-01T12:00:00+00:00",
    target: dict[str, object] | None = None,
) -> RunResult:
    reqs = [CRITICAL, MEDIUM, HELD]
    return RunResult(
        run_id="unit",
        started_at=started,
        finished_at=started,
        suite_version="0.1.0",
        target=dict(target or {"launcher": "external", "label": "prod-a", "rest_url": "https://qdrant-a.prod:6333"}),
        target_version="1.19.0",
        tool_versions={},
        strict=False,
        gate="secure",
        requirements=reqs,
        records=[_rec(rid, outcome, "served data without a key") for rid, outcome in outcomes.items()],
        baseline=waivers or [],
        severity_threshold=threshold,
    )


def _waiver(rid: str = "AUTH-REST-001", *, target: str | None = None, expires: str = "2026-08-01") -> BaselineEntry:
    return BaselineEntry(rid, "vendor fix scheduled", target=target, expires=expires, owner="sec-team")


ONE_FAILURE = {"AUTH-REST-001": "fail", "AUTH-GRPC-001": "pass"}


# ---------------------------------------------------------------------------
# waiver states and their exit codes


def test_no_waiver_fails_the_gate() -> None:
    run = _run(ONE_FAILURE)
    assert exit_code(run, compute_verdicts(run)) == 1


def test_active_waiver_waives_the_failure_through_its_expiry_day() -> None:
    run = _run(ONE_FAILURE, [_waiver(expires="2026-08-01")])  # the run's own day: still active
    v = compute_verdicts(run)
    assert [b.status for b in v.baseline] == ["accepted"]
    assert v.by_id()["AUTH-REST-001"].shown_outcome == "waived"
    assert v.secure.status == "holds_with_deviations"
    assert exit_code(run, v) == 0


def test_expired_waiver_no_longer_waives_and_is_reported() -> None:
    run = _run(ONE_FAILURE, [_waiver(expires="2026-07-31")])
    v = compute_verdicts(run)
    assert [b.status for b in v.baseline] == ["expired"]
    assert v.by_id()["AUTH-REST-001"].shown_outcome == "fail"
    assert exit_code(run, v) == 1
    assert "waiver EXPIRED on 2026-07-31" in render_summary_md(run, v)


def test_expired_waiver_of_a_requirement_that_holds_is_still_reported_expired() -> None:
    run = _run({"AUTH-REST-001": "pass"}, [_waiver(expires="2020-01-01")])
    v = compute_verdicts(run)
    assert [b.status for b in v.baseline] == ["expired"] and exit_code(run, v) == 0


def test_waiver_matching_nothing_is_stale() -> None:
    run = _run({"AUTH-REST-001": "pass"}, [_waiver()])
    v = compute_verdicts(run)
    assert [b.status for b in v.baseline] == ["stale"]
    assert exit_code(run, v) == 0
    assert "stale: matches no failure" in render_summary_md(run, v)


def test_second_waiver_for_the_same_failure_is_stale() -> None:
    run = _run(ONE_FAILURE, [_waiver(target="prod-*"), _waiver(target="*qdrant-a*")])
    v = compute_verdicts(run)
    assert [b.status for b in v.baseline] == ["accepted", "stale"] and exit_code(run, v) == 0


@pytest.mark.parametrize(
    "glob, status, code",
    [
        ("prod-a", "accepted", 0),  # the label
        ("https://qdrant-a.prod:*", "accepted", 0),  # the REST URL
        ("https://qdrant-b.prod:*", "other-target", 1),  # another deployment: the failure counts
        ("PROD-A", "other-target", 1),  # globs are case-sensitive
    ],
)
def test_target_scoped_waiver(glob: str, status: str, code: int) -> None:
    run = _run(ONE_FAILURE, [_waiver(target=glob)])
    v = compute_verdicts(run)
    assert [b.status for b in v.baseline] == [status]
    assert exit_code(run, v) == code


def test_waiver_never_covers_a_harness_error() -> None:
    run = _run({"AUTH-REST-001": "error", "AUTH-GRPC-001": "pass"}, [_waiver()])
    v = compute_verdicts(run)
    # An unwaivable error leaves its MUST unrun: the verdict is INCOMPLETE (exit 3), never waived to 0.
    assert [b.status for b in v.baseline] == ["error-not-covered"] and exit_code(run, v) == 3


# ---------------------------------------------------------------------------
# --severity-threshold


@pytest.mark.parametrize("threshold, code", [(None, 1), ("info", 1), ("medium", 1), ("high", 0), ("critical", 0)])
def test_threshold_gates_only_findings_at_or_above_it(threshold: str | None, code: int) -> None:
    run = _run({"AUTHZ-REST-004": "fail", "AUTH-GRPC-001": "pass"}, threshold=threshold)
    v = compute_verdicts(run)
    assert v.secure.status == "fails"  # the verdict still says what happened
    assert exit_code(run, v) == code


def test_threshold_does_not_make_a_run_with_nothing_held_pass() -> None:
    run = _run({"AUTHZ-REST-004": "fail"}, threshold="critical")
    assert exit_code(run, compute_verdicts(run)) == 3


def test_requirement_without_severity_always_counts() -> None:
    unrated = dataclasses.replace(MEDIUM, severity=None)
    run = dataclasses.replace(
        _run({"AUTHZ-REST-004": "fail", "AUTH-GRPC-001": "pass"}, threshold="critical"),
        requirements=[CRITICAL, unrated, HELD],
    )
    assert exit_code(run, compute_verdicts(run)) == 1


# ---------------------------------------------------------------------------
# waiver files


def _file(tmp_path: Path, text: str, name: str = "waivers.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


KNOWN = ["AUTH-REST-001", "AUTHZ-REST-004"]


def test_waivers_file_is_read(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        "waivers:\n"
        "  - requirement: AUTH-REST-001\n    target: 'https://qdrant-*'\n    reason: vendor  fix\n"
        "    expires: 2026-12-31\n    owner: sec-team\n"
        "  - {requirement: AUTHZ-REST-004, reason: known, expires: '2027-01-01', owner: ops}\n",
    )
    assert load_waivers(path, KNOWN) == [
        BaselineEntry("AUTH-REST-001", "vendor fix", "https://qdrant-*", "2026-12-31", "sec-team"),
        BaselineEntry("AUTHZ-REST-004", "known", None, "2027-01-01", "ops"),
    ]


def test_old_baseline_file_is_read_as_waivers_without_expiry(tmp_path: Path) -> None:
    path = _file(tmp_path, "- id: AUTH-REST-001\n  reason: tracked upstream\n", "baseline.yaml")
    (entry,) = load_waivers(path, KNOWN)
    assert entry == BaselineEntry("AUTH-REST-001", "tracked upstream") and entry.legacy
    run = _run(ONE_FAILURE, [entry])
    v = compute_verdicts(run)
    assert exit_code(run, v) == 0
    assert "old baseline file, which is deprecated" in render_summary_md(run, v)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("waivers: {}\n", "'waivers' must be a list"),
        ("other: []\n", "one key, 'waivers'"),
        ("waivers:\n  - requirement: AUTH-REST-001\n    reason: r\n    owner: o\n", "has no 'expires'"),
        ("waivers:\n  - {requirement: AUTH-REST-001, reason: r, owner: o, expires: 31-12-2026}\n", "YYYY-MM-DD"),
        ("waivers:\n  - {requirement: AUTH-REST-001, reason: r, expires: 2026-12-31}\n", "non-empty 'owner'"),
        ("waivers:\n  - {requirement: AUTH-REST-001, owner: o, expires: 2026-12-31}\n", "non-empty 'reason'"),
        (
            "waivers:\n  - {requirement: NOPE-REST-001, reason: r, owner: o, expires: 2026-12-31}\n",
            "unknown requirement",
        ),
        ("waivers:\n  - {requirement: AUTH-REST-001, reason: r, owner: o, expires: 2026-12-31, until: x}\n", "'until'"),
        (
            "waivers:\n  - {requirement: AUTH-REST-001, reason: r, owner: o, expires: 2026-12-31}\n"
            "  - {requirement: AUTH-REST-001, reason: s, owner: o, expires: 2026-12-31}\n",
            "waived twice",
        ),
        ("waivers: [\n", "not valid YAML"),
    ],
)
def test_bad_waivers_file_is_one_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ReportInputError, match=expected) as caught:
        load_waivers(_file(tmp_path, text), KNOWN)
    assert "\n" not in str(caught.value)


def test_same_waiver_in_waivers_and_baseline_is_refused(tmp_path: Path) -> None:
    new = _file(tmp_path, "waivers:\n  - {requirement: AUTH-REST-001, reason: r, owner: o, expires: 2026-12-31}\n")
    old = _file(tmp_path, "- {id: AUTH-REST-001, reason: r}\n", "baseline.yaml")
    assert len(load_all_waivers([new, None], KNOWN)) == 1
    # Different scope (the old entry has no expiry but the same requirement and target): listed twice.
    with pytest.raises(ReportInputError, match="waived twice"):
        load_all_waivers([new, old], KNOWN)


# ---------------------------------------------------------------------------
# results.sarif


@pytest.fixture(scope="module")
def sarif_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def _assert_valid(validator: jsonschema.protocols.Validator, doc: object) -> None:
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]]


def test_schema_file_is_the_official_one() -> None:
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    assert schema["id"].startswith("https://docs.oasis-open.org/sarif/sarif/v2.1.0/")
    assert schema["properties"]["version"]["enum"] == ["2.1.0"]


def test_validator_catches_a_broken_log(sarif_validator: jsonschema.protocols.Validator) -> None:
    # The twin of every validation below: the schema does reject malformed SARIF.
    run = demo_run()
    doc = sarif_document(run, compute_verdicts(run))
    doc["runs"][0]["results"][0]["level"] = "severe"
    del doc["runs"][0]["tool"]["driver"]["name"]
    assert len(list(sarif_validator.iter_errors(doc))) >= 2


@pytest.mark.parametrize(
    "run",
    [
        demo_run(),
        _run(ONE_FAILURE),
        _run(ONE_FAILURE, [_waiver()]),
        _run({"AUTH-REST-001": "error"}),
        dataclasses.replace(_run({}), target={}),
    ],
    ids=["demo", "one-failure", "waived", "error-only", "empty"],
)
def test_sarif_validates(tmp_path: Path, run: RunResult, sarif_validator: jsonschema.protocols.Validator) -> None:
    paths = write_all(run, None, tmp_path)
    _assert_valid(sarif_validator, json.loads(paths["sarif"].read_text(encoding="utf-8")))


def test_sarif_rules_results_and_suppressions() -> None:
    run = _run(ONE_FAILURE, [_waiver(expires="2026-07-31")])  # expired: a live finding
    doc = sarif_document(run, compute_verdicts(run))
    (sarif_run,) = doc["runs"]
    rules = {r["id"]: r for r in sarif_run["tool"]["driver"]["rules"]}
    assert set(rules) == {"AUTH-REST-001", "AUTHZ-REST-004", "AUTH-GRPC-001"}  # one per requirement
    rule = rules["AUTH-REST-001"]
    assert rule["help"]["text"] == FIX_001
    assert rule["properties"]["security-severity"] == "9.5" and "security" in rule["properties"]["tags"]
    assert rules["AUTHZ-REST-004"]["properties"]["security-severity"] == "5.5"
    (result,) = sarif_run["results"]  # one per failing or warning outcome, none for the pass
    assert result["ruleId"] == "AUTH-REST-001" and result["level"] == "error"
    assert sarif_run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == "AUTH-REST-001"
    location = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert location == "https://qdrant-a.prod:6333"
    assert "suppressions" not in result
    assert sarif_run["invocations"][0]["exitCode"] == 1

    waived = _run(ONE_FAILURE, [_waiver()])
    (result,) = sarif_document(waived, compute_verdicts(waived))["runs"][0]["results"]
    (suppression,) = result["suppressions"]
    assert suppression["status"] == "accepted" and "owner sec-team" in suppression["justification"]
    assert result["properties"]["outcome"] == "waived"


def test_sarif_reports_a_harness_error_as_a_notification_not_a_finding() -> None:
    run = _run({"AUTH-REST-001": "error", "AUTH-GRPC-001": "pass"})
    sarif_run = sarif_document(run, compute_verdicts(run))["runs"][0]
    assert sarif_run["results"] == []
    (note,) = sarif_run["invocations"][0]["toolExecutionNotifications"]
    assert note["associatedRule"]["id"] == "AUTH-REST-001" and note["level"] == "error"


# ---------------------------------------------------------------------------
# one failure in all five outputs


def test_one_failure_shows_severity_and_remediation_in_every_output(tmp_path: Path) -> None:
    paths = write_all(_run(ONE_FAILURE), None, tmp_path)
    texts = {key: path.read_text(encoding="utf-8") for key, path in paths.items()}
    assert set(texts) == {"results", "junit", "html", "sarif", "summary"}
    for key, text in texts.items():
        text = text.replace("\\", "")  # summary.md escapes Markdown characters
        assert "AUTH-REST-001" in text, key
        assert "critical" in text, f"{key} does not show the severity"
        assert "QDRANT__SERVICE__API_KEY" in text, f"{key} does not show the remediation"
    doc = json.loads(texts["results"])
    (finding,) = doc["findings"]
    assert finding["severity"] == "critical" and finding["remediation"] == FIX_001 and finding["gating"]
    assert load_results(paths["results"]).requirements[0].severity == "critical"


def test_a_fixed_flaw_names_its_advisory_in_every_output(tmp_path: Path) -> None:
    advisory = "GHSA-3v92-w72v-j994, Qdrant #9031 (v1.18.1)"
    run = _run(ONE_FAILURE)
    run = dataclasses.replace(run, requirements=[dataclasses.replace(CRITICAL, fix=advisory), MEDIUM, HELD])
    paths = write_all(run, None, tmp_path)
    for key, path in paths.items():
        assert "GHSA-3v92-w72v-j994" in path.read_text(encoding="utf-8").replace("\\", ""), key
    (finding,) = json.loads(paths["results"].read_text(encoding="utf-8"))["findings"]
    assert finding["advisory"] == advisory and finding["remediation"] == FIX_001
    (plain,) = json.loads(write_all(_run(ONE_FAILURE), None, tmp_path / "plain")["results"].read_text())["findings"]
    assert plain["advisory"] is None


def test_waived_failure_is_waived_in_every_output(tmp_path: Path) -> None:
    paths = write_all(_run(ONE_FAILURE, [_waiver()]), None, tmp_path)
    for key, path in paths.items():
        assert "waived" in path.read_text(encoding="utf-8"), key
    doc = json.loads(paths["results"].read_text(encoding="utf-8"))
    assert doc["counts"]["waived"] == 1 and doc["counts"]["fail"] == 0
    assert doc["matrix"][0]["outcome"] == "waived" and doc["findings"][0]["outcome"] == "waived"
    assert doc["records"][0]["outcome"] == "fail"  # what the target did is kept


def test_summary_md_verdict_and_table() -> None:
    run = _run(ONE_FAILURE)
    text = render_summary_md(run, compute_verdicts(run))
    assert "**NOT SECURE**" in text and "**does not hold** (exit 1)" in text
    row = next(line for line in text.splitlines() if "AUTH-REST-001" in line and line.startswith("|"))
    assert "**critical**" in row and "fail, gating" in row and "served data without a key" in row
    assert "QDRANT\\_\\_SERVICE\\_\\_API\\_KEY" in row  # Markdown-escaped, renders as written


def test_step_summary_is_appended_only_when_set(tmp_path: Path) -> None:
    assert append_step_summary("x", {}) is None
    target = tmp_path / "step-summary.md"
    target.write_text("earlier step\n")
    assert append_step_summary("## ours", {"GITHUB_STEP_SUMMARY": str(target)}) == target
    assert target.read_text() == "earlier step\n## ours\n"

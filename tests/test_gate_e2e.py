"""The gate end to end: a real run with one failure, its five report files, waivers and the threshold.

The reference server gets one fault (the API key is read from a query
parameter, AUTH-REST-010, severity high) and the run is narrowed to that test
and its twin, so each run takes a few seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qdrant_conformance.fixtures.catalog import load_requirements
from tests.test_harness_run import run_suite

SELECT = [
    "suites/test_auth_api_key.py",
    "-k",
    "rest_refuses_requests_without_credential or rest_key_not_accepted_from_query_or_cookie",
    "--reference-fault",
    "key-in-query",
]
FAILING = "AUTH-REST-010"
LABEL_GLOB = "reference server (emulating Qdrant *)"


def _reports(tmp_path: Path) -> dict[str, str]:
    (run_dir,) = (tmp_path / "reports").iterdir()
    names = {"results.json", "junit.xml", "report.html", "results.sarif", "summary.md"}
    assert {p.name for p in run_dir.iterdir()} >= names
    return {name: (run_dir / name).read_text(encoding="utf-8") for name in names}


def _waivers(tmp_path: Path, *, target: str | None = LABEL_GLOB, expires: str = "2099-12-31") -> Path:
    scope = f"    target: {json.dumps(target)}\n" if target else ""
    path = tmp_path / "waivers.yaml"
    path.write_text(
        f"waivers:\n  - requirement: {FAILING}\n{scope}    reason: vendor fix scheduled\n"
        f"    expires: {expires}\n    owner: platform-security\n"
    )
    return path


def _output(proc) -> str:  # type: ignore[no-untyped-def]
    return proc.stdout + proc.stderr


def test_one_failure_reaches_all_five_outputs_with_severity_and_remediation(tmp_path: Path) -> None:
    step_summary = tmp_path / "step-summary.md"
    proc = run_suite(SELECT, tmp_path, env={"GITHUB_STEP_SUMMARY": str(step_summary)})
    out = _output(proc)
    assert proc.returncode == 1, out[-3000:]
    req = load_requirements()[FAILING]
    assert req.severity == "high" and "query" in req.remediation
    marker = req.remediation.split(";")[0][:40]  # the first words of the fix, unescaped in every format
    for name, text in _reports(tmp_path).items():
        plain = text.replace("\\", "").replace("&quot;", '"').replace("&#x27;", "'")
        assert FAILING in plain, name
        assert "high" in plain, f"{name} does not show the severity"
        assert marker in plain, f"{name} does not show the remediation"
    reports = _reports(tmp_path)
    sarif = json.loads(reports["results.sarif"])
    (result,) = sarif["runs"][0]["results"]
    assert result["ruleId"] == FAILING and result["level"] == "error"
    # The embedded server has no lasting URL (its ports change every run): the location names the target.
    location = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert location.startswith("qsc-target:reference%20server"), location
    assert step_summary.read_text() == reports["summary.md"]  # written there automatically


@pytest.mark.parametrize(
    "how, expires, target, code, status",
    [
        ("cli", "2099-12-31", LABEL_GLOB, 0, "accepted"),  # active, scoped to this target
        ("env", "2000-01-01", None, 1, "expired"),  # expired: no longer waives
        ("target-file", "2099-12-31", "https://qdrant-prod-*", 1, "other-target"),  # another target's waiver
    ],
)
def test_waivers_decide_the_exit_code(tmp_path: Path, how: str, expires: str, target: str | None, code: int,
                                      status: str) -> None:
    path = _waivers(tmp_path, target=target, expires=expires)
    args, env = list(SELECT), {}
    if how == "cli":
        args += ["--waivers", str(path)]
    elif how == "env":
        env["QSC_WAIVERS"] = str(path)
    else:
        target_file = tmp_path / "target.yaml"
        target_file.write_text(f"waivers: {path}\n")
        args += ["--target-file", str(target_file)]
    proc = run_suite(args, tmp_path, env=env)
    assert proc.returncode == code, _output(proc)[-3000:]
    results = json.loads(_reports(tmp_path)["results.json"])
    assert [b["status"] for b in results["baseline_status"]] == [status]
    if status == "accepted":
        assert results["findings"][0]["outcome"] == "waived" and "waivers: 1 waived" in _output(proc)
    if status == "expired":
        assert "EXPIRED, no longer waiving" in _output(proc)


def test_stale_waiver_is_reported_and_the_run_passes(tmp_path: Path) -> None:
    proc = run_suite([*SELECT[:3], "--waivers", str(_waivers(tmp_path))], tmp_path)  # no fault
    assert proc.returncode == 0, _output(proc)[-3000:]
    assert "STALE, matching no failure" in _output(proc)
    assert "stale: matches no failure" in _reports(tmp_path)["summary.md"]


def test_old_baseline_file_still_works_with_a_deprecation_note(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text(f"- id: {FAILING}\n  reason: tracked upstream\n")
    proc = run_suite([*SELECT, "--baseline", str(baseline)], tmp_path)
    assert proc.returncode == 0, _output(proc)[-3000:]
    assert "old baseline file without expiry (deprecated)" in _output(proc)


def test_severity_threshold_above_the_finding_lets_the_gate_hold(tmp_path: Path) -> None:
    proc = run_suite([*SELECT, "--severity-threshold", "critical"], tmp_path)
    out = _output(proc)
    assert proc.returncode == 0, out[-3000:]
    assert "NOT SECURE" in out and f"below --severity-threshold critical (not gating): {FAILING}" in out


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--severity-threshold", "severe"], "--severity-threshold must be one of"),
        (["--waivers", "MISSING"], "cannot read file"),
        (["--waivers", "EXPIRY-LESS"], "has no 'expires'"),
    ],
)
def test_bad_waiver_or_threshold_input_is_one_line_and_exit_4(tmp_path: Path, args: list[str], needle: str) -> None:
    bad = tmp_path / "bad-waivers.yaml"
    bad.write_text(f"waivers:\n  - {{requirement: {FAILING}, reason: r, owner: o}}\n")
    args = [str(tmp_path / "missing.yaml") if a == "MISSING" else str(bad) if a == "EXPIRY-LESS" else a for a in args]
    proc = run_suite(["suites/test_auth_api_key.py", *args], tmp_path, timeout=60)
    out = _output(proc)
    assert proc.returncode == 4, out[-2000:]
    lines = [line for line in out.splitlines() if "qsc:" in line]
    assert len(lines) == 1 and needle in lines[0], out[-2000:]

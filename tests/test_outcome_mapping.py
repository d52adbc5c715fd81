"""Which failures are findings: only a suite's own ``assert`` / ``pytest.fail`` may make a test *fail*.

A harness exception (a client's ``OSError``, a launcher's error, an assertion
inside ``fixtures/``) is *error*, and no requirement fails because of one
(docs/DESIGN.md, Outcomes). Each run goes through the plugin exactly as a
user's run does, in a subprocess.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_harness_run import run_suite

SUITE = "suites/test_auth_api_key.py"
REST_TESTS = "rest_refuses_wrong_key or rest_accepts_key_in_api_key_header or rest_wrong_key_is_401"
GRPC_TEST = "grpc_refuses_wrong_key"


def _records(tmp_path: Path) -> dict[str, dict[str, object]]:
    (results,) = (tmp_path / "reports").rglob("results.json")
    doc = json.loads(results.read_text())
    return {str(r["name"]): r for r in doc["records"]}


def test_client_oserror_mid_request_is_an_error_and_fails_no_requirement(tmp_path: Path) -> None:
    proc = run_suite([SUITE, "-p", "tests.broken_client", "-k", f"{REST_TESTS} or {GRPC_TEST}"], tmp_path)
    output = proc.stdout + proc.stderr
    records = _records(tmp_path)
    rest = {name: r for name, r in records.items() if r["protocol"] == "rest"}
    assert len(rest) == 3, output[-3000:]
    for name, record in rest.items():
        assert record["outcome"] == "error", (name, record)
        assert "Bad file descriptor" in str(record["reason"]), record["reason"]
    # The twin: the same run judged gRPC, which the broken REST client does not touch.
    assert records["test_grpc_refuses_wrong_key"]["outcome"] == "pass", output[-3000:]
    assert not [name for name, r in records.items() if r["outcome"] == "fail"]
    assert "ERROR at call of" in output and "FAILED" not in output, output[-3000:]
    # Errors are no finding: the verdict cannot say NOT SECURE, and the run could not tell (exit 3).
    assert "NOT SECURE" not in output and "NOT COMPATIBLE" not in output, output[-3000:]
    assert proc.returncode == 3, output[-3000:]


def test_a_suite_assertion_about_the_server_is_a_failure(tmp_path: Path) -> None:
    """The positive twin: the same tests against a server answering with the wrong body fail."""
    proc = run_suite([SUITE, "--reference-fault", "wrong-401-body", "--gate", "compatible", "-k", REST_TESTS], tmp_path)
    output = proc.stdout + proc.stderr
    records = _records(tmp_path)
    assert records["test_rest_wrong_key_is_401_with_qdrant_body"]["outcome"] == "fail", output[-3000:]
    assert records["test_rest_accepts_key_in_api_key_header"]["outcome"] == "pass", output[-3000:]
    assert not [name for name, r in records.items() if r["outcome"] == "error"], output[-3000:]
    assert proc.returncode == 1, output[-3000:]


# -- info: an INFO-level requirement's observation is never a finding ------------------------------

HARD = "suites/test_hard_config.py"
#: The three observations on the reference server (it discloses its version and answers any Origin, as
#: Qdrant does) and a MUST of the same file that holds, so the verdict has something to rest on.
OBSERVATIONS = "version_disclosure or cors_on_defaults or cors_switched_off"
OBSERVED = {"HARD-REST-011", "HARD-GRPC-012", "HARD-REST-013"}


def _results(tmp_path: Path) -> dict[str, object]:
    (results,) = (tmp_path / "reports").rglob("results.json")
    doc: dict[str, object] = json.loads(results.read_text())
    return doc


def _by_requirement(doc: dict[str, object]) -> dict[str, str]:
    return {str(r["requirement"]): str(r["outcome"]) for r in doc["records"]}  # type: ignore[attr-defined]


def test_an_observation_is_info_even_under_strict(tmp_path: Path) -> None:
    proc = run_suite([HARD, "-k", OBSERVATIONS, "--strict"], tmp_path)
    output = proc.stdout + proc.stderr
    doc = _results(tmp_path)
    outcomes = _by_requirement(doc)
    assert {rid: outcomes[rid] for rid in OBSERVED} == dict.fromkeys(OBSERVED, "info"), output[-3000:]
    assert outcomes["HARD-REST-003"] == "pass", output[-3000:]
    # Never a finding: the strict gate holds, pytest counts no failure, the summary lists them as info.
    assert proc.returncode == 0, output[-3000:]
    assert "SECURE" in output and "NOT SECURE" not in output and "FAILED" not in output, output[-3000:]
    assert "1 passed, 3 deselected, 3 info in" in output, output[-3000:]
    assert "info: HARD-REST-011 (rest): GET / without a credential discloses version" in output, output[-3000:]
    assert doc["counts"]["info"] == 3 and doc["counts"]["warning"] == 0  # type: ignore[index]
    assert {o["requirement"] for o in doc["observations"]} == OBSERVED  # type: ignore[attr-defined]
    # The evidence shows the exchange that disclosed the version.
    record = next(r for r in doc["records"] if r["requirement"] == "HARD-REST-011")  # type: ignore[attr-defined]
    assert any(line.startswith("GET ") and '"version":' in line for line in record["evidence"]), record


@pytest.mark.parametrize(("strict", "outcome", "code"), [(False, "warning", 0), (True, "fail", 1)],
                         ids=["default", "strict"])
def test_no_browser_clients_makes_cors_on_defaults_a_should(tmp_path: Path, strict: bool, outcome: str,
                                                            code: int) -> None:
    args = [HARD, "-k", "cors_on_defaults or cors_switched_off", *(["--strict"] if strict else [])]
    proc = run_suite(args, tmp_path, env={"QSC_NO_BROWSER_CLIENTS": "1"})
    output = proc.stdout + proc.stderr
    doc = _results(tmp_path)
    assert _by_requirement(doc)["HARD-REST-013"] == outcome, output[-3000:]
    assert proc.returncode == code, output[-3000:]
    level = {r["id"]: r["level"] for r in doc["requirements"]}  # type: ignore[attr-defined]
    assert level["HARD-REST-013"] == "SHOULD" and level["HARD-REST-011"] == "INFO"
    assert doc["target"]["no_browser_clients"] == "declared"  # type: ignore[index]
    record = next(r for r in doc["records"] if r["requirement"] == "HARD-REST-013")  # type: ignore[attr-defined]
    assert "declared with --no-browser-clients" in record["reason"], record


def test_no_browser_clients_has_three_spellings(tmp_path: Path) -> None:
    from qdrant_conformance.fixtures.target import resolve

    target_file = tmp_path / "target.yaml"
    target_file.write_text("no_browser_clients: true\n")
    assert resolve({}, {}).declarations == frozenset()
    assert resolve({"no_browser_clients": True}, {}).declarations == {"no_browser_clients"}
    assert resolve({}, {"QSC_NO_BROWSER_CLIENTS": "true"}).no_browser_clients
    assert resolve({"target_file": str(target_file)}, {}).no_browser_clients

"""Which failures are findings: only a suite's own ``assert`` / ``pytest.fail`` may make a test *fail*.

A harness exception (a client's ``OSError``, a launcher's error, an assertion
inside ``fixtures/``) is *error*, and no requirement fails because of one
(docs/DESIGN.md, Outcomes). Each run goes through the plugin exactly as a
user's run does, in a subprocess.
"""

from __future__ import annotations

import json
from pathlib import Path

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

"""Verdicts that are hard to earn wrongly (issue 16), checked end to end as a user runs the suite.

- a route that answers 501 / UNIMPLEMENTED to the manage key makes its rows *error*, never pass;
- a target claiming an old release still runs the security checks of later fixes, and a failure
  says "vulnerable release" and names the fix;
- sslyze made unimportable gives an INCOMPLETE secure verdict and a non-zero exit, not "unsupported";
- every pass / fail / warning record of a default run carries the exchange that decided it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.server_helpers import start_server
from tests.test_harness_run import run_suite


def _records(tmp_path: Path) -> list[dict[str, Any]]:
    (results,) = (tmp_path / "reports").rglob("results.json")
    doc = json.loads(results.read_text())
    records: list[dict[str, Any]] = doc["records"]
    return records


def _results(tmp_path: Path) -> dict[str, Any]:
    (results,) = (tmp_path / "reports").rglob("results.json")
    doc: dict[str, Any] = json.loads(results.read_text())
    return doc


def _by_test(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["nodeid"].split("::", 1)[1]: r for r in records}


# -- three-valued allowance -------------------------------------------------------------------

ALIAS_SELECTION = ["suites/test_authz_sweep.py", "suites/test_auth_api_key.py",
                   "-k", "list_aliases- or test_grpc_refuses_calls_without_credential"]
#: Checks whose verdict rests on an *allowed* answer (the positive twin, or the credential checked).
RESTING_ON_ALLOWED = ("unauth", "manage", "alt", "ro_read")


@pytest.mark.parametrize("fault", [None, "route-answers-501"], ids=["clean", "route-answers-501"])
def test_a_route_answering_501_makes_its_rows_error_never_pass(tmp_path: Path, fault: str | None) -> None:
    args = [*ALIAS_SELECTION, *(["--reference-fault", fault] if fault else [])]
    proc = run_suite(args, tmp_path)
    output = proc.stdout + proc.stderr
    tests = _by_test(_records(tmp_path))
    rows = {name: r for name, r in tests.items() if name.startswith("test_authz[list_aliases-")}
    assert {f"test_authz[list_aliases-{p}-{c}]" for p in ("rest", "grpc") for c in RESTING_ON_ALLOWED} <= set(rows)
    twin_test = tests["test_grpc_refuses_calls_without_credential"]
    if fault is None:
        # The control: the same selection on a server that answers the route passes, so the
        # errors below come from the 501, not from the selection.
        assert proc.returncode == 0, output[-3000:]
        # (unauth_403 describes releases before v1.9.0: unsupported on the default v1.19.0)
        assert {r["outcome"] for r in rows.values()} == {"pass", "unsupported"}
        assert twin_test["outcome"] == "pass"
        return
    for name, record in rows.items():
        check = name.removesuffix("]").rsplit("-", 1)[1]
        if check in RESTING_ON_ALLOWED:
            assert record["outcome"] == "error", (name, record["outcome"], record["reason"])
            assert "inconclusive" in record["reason"] and ("501" in record["reason"] or "UNIMPLEMENTED" in
                                                           record["reason"]), record["reason"]
        elif record["outcome"] != "unsupported":
            # Exact refusals (401 bodies) and hygiene do not rest on the manage key's answer.
            assert record["outcome"] == "pass", (name, record["reason"])
    assert twin_test["outcome"] == "error" and "UNIMPLEMENTED" in twin_test["reason"]
    assert "SECURITY INCOMPLETE" in output and proc.returncode == 3, output[-3000:]


# -- security is not gated by a claimed version ----------------------------------------------

#: Two security requirements whose ``since`` is a fix (catalog ``fix:``): the empty-key trap
#: (#9199, v1.19.0; spec §1.4) and the route-pattern whitelist (#9254, v1.18.2; spec §2.5).
#: (AUTHZ-REST-012 no longer serves: since the Web UI recast it applies from v1.2.0, and
#: v1.18.1's raw-prefix whitelist only falls through to an empty 404, spec §9b.)
FIXES = ["suites/test_hard_config.py::test_empty_key_setting_grants_nothing",
         "suites/test_authz_special.py::test_unknown_paths_get_401_before_routing"]


def test_claimed_vulnerable_release_is_checked_and_named(tmp_path: Path) -> None:
    # The reference server emulating v1.18.1 keeps an empty api_key as a key (spec §1.4).
    proc = run_suite([*FIXES, "--reference-version", "1.18.1"], tmp_path)
    output = proc.stdout + proc.stderr
    records = {r["requirement"]: r for r in _records(tmp_path)}
    # Both run as security checks: neither is "unsupported" for a target claiming a release before the fix.
    assert set(records) == {"ADV-REST-004", "AUTHZ-REST-011"}
    for record in records.values():
        assert any("version gate: vulnerable release" in e and "1.18.1" in e for e in record["evidence"])
    # v1.18.1 lets an empty api-key header match the empty api_key: a failure, named.
    trap = records["ADV-REST-004"]
    assert trap["outcome"] == "fail", (trap["outcome"], trap["reason"])
    reason = trap["reason"]
    assert reason.startswith("vulnerable release: the target claims Qdrant 1.18.1"), reason
    assert "#9199" in reason and "b3dcd5f345" in reason, reason
    # Unknown paths are not whitelisted by any prefix, so v1.18.1 already refuses them: judged on behaviour.
    assert records["AUTHZ-REST-011"]["outcome"] == "pass", records["AUTHZ-REST-011"]["reason"]
    assert proc.returncode == 1 and "NOT SECURE" in output, output[-3000:]


def test_fixed_release_passes_the_same_checks(tmp_path: Path) -> None:
    proc = run_suite([*FIXES, "--reference-version", "1.19.0"], tmp_path)
    records = _records(tmp_path)
    assert {r["requirement"]: r["outcome"] for r in records} == {"ADV-REST-004": "pass", "AUTHZ-REST-011": "pass"}
    assert not any("vulnerable" in e for r in records for e in r["evidence"])
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]


# -- the empty-key trap on an external deployment: named from behaviour -----------------------

EMPTY_KEY_CHECKS = ["suites/test_hard_config.py::test_empty_key_setting_grants_nothing",
                    "suites/test_auth_api_key.py::test_rest_refuses_requests_without_credential"]
#: A deployment given a key: the emptied manage key beside the alternate key (v1.18.3 keeps it as a key,
#: spec §1.4), every key empty on v1.19.0 (authentication off), and a sound one (the twin).
EMPTY_KEY_DEPLOYMENTS = {
    "trap-1.18.3": ({"api_key": "", "alt_api_key": "KEY"}, "1.18.3"),
    "all-empty-1.19.0": ({"api_key": ""}, "1.19.0"),
    "sound": ({"api_key": "KEY"}, "1.19.0"),
}


@pytest.mark.parametrize("deployment", list(EMPTY_KEY_DEPLOYMENTS))
def test_external_empty_key_cause_is_named(tmp_path: Path, deployment: str) -> None:
    key = "qsc-selftest-" + os.urandom(16).hex()
    service, version = EMPTY_KEY_DEPLOYMENTS[deployment]
    key_file = tmp_path / "api.key"
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    srv = start_server({"service": {k: key if v == "KEY" else v for k, v in service.items()},
                        "reference_server": {"version": version}})
    try:
        proc = run_suite([*EMPTY_KEY_CHECKS, "--target", "external", "--rest-url", srv.base_url,
                          "--profile", "api-key", "--api-key-file", str(key_file)], tmp_path)
    finally:
        srv.stop()
    output = proc.stdout + proc.stderr
    records = {r["requirement"]: r for r in _records(tmp_path)}
    trap, open_ = records["ADV-REST-004"], records["AUTH-REST-001"]
    if deployment == "sound":
        assert (trap["outcome"], open_["outcome"]) == ("pass", "pass"), output[-3000:]
        assert proc.returncode == 0, output[-3000:]
    elif deployment == "trap-1.18.3":
        # The empty header matches the emptied key; a request without one is still refused.
        assert (trap["outcome"], open_["outcome"]) == ("fail", "pass"), output[-3000:]
        assert trap["reason"].startswith("vulnerable release: the target claims Qdrant 1.18.3"), trap["reason"]
        assert "the empty-key trap" in trap["reason"] and "an empty api-key header gets" in trap["reason"]
        assert "#9199" in trap["reason"] and "QDRANT__SERVICE__API_KEY" in trap["reason"], trap["reason"]
        assert any('[api-key: ""]' in line and "HTTP 200" in line for line in trap["evidence"]), trap["evidence"]
    else:
        # Telemetry does not show the key state (spec §10): both failing records name the likely cause.
        for record in (trap, open_):
            assert record["outcome"] == "fail", output[-3000:]
            assert "empty-key trap" in record["reason"] and "#9199" in record["reason"], record["reason"]
            assert "telemetry does not show whether a key is configured" in record["reason"], record["reason"]
        assert proc.returncode == 1 and "NOT SECURE" in output, output[-3000:]
    assert key not in output and not any(key in p.read_text(errors="replace")
                                         for p in (tmp_path / "reports").rglob("*") if p.is_file())


# -- an unrun MUST is not a pass ----------------------------------------------------------------


def test_unimportable_sslyze_is_incomplete_with_a_non_zero_exit(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "sslyze"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("sslyze made unimportable by a self-test")\n')
    proc = run_suite(["suites/test_tls_posture.py", "-k", "legacy_protocols or broken_cipher"], tmp_path,
                     env={"PYTHONPATH": str(shadow.parent)})
    output = proc.stdout + proc.stderr
    by_req: dict[str, set[str]] = {}
    for record in _records(tmp_path):
        by_req.setdefault(record["requirement"], set()).add(record["outcome"])
    for rid in ("TLS-REST-006", "TLS-GRPC-005", "TLS-REST-007", "TLS-GRPC-006"):
        assert "error" in by_req[rid] and "unsupported" not in by_req[rid], (rid, by_req[rid])
    doc = _results(tmp_path)
    secure = doc["verdicts"]["secure"]
    assert secure["status"] == "incomplete" and not secure["holds"], secure
    assert {"TLS-REST-007", "TLS-GRPC-006"} <= set(secure["deciding"])
    assert doc["gate_result"]["exit_code"] == 3 and proc.returncode == 3, output[-3000:]
    assert "SECURITY INCOMPLETE" in output


# -- evidence on every record ----------------------------------------------------------------


def test_every_decided_record_of_a_default_run_has_evidence(tmp_path: Path) -> None:
    run_suite(["suites/"], tmp_path, timeout=900)
    records = _records(tmp_path)
    assert len(records) > 1000
    decided = [r for r in records if r["outcome"] in ("pass", "fail", "warning", "info")]
    bare = [r["nodeid"] for r in decided if not r["evidence"]]
    assert not bare, f"{len(bare)} of {len(decided)} decided records carry no evidence: {bare[:10]}"
    sweep = [r for r in decided if "test_authz_sweep.py" in r["nodeid"]]
    assert sweep and all(any(e.startswith("[credential: ") for e in r["evidence"]) for r in sweep)

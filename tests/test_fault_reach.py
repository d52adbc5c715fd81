"""Fault reach: which tests a server asked about which fault seam (the kill test's ``reach`` scope).

The attribution rules on made-up consults, the server's log on a real start, and one recorded clean run
of real suite tests: a gRPC refusal test reaches the gRPC auth seam, a REST refusal test does not.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qdrant_conformance.reference_server.fault_policy import REACH_DIR_ENV, FaultPolicy, ReachLog, handling_request
from tests import fault_reach, kill_helpers
from tests.fault_reach import Consult

MS = 1_000_000
#: Three tests: (node id, setup start, setup end, teardown end), in ms from 0.
WINDOWS = [("t1", 0, 10 * MS, 100 * MS), ("t2", 110 * MS, 120 * MS, 200 * MS), ("t3", 210 * MS, 220 * MS, 300 * MS)]


def _reached(ready: int | None, *consults: Consult) -> dict[str, set[str]]:
    return fault_reach.attribute(WINDOWS, [(ready, list(consults))])


def test_a_request_in_a_tests_call_belongs_to_that_test_only() -> None:
    got = _reached(0, Consult(150 * MS, True, "f"))
    assert got == {"t1": set(), "t2": {"f"}, "t3": set()}


def test_a_request_during_setup_or_between_tests_belongs_to_every_later_test() -> None:
    # setup builds module-scoped things later tests use; between tests nobody owns the request
    assert _reached(0, Consult(115 * MS, True, "f")) == {"t1": set(), "t2": {"f"}, "t3": {"f"}}
    assert _reached(0, Consult(105 * MS, True, "f")) == {"t1": set(), "t2": {"f"}, "t3": {"f"}}


def test_server_wide_and_unready_consults_belong_to_every_test_after_them() -> None:
    wide = {"t1": set(), "t2": {"f"}, "t3": {"f"}}
    assert _reached(0, Consult(150 * MS, False, "f")) == wide  # start-up, timer, handshake
    assert _reached(160 * MS, Consult(150 * MS, True, "f")) == wide  # readiness probe or warm-up
    assert _reached(None, Consult(150 * MS, True, "f")) == wide  # readiness not recorded (cluster node)
    assert _reached(0, Consult(5 * MS, False, "f")) == {"t1": {"f"}, "t2": {"f"}, "t3": {"f"}}


def test_the_reach_log_marks_requests_and_writes_server_wide_seams_once(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REACH_DIR_ENV, str(tmp_path))
    policy = FaultPolicy.from_names(["grpc-no-auth"], ReachLog.from_env())
    assert policy.active("grpc-no-auth")
    assert not policy.active("key-in-query")
    assert not policy.active("key-in-query")  # server-wide: written once
    with handling_request():
        policy.active("key-in-query")
        policy.active("key-in-query")
    workdir, consults = fault_reach.read_server(tmp_path / f"{os.getpid()}.reach")
    assert workdir == str(Path.cwd().resolve())
    assert [(c.in_request, c.fault) for c in consults] == [
        (False, "grpc-no-auth"), (False, "key-in-query"), (True, "key-in-query"), (True, "key-in-query")]


def test_without_the_variable_nothing_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REACH_DIR_ENV, raising=False)
    assert ReachLog.from_env() is None


def test_a_recorded_clean_run_attributes_seams_to_the_tests_that_reach_them(tmp_path: Path) -> None:
    suite = "suites/test_auth_api_key.py"
    rest, grpc_test = f"{suite}::test_rest_refuses_wrong_key", f"{suite}::test_grpc_refuses_wrong_key"
    run = kill_helpers.run_suites([suite], None, tmp_path / "reports", select=[rest, grpc_test],
                                  reach_dir=tmp_path / "seams")
    assert run.problem is None and run.exit_code == 0, run.problem
    reach = fault_reach.reach_by_test(tmp_path / "seams")
    assert set(reach) == {rest, grpc_test}
    assert "grpc-no-auth" in reach[grpc_test], reach[grpc_test]
    assert "grpc-no-auth" not in reach[rest], "a REST-only test reached the gRPC auth seam"
    assert "unauthenticated-403" in reach[rest], reach[rest]  # the REST refusal seam, asked by its request

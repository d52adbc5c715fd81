"""Helpers for the fault kill test: which suites to run, running them, judging the results.

A fault is *killed* when the suite, run against the reference server with that
fault switched on (``--reference-fault NAME --strict``), fails at least one
requirement the fault declares (:attr:`Fault.requirements`) that the clean
server holds, and fails nothing else: no requirement outside the fault's
declaration (requirements + collateral) fails unless it also fails on the
clean server (the control). Errors count as failures: a fault that only
crashes the harness is not caught.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reference_server.faults import Fault

ROOT = Path(__file__).resolve().parents[1]
#: Outcomes that mean "the requirement did not hold" in a strict run.
FAILING = frozenset({"fail", "error", "warning"})
#: One suite subprocess may not take longer than this.
RUN_TIMEOUT_S = 240.0
SCORE_PATH = ROOT / "reports" / "out" / "kill-score.json"

_COLLECT = r"""
import json, sys, tempfile, pytest

class Collector:
    def __init__(self):
        self.found = {}
        self.errors = []

    def pytest_collectreport(self, report):
        if report.failed:
            self.errors.append(report.nodeid)

    def pytest_collection_finish(self, session):
        for item in session.items:
            for mark in item.iter_markers("requirement"):
                self.found.setdefault(mark.args[0], []).append(item.nodeid)

c = Collector()
with tempfile.TemporaryDirectory() as out:
    pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "--report-dir", out, "suites/"], plugins=[c])
print("QSC-COLLECT" + json.dumps({"found": c.found, "errors": c.errors}))
"""


def collect_requirement_tests() -> dict[str, list[str]]:
    """Requirement id → node ids of the suite tests marked with it (one real collection of ``suites/``)."""
    proc = subprocess.run([sys.executable, "-c", _COLLECT], cwd=ROOT, capture_output=True, text=True,
                          timeout=180)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("QSC-COLLECT")), None)
    if line is None:
        raise RuntimeError(f"collecting suites/ failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    data = json.loads(line[len("QSC-COLLECT"):])
    if data["errors"]:
        raise RuntimeError(f"collection errors in suites/: {data['errors']}")
    return {req: list(ids) for req, ids in data["found"].items()}


def test_file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def suite_files(requirements: Iterable[str], tests: dict[str, list[str]]) -> list[str]:
    """The suite files holding the tests of ``requirements``, sorted."""
    return sorted({test_file(n) for req in requirements for n in tests.get(req, [])})


def selection(fault: Fault, tests: dict[str, list[str]], scope: str) -> list[str]:
    """What a fault's run passes to pytest.

    ``scope`` ``tests`` (the default): the node ids of the tests of the fault's
    declared requirements (requirements and collateral), in collection order.
    ``files``: the whole files holding the tests of its requirements; slower,
    and every other test in those files must hold too.
    """
    if scope == "files":
        return suite_files(fault.requirements, tests)
    ids: dict[str, None] = {}
    for req in fault.declared:
        for nodeid in tests.get(req, []):
            if test_file(nodeid) in suite_files(fault.requirements, tests):
                ids[nodeid] = None
    return list(ids)


@dataclass
class SuiteRun:
    """What one suite subprocess showed: per-requirement overall outcomes, or why there are none."""

    files: list[str]
    fault: str | None
    exit_code: int
    seconds: float
    outcomes: dict[str, str] = field(default_factory=dict)
    failed_tests: dict[str, list[str]] = field(default_factory=dict)  # requirement → failing node ids
    problem: str | None = None  # the run produced no usable results.json

    def failing(self) -> set[str]:
        return {req for req, outcome in self.outcomes.items() if outcome in FAILING}


def run_suites(files: list[str], fault: str | None, report_dir: Path, *, select: list[str] | None = None) -> SuiteRun:
    """Run ``select`` (node ids or files; default ``files``) against the embedded reference server.

    ``fault`` switched on, or the clean server when ``None``.
    """
    report_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pytest", *(select or files), "--strict", "--report-dir", str(report_dir), "-q",
           "-p", "no:cacheprovider"]
    if fault is not None:
        cmd += ["--reference-fault", fault]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QSC_", "QDRANT__", "PYTEST_"))}
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return SuiteRun(files, fault, -1, time.monotonic() - started, problem=f"timed out after {RUN_TIMEOUT_S} s")
    seconds = time.monotonic() - started
    results = sorted(report_dir.glob("*/results.json"))
    if len(results) != 1:
        tail = (proc.stdout[-1500:] + proc.stderr[-1500:]).strip()
        return SuiteRun(files, fault, proc.returncode, seconds,
                        problem=f"expected one results.json, found {len(results)} (exit {proc.returncode}): {tail}")
    data: dict[str, Any] = json.loads(results[0].read_text())
    run = SuiteRun(files, fault, proc.returncode, seconds,
                   outcomes={row["requirement"]: row["outcome"] for row in data["matrix"] if row.get("outcome")})
    for record in data["records"]:
        if record["outcome"] in FAILING:
            reason = " ".join((record.get("reason") or "").split())[:300]
            run.failed_tests.setdefault(record.get("requirement") or "?", []).append(f"{record['nodeid']}: {reason}")
    for nodeid in data.get("unattributed") or []:
        run.failed_tests.setdefault("?", []).append(nodeid)
    return run


def cached_control(files: list[str], cache_dir: Path) -> SuiteRun:
    """The clean run of ``files``, computed once per file set across xdist workers (file lock)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = "+".join(f.replace("/", "_") for f in files)
    lock_path = cache_dir / f"{key}.lock"
    result_path = cache_dir / f"{key}.json"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if result_path.exists():
                return SuiteRun(**json.loads(result_path.read_text()))
            run = run_suites(files, None, cache_dir / f"{key}-reports")
            result_path.write_text(json.dumps(asdict(run)))
            return run
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def control_for(files: list[str], cache_dir: Path) -> dict[str, str]:
    """Per-requirement outcomes of the clean server over ``files`` (each file's control run once)."""
    merged: dict[str, str] = {}
    for f in files:
        run = cached_control([f], cache_dir)
        if run.problem is not None:
            raise RuntimeError(f"the clean control run of {f} produced no results: {run.problem}")
        for req, outcome in run.outcomes.items():
            if outcome in FAILING or req not in merged:
                merged[req] = outcome
    return merged


@dataclass
class Verdict:
    fault: str
    killed: bool
    caught_by: list[str]
    undeclared: list[str]
    seconds: float
    files: list[str]
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(fault: Fault, run: SuiteRun, control: dict[str, str]) -> Verdict:
    """Killed ⇔ a declared requirement fails (and holds on the clean server) and nothing undeclared fails."""
    if run.problem is not None:
        return Verdict(fault.name, False, [], [], run.seconds, run.files, f"no results: {run.problem}")
    clean_failing = {req for req, outcome in control.items() if outcome in FAILING}
    failing = run.failing()
    caught = sorted((failing & set(fault.requirements)) - clean_failing)
    undeclared = sorted(failing - set(fault.declared) - clean_failing)
    if "?" in run.failed_tests:
        undeclared.append("unattributed")
    parts = []
    if not caught:
        held = {req: run.outcomes.get(req, "not run") for req in fault.requirements}
        parts.append("no declared requirement failed: " + ", ".join(f"{r}={o}" for r, o in held.items()))
    if undeclared:
        shown = {req: run.failed_tests.get(req, []) for req in undeclared}
        parts.append("undeclared requirements failed: " + "; ".join(
            f"{req} ({run.outcomes.get(req, '?')}: {' | '.join(ids[:2])})" for req, ids in shown.items()))
    if caught:
        parts.append("caught by " + ", ".join(caught))
    return Verdict(fault.name, bool(caught) and not undeclared, caught, undeclared, run.seconds, run.files,
                   "; ".join(parts))


def write_score(verdicts: list[Verdict], path: Path = SCORE_PATH, *, seconds: float | None = None) -> dict[str, Any]:
    """Write ``kill-score.json`` and return its content."""
    killed = sum(1 for v in verdicts if v.killed)
    data = {
        "killed": killed,
        "total": len(verdicts),
        "score": f"{killed}/{len(verdicts)}",
        "seconds": seconds,
        "faults": [v.to_dict() for v in sorted(verdicts, key=lambda v: v.fault)],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
    return data


def report_kill_score(terminalreporter: Any) -> None:
    """Terminal-summary hook body: collect the kill verdicts of this session, print and write the score."""
    verdicts: dict[str, Verdict] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            for key, value in getattr(report, "user_properties", None) or []:
                if key == "kill_verdict" and getattr(report, "when", "call") == "call":
                    data = json.loads(value)
                    verdicts[data["fault"]] = Verdict(**data)
    if not verdicts:
        return
    seconds: float | None = None
    start = getattr(terminalreporter, "_session_start", None)
    if start is not None and hasattr(start, "elapsed"):
        seconds = round(float(start.elapsed().seconds), 1)
    data = write_score(list(verdicts.values()), seconds=seconds)
    terminalreporter.write_sep("=", "fault kill score")
    terminalreporter.write_line(f"kill score: {data['killed']}/{data['total']} faults killed"
                                + (f" in {seconds:.0f} s" if seconds is not None else "")
                                + f" (written to {SCORE_PATH.relative_to(ROOT)})")
    for v in sorted(verdicts.values(), key=lambda v: v.fault):
        if not v.killed:
            terminalreporter.write_line(f"  NOT KILLED {v.fault}: {v.detail[:400]}")

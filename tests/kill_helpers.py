"""Helpers for the fault kill test: which suites to run, running them, judging the results.

What a fault's run executes depends on the *scope* (``QSC_KILL_SCOPE``, :func:`kill_scope`):

- ``declared`` (the default, what ``pytest tests/`` runs in CI): the suite tests
  of the fault's declared requirements (``requirements`` + ``collateral``) and
  nothing else (:func:`declared_selection`). About a third of the cost of
  ``layers``, which keeps the CI self-test step within its time.
- ``layers``: every suite test that one of the fault's *layers* reaches
  (``Fault.selection``, the hand-reviewed mapping in ``reference_server/faults.py``),
  so a fault that breaks something it does not declare shows up even where its
  declared requirements have no tests.
- ``reach`` (``bench/kill_test.py`` by default): the tests of the declared
  requirements plus every suite test during which a server *asked about the
  fault's seam* in the clean control run (recorded by ``tests/fault_reach.py``,
  rules there; coverage-based test selection as mutation-testing tools do it).
  A test no server asked about the fault behaves the same with the fault on, so
  this is the whole suite minus tests that cannot change. Faults the harness
  makes rather than a server seam (a deployment certificate, a container
  option) add their layers' selection.

Either way the selection runs against the reference server with that fault
switched on, under the **default gate** (no ``--strict``, ``--gate secure``):
the run a user makes, judged by the same rules. Its control is the clean
server's run of the same files, whole (one run per file, shared between xdist
workers).

Score rules (:func:`judge`). Requirements the clean server does not hold
(control outcome other than ``pass``) cannot show anything and are set aside;
a fault none of whose declared requirements holds on the clean server is not
killed. For the rest:

- A fault that declares a MUST is scored *killed* when every declared
  requirement the clean server holds fails under the default gate: a MUST has
  a ``fail`` record (an ``error`` is not a catch: a fault that only crashes
  the harness is not caught), a SHOULD a ``warning``; the verdict of each
  such MUST's kind says so (NOT SECURE for security, NOT COMPATIBLE for
  compatibility) and a security MUST makes the run exit 1.
- A fault that declares only SHOULDs is scored *warned* when each of them
  that the clean server holds shows ``warning``, the default run does not fail
  on it (its kind's verdict does not fail, exit code not 1) and the same
  records under ``--strict`` do (re-judged from ``results.json`` with
  :func:`reports.verdicts.compute_verdicts`, no second run).
- Either way, no undeclared requirement among the tests that ran may get
  worse than on the clean server: a record outcome fail, error, warning,
  unsupported or disabled that the control did not have. ``collateral`` is
  declared and tolerated. In the ``declared`` scope that catches a declared
  requirement's test that carries another requirement's check; only the
  ``layers`` scope looks for breakage elsewhere.
"""

from __future__ import annotations

import atexit
import dataclasses
import fcntl
import fnmatch
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qdrant_conformance.fixtures.launchers.process import REPO_ROOT, SHARED_ZYGOTE_ENV, Zygote, clean_env
from qdrant_conformance.reference_server.faults import Fault

ROOT = Path(__file__).resolve().parents[1]
#: Record outcomes that mean "worse than a pass": a new one on an undeclared requirement is collateral.
WORSE = frozenset({"fail", "error", "warning", "unsupported", "disabled"})
#: Aggregate outcomes that mean "the requirement did not hold" (the clean-server check).
FAILING = frozenset({"fail", "error", "warning"})
#: One suite subprocess may not take longer than this.
RUN_TIMEOUT_S = 420.0
SCORE_PATH = ROOT / "reports" / "out" / "kill-score.json"

KILLED, WARNED, NOT_KILLED, NOT_WARNED = "killed", "warned", "not killed", "not warned"

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


#: ``QSC_KILL_SCOPE`` values: what a fault's kill run executes (module docstring).
SCOPES = ("declared", "layers", "reach")
#: Layers whose change the harness makes (no server seam is asked about it): the reach scope runs their selection.
HARNESS_LAYERS = frozenset({"deployment-certificate", "container"})
DEFAULT_SCOPE = "declared"


def kill_scope() -> str:
    """The scope named by ``QSC_KILL_SCOPE`` (default ``declared``); anything else is a usage error."""
    scope = os.environ.get("QSC_KILL_SCOPE", "").strip() or DEFAULT_SCOPE
    if scope not in SCOPES:
        raise ValueError(f"QSC_KILL_SCOPE={scope!r}: expected one of {', '.join(SCOPES)}")
    return scope


def declared_selection(fault: Fault, tests: dict[str, list[str]]) -> list[str]:
    """The node ids of the suite tests of the requirements the fault must fail.

    Not its collateral: a collateral outcome is tolerated whatever it is, so running those tests here would cost
    time and show nothing; the layered scope runs them, and anything else the fault could reach.
    """
    return sorted({n for req in fault.requirements for n in tests.get(req, [])})


def kill_selection(fault: Fault, tests: dict[str, list[str]], scope: str,
                   reach: dict[str, set[str]] | None = None) -> list[str]:
    """The pytest arguments of the fault's kill run in ``scope`` (``reach``: faults reached per node id)."""
    if scope == "declared" or fault.unbounded:
        return declared_selection(fault, tests)
    nodeids = sorted({n for ids in tests.values() for n in ids})
    if scope == "layers":
        return expand_selection(fault.selection, nodeids)
    if reach is None:
        raise ValueError("the reach scope needs the control runs' reach")
    return reach_selection(fault, tests, reach, nodeids)


def reach_selection(fault: Fault, tests: dict[str, list[str]], reach: dict[str, set[str]],
                    nodeids: Iterable[str]) -> list[str]:
    """Node ids: the declared requirements' tests, every test that reached the fault's seam, and for a fault
    the harness makes (:data:`HARNESS_LAYERS`) its layers' selection among ``nodeids`` (every suite test)."""
    chosen = set(declared_selection(fault, tests))
    chosen |= {nodeid for nodeid, faults in reach.items() if fault.name in faults}
    if HARNESS_LAYERS & set(fault.layers):
        chosen |= {n for n in nodeids if covers(fault.selection, n)}
    return sorted(chosen)


def control_key(files: Iterable[str], reach: bool = False) -> str:
    return "+".join(f.replace("/", "_") for f in files) + ("-reach" if reach else "")


def reach_of_controls(files: Iterable[str], cache_dir: Path) -> dict[str, set[str]]:
    """Faults reached per node id, over the reach-recording control runs of ``files`` (each run once, shared)."""
    from tests import fault_reach

    merged: dict[str, set[str]] = {}
    for f in files:
        run = cached_control([f], cache_dir, reach=True)
        if run.problem is not None:
            raise RuntimeError(f"the clean control run of {f} produced no results: {run.problem}")
        merged.update(fault_reach.reach_by_test(cache_dir / f"{control_key([f], reach=True)}-seams"))
    return merged


def selection_files(selection: Iterable[str]) -> list[str]:
    """The suite files of a selection (files, node ids or patterns)."""
    return sorted({test_file(sel) for sel in selection})


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


def all_suite_files() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "suites").glob("test_*.py"))


def covers(selection: Iterable[str], nodeid: str) -> bool:
    """Does a selection (files, ``file::test``, ``file::test[pattern]``) run the test ``nodeid``?"""
    file, _, rest = nodeid.partition("::")
    name = rest.split("[", 1)[0]
    for sel in selection:
        if sel == file or sel == f"{file}::{name}" or sel == nodeid:
            return True
        if "[" in sel and fnmatch.fnmatchcase(nodeid, sel.replace("[", "[[]", 1)):
            return True
    return False


def selection_gaps(fault: Fault, tests: dict[str, list[str]]) -> list[str]:
    """Declared requirements the fault's selection does not reach: none of their tests, or not all their files."""
    gaps = []
    for req in fault.declared:
        ids = tests.get(req, [])
        reached = [n for n in ids if covers(fault.selection, n)]
        files = {test_file(n) for n in ids} - set(fault.suite_files)
        if not reached or files:
            gaps.append(f"{req}: {len(reached)} of {len(ids)} tests reached, files not run: {sorted(files)}")
    return gaps


def expand_selection(selection: Iterable[str], nodeids: Iterable[str]) -> list[str]:
    """The pytest arguments for a selection: files and test names as they are, patterns as node ids."""
    chosen = list(selection)
    plain = [sel for sel in chosen if "[" not in sel]
    patterns = [sel for sel in chosen if "[" in sel]
    expanded = [n for n in nodeids if covers(patterns, n) and not covers(plain, n)]
    return plain + expanded


@dataclass
class SuiteRun:
    """What one suite subprocess showed: per-requirement outcomes and verdicts, or why there are none."""

    files: list[str]
    fault: str | None
    exit_code: int
    seconds: float
    outcomes: dict[str, str] = field(default_factory=dict)  # requirement → aggregate outcome (matrix)
    records: dict[str, list[str]] = field(default_factory=dict)  # requirement → its records' outcomes
    failed_tests: dict[str, list[str]] = field(default_factory=dict)  # requirement → failing node ids
    verdicts: dict[str, str] = field(default_factory=dict)  # "secure"/"compatible" → status (default gate)
    strict_verdicts: dict[str, str] = field(default_factory=dict)  # the same records judged with --strict
    cpu_seconds: float = 0.0  # user + system time of the subprocess and the servers it waited for
    problem: str | None = None  # the run produced no usable results.json
    results_json: str = ""  # the run's results.json, to re-judge its records without some requirements

    def failing(self) -> set[str]:
        return {req for req, outcome in self.outcomes.items() if outcome in FAILING}


def _strict_statuses(data: dict[str, Any], without: Iterable[str] = ()) -> dict[str, str]:
    """The verdict statuses the same records get under ``--strict`` (SHOULD findings then fail)."""
    return _statuses(data, strict=True, without=without)


def _statuses(data: dict[str, Any], *, strict: bool, without: Iterable[str] = ()) -> dict[str, str]:
    """The verdict statuses of the run's records, leaving out the records of the requirements ``without``."""
    from qdrant_conformance.reports.model import RunResult
    from qdrant_conformance.reports.verdicts import compute_verdicts

    run = RunResult.from_dict(data)
    left_out = set(without)
    run = dataclasses.replace(run, strict=strict, records=[r for r in run.records if r.requirement not in left_out])
    verdicts = compute_verdicts(run)
    return {"secure": verdicts.secure.status, "compatible": verdicts.compatible.status}


def statuses_without(run: SuiteRun, requirements: Iterable[str]) -> tuple[dict[str, str], dict[str, str]] | None:
    """(default-gate, ``--strict``) verdict statuses of ``run`` without the records of ``requirements``."""
    if not run.results_json or not Path(run.results_json).exists():
        return None
    data: dict[str, Any] = json.loads(Path(run.results_json).read_text())
    chosen = list(requirements)
    return _statuses(data, strict=False, without=chosen), _statuses(data, strict=True, without=chosen)


#: A selection of more node ids than this goes to pytest as a file (``tests/fault_reach.py``), not as arguments.
MAX_ARGS = 200


_SHARED: list[Zygote] = []


def _shared_zygote() -> Zygote:
    """One zygote for every run of this process (each run would otherwise start and import its own)."""
    if _SHARED and _SHARED[0].alive():
        return _SHARED[0]
    root = Path(tempfile.mkdtemp(prefix="qsc-kill-zygote-"))
    env = clean_env({"PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1", "QSC_PARENT_PID": str(os.getpid())})
    zygote = Zygote(root, env)
    _SHARED[:] = [zygote]

    def close() -> None:
        zygote.close()
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(close)
    return zygote


def _cpu_of(zygote: Zygote) -> float:
    """CPU seconds of the zygote and of the children it has reaped (``/proc/<pid>/stat``)."""
    pid = zygote.pid
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def run_suites(files: list[str], fault: str | None, report_dir: Path, *, select: list[str] | None = None,
               strict: bool = False, reach_dir: Path | None = None) -> SuiteRun:
    """Run ``select`` (node ids or files; default ``files``) against the embedded reference server.

    ``fault`` switched on, or the clean server when ``None``; the default gate unless ``strict``;
    ``reach_dir``: record which tests reach which fault seam there (``tests/fault_reach.py``).
    """
    from tests import fault_reach

    report_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QSC_", "QDRANT__", "PYTEST_"))}
    # A hundred runs import the same checkout: let the first write its bytecode (and pytest its rewritten
    # test modules) for the others to read, even where the environment asks for none. About 0.4 CPU-s a run.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    chosen = select or files
    plugins: list[str] = []
    if len(chosen) > MAX_ARGS:
        listing = report_dir / "selection.txt"
        listing.write_text("\n".join(chosen) + "\n")
        env[fault_reach.SELECT_ENV] = str(listing)
        chosen = selection_files(chosen)
        plugins = ["-p", "tests.fault_reach"]
    if reach_dir is not None:
        reach_dir.mkdir(parents=True, exist_ok=True)
        env[fault_reach.REACH_DIR_ENV] = str(reach_dir)
        plugins = ["-p", "tests.fault_reach"]
    # --tb=no: only results.json is read, and pytest's source-quoting tracebacks cost more than the tests
    # (0.15 s per failing test: half the sweep's time when many rows fail or err); reasons come from
    # the exception message, which --tb=no keeps.
    cmd = [sys.executable, "-m", "pytest", *chosen, "--report-dir", str(report_dir), "-q",
           "-p", "no:cacheprovider", "--tb=no", *plugins]
    if strict:
        cmd.append("--strict")
    if fault is not None:
        cmd += ["--reference-fault", fault]
    zygote = _shared_zygote()
    env[SHARED_ZYGOTE_ENV] = str(zygote.path)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    servers_before = _cpu_of(zygote)
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return SuiteRun(files, fault, -1, time.monotonic() - started, problem=f"timed out after {RUN_TIMEOUT_S} s")
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The servers are the shared zygote's children, reaped by it when the run stops them: their CPU
    # shows in the zygote's own counters, not in ours.
    cpu = round((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
                + _cpu_of(zygote) - servers_before, 1)
    tail = (proc.stdout[-1500:] + proc.stderr[-1500:]).strip()
    return read_run(report_dir, files, fault, proc.returncode, seconds, cpu, tail)


def read_run(report_dir: Path, files: list[str], fault: str | None, exit_code: int | None = None,
             seconds: float = 0.0, cpu: float = 0.0, tail: str = "") -> SuiteRun:
    """A :class:`SuiteRun` from the ``results.json`` a run left in ``report_dir`` (``exit_code``: the
    process's; ``None`` takes the one the run recorded)."""
    results = sorted(report_dir.glob("*/results.json"))
    if len(results) != 1:
        return SuiteRun(files, fault, -1 if exit_code is None else exit_code, seconds, cpu_seconds=cpu,
                        problem=f"expected one results.json, found {len(results)} (exit {exit_code}): {tail}")
    data: dict[str, Any] = json.loads(results[0].read_text())
    if exit_code is None:
        exit_code = int(data["gate_result"]["exit_code"])
    run = SuiteRun(files, fault, exit_code, seconds, cpu_seconds=cpu,
                   outcomes={row["requirement"]: row["outcome"] for row in data["matrix"] if row.get("outcome")},
                   verdicts={name: v["status"] for name, v in data["verdicts"].items()},
                   strict_verdicts=_strict_statuses(data), results_json=str(results[0]))
    for record in data["records"]:
        req = record.get("requirement") or "?"
        run.records.setdefault(req, []).append(record["outcome"])
        if record["outcome"] in WORSE - {"disabled", "unsupported"}:
            reason = " ".join((record.get("reason") or "").split())[:300]
            run.failed_tests.setdefault(req, []).append(f"{record['nodeid']}: {reason}")
    for nodeid in data.get("unattributed") or []:
        run.failed_tests.setdefault("?", []).append(nodeid)
    return run


def cached_control(files: list[str], cache_dir: Path, *, reach: bool = False) -> SuiteRun:
    """The clean run of ``files``, computed once per file set across xdist workers (file lock).

    ``reach``: the run also records which tests reach which fault seam (in ``<key>-seams/``).
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = control_key(files, reach)
    lock_path = cache_dir / f"{key}.lock"
    result_path = cache_dir / f"{key}.json"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if result_path.exists():
                return SuiteRun(**json.loads(result_path.read_text()))
            run = run_suites(files, None, cache_dir / f"{key}-reports",
                             reach_dir=cache_dir / f"{key}-seams" if reach else None)
            result_path.write_text(json.dumps(asdict(run)))
            return run
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass
class Control:
    """The clean server over a fault's files: aggregate outcome and record outcomes per requirement."""

    outcomes: dict[str, str]
    records: dict[str, set[str]]


def control_for(files: Iterable[str], cache_dir: Path, *, reach: bool = False) -> Control:
    """Merge the clean runs of ``files`` (each file's control run once, shared)."""
    merged = Control({}, {})
    for f in files:
        run = cached_control([f], cache_dir, reach=reach)
        if run.problem is not None:
            raise RuntimeError(f"the clean control run of {f} produced no results: {run.problem}")
        for req, outcome in run.outcomes.items():
            if req not in run.records:  # "not run" here: another file holds its tests
                continue
            if outcome in FAILING or req not in merged.outcomes:
                merged.outcomes[req] = outcome
        for req, outcomes in run.records.items():
            merged.records.setdefault(req, set()).update(outcomes)
    return merged


@dataclass
class Verdict:
    fault: str
    status: str  # killed / warned / not killed / not warned
    scored_as: str  # "MUST": scored as killed or not; "SHOULD": a SHOULD-only fault, warned or not
    caught_by: list[str]
    undeclared: list[str]
    seconds: float
    files: list[str]
    detail: str
    not_held: list[str] = field(default_factory=list)  # declared, but the clean server does not hold them
    missed: list[str] = field(default_factory=list)  # declared, held, and not failed by the fault
    exit_code: int | None = None
    verdicts: dict[str, str] = field(default_factory=dict)
    strict_verdicts: dict[str, str] = field(default_factory=dict)
    cpu_seconds: float = 0.0
    retried: bool = False
    #: Killed only through compatibility MUSTs: NOT COMPATIBLE, while the default (secure) gate still exits 0.
    compatibility_only: bool = False
    #: The miss may be the machine's doing (no results, or only errors where a definite outcome was wanted):
    #: worth one more run. A definite pass or fail is not retried.
    inconclusive: bool = False

    @property
    def killed(self) -> bool:
        return self.status == KILLED

    @property
    def ok(self) -> bool:
        """The fault passes the kill test: killed, or (SHOULD-only) warned."""
        return self.status in (KILLED, WARNED)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def scored_as(fault: Fault, levels: dict[str, str]) -> str:
    """``MUST`` when the fault declares a MUST requirement, else ``SHOULD`` (a SHOULD-only fault)."""
    return "MUST" if any(levels.get(req) == "MUST" for req in fault.requirements) else "SHOULD"


def _verdict_name(kind: str) -> str:
    return "secure" if kind == "security" else "compatible"


def judge(fault: Fault, run: SuiteRun, control: Control, catalog: dict[str, Any]) -> Verdict:
    """Apply the score rules of the module docstring to one fault run and its control."""
    levels = {req: catalog[req].level for req in fault.requirements if req in catalog}
    kinds = {req: catalog[req].kind for req in fault.requirements if req in catalog}
    scoring = scored_as(fault, levels)
    fail_status = NOT_KILLED if scoring == "MUST" else NOT_WARNED

    def verdict(status: str, detail: str, **extra: Any) -> Verdict:
        return Verdict(fault.name, status, scoring, extra.pop("caught", []), extra.pop("undeclared", []),
                       round(run.seconds, 1), run.files, detail, exit_code=run.exit_code, verdicts=run.verdicts,
                       strict_verdicts=run.strict_verdicts, cpu_seconds=run.cpu_seconds, **extra)

    if run.problem is not None:
        return verdict(fail_status, f"no results: {run.problem}", inconclusive=True)
    unknown = [req for req in fault.requirements if req not in catalog]
    held = [req for req in fault.requirements if control.outcomes.get(req) == "pass"]
    not_held = [f"{req}={control.outcomes.get(req, 'not run')}" for req in fault.requirements if req not in held]
    parts: list[str] = []
    if unknown:
        parts.append(f"not in the requirement catalog: {', '.join(unknown)}")
    if not_held:
        parts.append("set aside, the clean server does not hold them: " + ", ".join(not_held))

    caught: list[str] = []
    missed: list[str] = []
    for req in held:
        seen = set(run.records.get(req, []))
        wanted = "fail" if levels.get(req) == "MUST" else "warning"
        (caught if wanted in seen else missed).append(req)
    missed_text = [f"{req}={'/'.join(sorted(set(run.records.get(req, [])))) or 'not run'}" for req in missed]

    gate_problems: list[str] = []
    musts = [req for req in caught if levels.get(req) == "MUST"]
    shoulds = [req for req in caught if levels.get(req) == "SHOULD"]
    if scoring == "MUST":
        for kind in sorted({kinds[req] for req in musts}):
            name = _verdict_name(kind)
            if run.verdicts.get(name) != "fails":
                gate_problems.append(f"the {name} verdict is {run.verdicts.get(name)}, not fails")
        if any(kinds[req] == "security" for req in musts) and run.exit_code != 1:
            gate_problems.append(f"a security MUST failed but the run exited {run.exit_code}, not 1")
    else:
        default, strict, exit_code = run.verdicts, run.strict_verdicts, run.exit_code
        collateral_failed = [req for req in fault.collateral if "fail" in run.records.get(req, [])]
        if collateral_failed:
            # A collateral MUST (a twin the fault breaks, e.g. a verifying client refused by a bad
            # certificate) fails the default run by itself: judge the declared SHOULDs on the records
            # without the collateral ones, so the rule still asks "does the SHOULD alone fail the gate?"
            judged = statuses_without(run, fault.collateral)
            if judged is None:
                gate_problems.append("collateral failed and the run's results.json is gone: cannot re-judge")
            else:
                default, strict = judged
                exit_code = 1 if default.get("secure") == "fails" else 0
        for kind in sorted({kinds[req] for req in shoulds}):
            name = _verdict_name(kind)
            if default.get(name) == "fails":
                gate_problems.append(f"the default gate's {name} verdict fails on a SHOULD-only fault")
            if strict.get(name) != "fails":
                gate_problems.append(f"under --strict the {name} verdict is {strict.get(name)}, not fails")
        if exit_code == 1:
            gate_problems.append("the default run exited 1 on a SHOULD-only fault"
                                 + (" (collateral records left out)" if collateral_failed else ""))

    inconclusive = any({"fail", "warning", "pass"}.isdisjoint(run.records.get(req, [])) for req in missed)
    undeclared: list[str] = []
    for req, outcomes in sorted(run.records.items()):
        if req in fault.declared or fault.unbounded:
            continue
        worse = (set(outcomes) & WORSE) - control.records.get(req, set())
        if worse:
            inconclusive = inconclusive or not worse & {"fail", "warning"}
            undeclared.append(req if req != "?" else "unattributed")
            tests = " | ".join(run.failed_tests.get(req, [])[:2])
            parts.append(f"undeclared {req} got {'/'.join(sorted(worse))} "
                         f"(clean: {'/'.join(sorted(control.records.get(req, set()))) or 'not run'}): {tests}")

    if not held:
        parts.insert(0, "no declared requirement holds on the clean server, so none can show the fault")
    if missed:
        parts.insert(0, f"declared but not {'failed' if scoring == 'MUST' else 'warned'} under the default gate: "
                        + ", ".join(missed_text))
    parts.extend(gate_problems)
    ok = bool(held) and not missed and not undeclared and not gate_problems and not unknown
    if caught:
        parts.append(("caught by " if scoring == "MUST" else "warned by ") + ", ".join(caught))
    status = (KILLED if scoring == "MUST" else WARNED) if ok else fail_status
    compat_only = scoring == "MUST" and bool(musts) and all(kinds[req] == "compatibility" for req in musts)
    if ok and compat_only:
        parts.append("killed as NOT COMPATIBLE only: the default secure gate does not fail on it")
    return verdict(status, "; ".join(parts), caught=caught, undeclared=undeclared, not_held=not_held,
                   missed=missed_text, compatibility_only=compat_only, inconclusive=inconclusive)


def score_line(verdicts: Iterable[Verdict]) -> str:
    """``killed N/M under the default gate, no collateral; warned K/L (SHOULD-only faults)``."""
    chosen = list(verdicts)
    musts = [v for v in chosen if v.scored_as == "MUST"]
    shoulds = [v for v in chosen if v.scored_as == "SHOULD"]
    return (f"killed {sum(v.status == KILLED for v in musts)}/{len(musts)} under the default gate, no collateral; "
            f"warned {sum(v.status == WARNED for v in shoulds)}/{len(shoulds)} (SHOULD-only faults)")


def compatibility_only_line(verdicts: Iterable[Verdict]) -> str | None:
    """The killed faults that only a compatibility verdict catches (the default secure gate exits 0 on them)."""
    names = sorted(v.fault for v in verdicts if v.killed and v.compatibility_only)
    return f"of which killed as NOT COMPATIBLE only ({len(names)}): {', '.join(names)}" if names else None


def write_score(verdicts: list[Verdict], path: Path = SCORE_PATH, *, seconds: float | None = None,
                scope: str = DEFAULT_SCOPE) -> dict[str, Any]:
    """Write ``kill-score.json`` and return its content.

    ``killed``/``total`` keep their meaning for readers of older files: faults
    that pass the kill test (killed, or warned when SHOULD-only) of all faults.
    """
    musts = [v for v in verdicts if v.scored_as == "MUST"]
    shoulds = [v for v in verdicts if v.scored_as == "SHOULD"]
    load = os.getloadavg()
    data = {
        "score": score_line(verdicts),
        "scope": scope,
        "killed": sum(v.ok for v in verdicts),
        "total": len(verdicts),
        "must_faults": {"killed": sum(v.killed for v in musts), "total": len(musts),
                        "compatibility_only": sorted(v.fault for v in musts if v.killed and v.compatibility_only)},
        "should_only_faults": {"warned": sum(v.status == WARNED for v in shoulds), "total": len(shoulds)},
        "rules": "default gate (no --strict); every declared requirement the clean server holds fails "
                 "(MUST: fail, SHOULD: warning); no undeclared requirement worse than on the clean server",
        "scope_means": {"declared": "only the suite tests of each fault's declared requirements",
                        "layers": "every suite test that one of the fault's layers reaches",
                        "reach": "the declared requirements' tests and every suite test during which a server "
                                 "asked about the fault's seam in the clean run"}[scope],
        "seconds": seconds,
        "load_average": [round(x, 2) for x in load],
        "faults": [v.to_dict() for v in sorted(verdicts, key=lambda v: v.fault)],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
    return data


def verdict_from_dict(data: dict[str, Any]) -> Verdict:
    return Verdict(**data)


def report_kill_score(terminalreporter: Any) -> None:
    """Terminal-summary hook body: collect the kill verdicts of this session, print and write the score."""
    verdicts: dict[str, Verdict] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            for key, value in getattr(report, "user_properties", None) or []:
                if key == "kill_verdict" and getattr(report, "when", "call") == "call":
                    data = json.loads(value)
                    verdicts[data["fault"]] = verdict_from_dict(data)
    if not verdicts:
        return
    seconds: float | None = None
    start = getattr(terminalreporter, "_session_start", None)
    if start is not None and hasattr(start, "elapsed"):
        seconds = round(float(start.elapsed().seconds), 1)
    scope = kill_scope()
    data = write_score(list(verdicts.values()), seconds=seconds, scope=scope)
    terminalreporter.write_sep("=", "fault kill score")
    terminalreporter.write_line(f"kill score ({scope} scope): {data['score']}"
                                + (f" in {seconds:.0f} s" if seconds is not None else "")
                                + f" (written to {SCORE_PATH.relative_to(ROOT)})")
    compat = compatibility_only_line(verdicts.values())
    if compat:
        terminalreporter.write_line(f"  {compat}")
    for v in sorted(verdicts.values(), key=lambda v: v.fault):
        if not v.ok:
            terminalreporter.write_line(f"  {v.status.upper()} {v.fault}: {v.detail[:400]}")
    slowest = sorted(verdicts.values(), key=lambda v: v.seconds, reverse=True)[:5]
    terminalreporter.write_line("  slowest: " + ", ".join(f"{v.fault} {v.seconds:.0f} s ({v.cpu_seconds:.0f} s CPU)"
                                                         for v in slowest))

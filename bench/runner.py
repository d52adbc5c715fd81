"""One measured ``pytest`` run: wall, CPU of pytest and everything it started, and what the plugin saw.

The run is a subprocess, so ``getrusage(RUSAGE_CHILDREN)`` before and after it gives the CPU
seconds of pytest, its xdist workers and every server process they started and reaped (the
plugin adds what a container or an already-running server used, which are no children of ours).
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.pytest_plugin import STATS_ENV

ROOT = Path(__file__).resolve().parents[1]
#: A run that takes longer is stopped: a bench that never ends measures nothing.
RUN_TIMEOUT_S = 900.0
#: Bench-only switches a normal run never sees: dropped from the environment unless a run asks for them.
BENCH_ENV = ("QSC_BENCH_ROW_FACTOR", STATS_ENV)
#: Exit codes of a run that did what was asked: 0 the gate holds, 1 a finding (still a full run).
COMPLETED = (0, 1)


@dataclass
class Run:
    """What one pytest run took and saw."""

    label: str
    argv: list[str]
    env: dict[str, str]
    wall: float = 0.0
    cpu: float = 0.0
    load: float = 0.0
    load_after: float = 0.0
    #: Cores other processes kept busy during the run, on average: the machine's busy CPU time over the
    #: run less this run's own. The engine's processes (dockerd, docker-proxy) count as others.
    others: float | None = None
    #: CPU seconds the whole machine was busy during the run (every process: the engine, the kernel).
    machine: float | None = None
    rc: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    problem: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    #: (text, shown as) substitutions for :meth:`command`: temporary paths that mean nothing later.
    placeholders: list[tuple[str, str]] = field(default_factory=list)
    #: The plan key (``full:process``, ``sweep:x2``, ...) this run was made for.
    key: str = ""
    #: The command as saved, for a run read back from a document.
    saved_command: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def command(self) -> str:
        """The command line that reproduces this run, from the repository root."""
        if self.saved_command is not None:
            return self.saved_command
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        argv = " ".join(shlex.quote(a) for a in ["python", *self.argv[1:]])
        text = f"{env} {argv}".strip()
        for value, shown in self.placeholders:
            text = text.replace(value, shown)
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Run:
        """A run read back from a saved document (``run_log``), enough to recompute its figures."""
        return cls(label=data["label"], argv=[], env={}, wall=data["wall_s"], cpu=data["cpu_s"], load=data["load"],
                   load_after=data["load_after"], others=data.get("others"), machine=data.get("machine_cpu_s"),
                   rc=data["rc"],
                   counts=data["counts"], problem=data["problem"], stats=data["stats"], key=data.get("key", ""),
                   saved_command=data["command"])

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "command": self.command(), "wall_s": round(self.wall, 3),
                "cpu_s": round(self.cpu, 3), "load": round(self.load, 2), "load_after": round(self.load_after, 2),
                "others": None if self.others is None else round(self.others, 2),
                "machine_cpu_s": None if self.machine is None else round(self.machine, 3),
                "rc": self.rc, "counts": self.counts, "problem": self.problem, "stats": self.stats}


def busy_cpu() -> float:
    """CPU seconds the whole machine has spent busy since boot (``/proc/stat``; 0.0 where there is none)."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    # user nice system idle iowait irq softirq steal (guest time is already in user).
    busy = sum(fields[i] for i in (0, 1, 2, 5, 6, 7) if i < len(fields))
    return busy / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def pytest_argv(paths: list[str], extra: list[str]) -> list[str]:
    """``python -m pytest PATHS -q ... EXTRA`` with the bench plugin loaded."""
    return [sys.executable, "-m", "pytest", *paths, "-q", "-p", "no:cacheprovider", "-p", "bench.pytest_plugin",
            *extra]


def run_pytest(label: str, paths: list[str], extra: list[str] | None = None, env: dict[str, str] | None = None,
               *, extra_cpu: Any = None, placeholders: list[tuple[str, str]] | None = None) -> Run:
    """Run pytest once and measure it.

    ``env`` holds the variables that define the run (they are part of its reproducing command);
    ``extra_cpu`` is an optional callable returning CPU seconds used outside our children so far
    (an already-running server), read before and after.
    """
    run_env = dict(env or {})
    argv = pytest_argv(paths, list(extra or []))
    run = Run(label=label, argv=argv, env=run_env, placeholders=list(placeholders or []))
    with tempfile.TemporaryDirectory(prefix="qsc-bench-") as scratch:
        stats_prefix = str(Path(scratch) / "stats")
        reports = Path(scratch) / "reports"
        full_env = {k: v for k, v in os.environ.items() if k not in BENCH_ENV}
        full_env.update(run_env)
        full_env[STATS_ENV] = stats_prefix
        # `-p bench.pytest_plugin` must import in xdist workers too, whatever their cwd.
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        run.load = os.getloadavg()[0]
        cpu_before = _children_cpu()
        outside_before = extra_cpu() if extra_cpu else 0.0
        machine_before = busy_cpu()
        started = time.monotonic()
        try:
            proc = subprocess.run([*argv, "--report-dir", str(reports)], cwd=ROOT, env=full_env,
                                  capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            run.wall = time.monotonic() - started
            run.rc = -1
            run.problem = f"did not finish within {RUN_TIMEOUT_S:.0f} s"
            return run
        run.wall = time.monotonic() - started
        machine = busy_cpu() - machine_before
        run.cpu = _children_cpu() - cpu_before + ((extra_cpu() - outside_before) if extra_cpu else 0.0)
        run.load_after = os.getloadavg()[0]
        run.rc = proc.returncode
        run.counts = _counts(reports)
        run.stats = merge_stats(sorted(Path(scratch).glob("stats.*.json")))
    if run.rc not in COMPLETED:
        run.problem = f"exit code {run.rc}: {last_line(proc.stdout + proc.stderr)}"
    elif not run.counts:
        run.problem = "no results.json was written"
    # The servers' CPU that our children's rusage cannot see (containers).
    run.cpu += sum(run.stats.get("container_cpu_seconds", {}).values())
    run.machine = machine if machine > 0 else None
    run.others = max(0.0, machine - run.cpu) / run.wall if run.wall > 0 else 0.0
    return run


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    picked = [ln for ln in lines if ln.startswith(("qsc: error", "E ", "ERROR"))]
    return ((picked or lines or ["no output"])[-1])[:240]


def _counts(reports: Path) -> dict[str, int]:
    for path in reports.glob("*/results.json"):
        try:
            counts = json.loads(path.read_text()).get("counts", {})
        except (OSError, ValueError):
            return {}
        return {k: int(v) for k, v in counts.items() if isinstance(v, int)}
    return {}


def merge_stats(paths: list[Path]) -> dict[str, Any]:
    """One run's plugin files (the controller and any xdist workers) as one record.

    Per-file and per-protocol seconds come from the controller only: under xdist it sees every
    report, and the workers' own copies would count each test twice.
    """
    merged: dict[str, Any] = {"starts": [], "server_peak_bytes": {}, "container_cpu_seconds": {},
                              "test_peak_rss_bytes": 0, "file_seconds": {}, "protocol_seconds": {},
                              "protocol_tests": {}, "pass_seconds": {}, "pass_tests": {},
                              "processes": 0}
    for path in paths:
        data = json.loads(path.read_text())
        who = data["process"]
        prefix = "" if who == "main" else f"{who}/"
        merged["processes"] += 1
        merged["starts"].extend({**s, "process": who} for s in data["starts"])
        merged["test_peak_rss_bytes"] = max(merged["test_peak_rss_bytes"], data["peak_rss_bytes"])
        for label, value in data["server_peak_bytes"].items():
            merged["server_peak_bytes"][prefix + label] = value
        for label, value in data.get("server_cpu_seconds", {}).items():
            if label.startswith("docker:"):
                merged["container_cpu_seconds"][prefix + label] = value
        if who == "main":
            for key in ("file_seconds", "protocol_seconds", "protocol_tests", "pass_seconds", "pass_tests"):
                merged[key] = data.get(key, {})
    return merged

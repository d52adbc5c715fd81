"""Wall time the TLS suites add to a run against the embedded reference server (target: < 15 s).

    /work/venv/bin/python bench/tls_suite.py [-n 3] [--full] [-- extra pytest args]

Default: runs the TLS suites alone (``suites/test_tls_*.py suites/test_mtls.py``)
N times, each in a fresh pytest process that starts its own servers, as a user
sees it. The figure that matters is what they *add* to a full run; alone,
they also pay pytest's start-up and the harness's PKI, so "alone" is an upper
bound of "added". With ``--full`` it also runs ``pytest suites/`` with and
without the TLS modules (``--ignore``) and prints the difference.

Per run: wall seconds, pytest's seconds, the slowest phases (from
``--durations``), the outcome line, and the 1-minute load average (other
processes on a shared machine inflate every figure), and the CPU seconds of
pytest plus every server it started (load-independent: on an idle 2-core
machine the wall time is at least half of it). Then min / median / max.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 15.0
TLS_MODULES = ["suites/test_tls_enforcement.py", "suites/test_tls_certificate.py", "suites/test_tls_posture.py",
               "suites/test_tls_rotation.py", "suites/test_tls_startup.py", "suites/test_mtls.py"]
_SUMMARY = re.compile(r"^(?P<counts>\d+ (?:passed|failed|error|errors|skipped|warning|unsupported|disabled)"
                      r"[^\n]*?) in (?P<secs>[\d.]+)s", re.MULTILINE)
_DURATION = re.compile(r"^(?P<secs>[\d.]+)s (?P<phase>setup|call|teardown)\s+(?P<test>\S+)", re.MULTILINE)


def one_run(targets: list[str], extra: list[str]) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="qsc-bench-tls-") as reports:
        cmd = [sys.executable, "-m", "pytest", *targets, "-q", "-p", "no:cacheprovider", "--durations=6",
               "--report-dir", reports, *extra]
        load = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU of pytest and every server it started and reaped: what the run costs whatever else the machine does.
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out = proc.stdout
    found = list(_SUMMARY.finditer(out))
    summary = found[-1] if found else None
    slow = [f"{float(m.group('secs')):.1f}s {m.group('phase')} {m.group('test').split('::')[-1]}"
            for m in _DURATION.finditer(out)][:4]
    return {
        "wall": wall,
        "cpu": cpu,
        "pytest": float(summary.group("secs")) if summary else None,
        "counts": summary.group("counts") if summary else _last_error(out + proc.stderr),
        "rc": proc.returncode,
        "load": load,
        "slow": slow,
    }


def _last_error(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.startswith(("E ", "ERROR", "qsc: error"))]
    return (lines[-1] if lines else text.strip().splitlines()[-1] if text.strip() else "no output")[:300]


def _series(label: str, targets: list[str], n: int, extra: list[str]) -> list[float]:
    walls = []
    print(f"== {label}: pytest {' '.join(targets)}")
    for i in range(n):
        run = one_run(targets, extra)
        walls.append(float(run["wall"]))  # type: ignore[arg-type]
        pytest_s = f"{run['pytest']:.1f}s" if run["pytest"] is not None else "?"
        print(f"  run {i + 1}: wall {run['wall']:.1f}s (pytest {pytest_s}), CPU {run['cpu']:.1f}s, exit {run['rc']}, "
              f"load {run['load']:.1f}: {run['counts']}")
        for line in run["slow"]:  # type: ignore[attr-defined]
            print(f"      {line}")
    print(f"  min {min(walls):.1f}s  median {statistics.median(walls):.1f}s  max {max(walls):.1f}s")
    return walls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3, help="runs per series (default 3)")
    parser.add_argument("--full", action="store_true", help="also time suites/ with and without the TLS modules")
    parser.add_argument("extra", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; target: the TLS suites add < {TARGET_S:g} s")
    alone = _series("TLS suites alone", TLS_MODULES, args.n, args.extra)
    verdict_on = statistics.median(alone)
    if args.full:
        ignore = [f"--ignore={m}" for m in TLS_MODULES]
        without = _series("suites/ without TLS", ["suites/", *ignore], args.n, args.extra)
        full = _series("suites/ with TLS", ["suites/"], args.n, args.extra)
        added = statistics.median(full) - statistics.median(without)
        print(f"== added by the TLS suites (median full - median without): {added:.1f}s")
        verdict_on = added
    ok = verdict_on < TARGET_S
    print(f"== {'within' if ok else 'OVER'} target: {verdict_on:.1f}s vs {TARGET_S:g}s "
          f"(1-minute load now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

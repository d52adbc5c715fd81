"""Wall time of the authorization sweep against the embedded reference server (target: < 20 s).

    /work/venv/bin/python bench/authz_sweep.py [-n 3] [-- extra pytest args]

Runs ``pytest suites/test_authz_sweep.py`` N times, each in its own process
with its own server (start-up included, as a user sees it), and prints per
run: wall seconds, pytest's own seconds, the slowest setup (the server start),
the outcome counts, and then min / median / max. Load from other processes on
the machine shows up here; ``os.getloadavg()`` is printed next to each run, and
so is the CPU time pytest and the server it started used (their exchanges are
sequential, so on an idle machine the wall time is close to that sum).
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
sys.path.insert(0, str(ROOT))

from fixtures.catalog.access import CREDENTIALS, grpc_rows, rest_rows, sweep_coverage  # noqa: E402

TARGET_S = 20.0
_SUMMARY = re.compile(r"^(?P<counts>\d+ (?:passed|failed|error|errors|skipped|unsupported)[^\n]*?) in "
                      r"(?P<secs>[\d.]+)s", re.MULTILINE)
_SETUP = re.compile(r"^(?P<secs>[\d.]+)s setup\s", re.MULTILINE)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(extra: list[str]) -> tuple[float, float, float | None, float | None, str, int]:
    with tempfile.TemporaryDirectory(prefix="qsc-bench-authz-") as reports:
        cmd = [sys.executable, "-m", "pytest", "suites/test_authz_sweep.py", "-q", "-p", "no:cacheprovider",
               "--durations=5", "--report-dir", reports, *extra]
        cpu_before = _children_cpu()
        started = time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
        wall = time.monotonic() - started
        cpu = _children_cpu() - cpu_before
    out = proc.stdout
    found = list(_SUMMARY.finditer(out))
    summary = found[-1] if found else None
    setups = [float(m.group("secs")) for m in _SETUP.finditer(out)]
    return (wall, cpu, float(summary.group("secs")) if summary else None, max(setups) if setups else None,
            summary.group("counts") if summary else _last_error(out + proc.stderr), proc.returncode)


def _last_error(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.startswith(("E ", "ERROR", "qsc: error"))]
    return (lines[-1] if lines else text.strip().splitlines()[-1] if text.strip() else "no output")[:300]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3, help="number of runs (default 3)")
    parser.add_argument("extra", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args()

    cov = sweep_coverage()
    exchanges = (len(rest_rows()) + len(grpc_rows())) * len(CREDENTIALS)
    print(f"sweep: {cov['rest_routes']} REST routes, {cov['grpc_methods']} gRPC methods, "
          f"{cov['credential_classes']} credential classes, up to {exchanges} exchanges per run")
    walls: list[float] = []
    worst_rc = 0
    for i in range(1, args.n + 1):
        load = os.getloadavg()[0]
        wall, cpu, inner, setup, counts, rc = one_run(args.extra)
        walls.append(wall)
        worst_rc = max(worst_rc, rc)
        inner_s = f"{inner:.2f}s" if inner is not None else "?"
        setup_s = f"{setup:.2f}s" if setup is not None else "?"
        verdict = "ok" if wall < TARGET_S else f"OVER {TARGET_S:.0f}s"
        print(f"run {i}: wall {wall:.2f}s (pytest {inner_s}, slowest setup {setup_s}; "
              f"CPU pytest+server {cpu:.2f}s) load {load:.1f} rc {rc} [{counts}] {verdict}")
    print(f"wall min {min(walls):.2f}s  median {statistics.median(walls):.2f}s  max {max(walls):.2f}s  "
          f"(target < {TARGET_S:.0f}s)")
    return 0 if worst_rc in (0, 1) else worst_rc


if __name__ == "__main__":
    sys.exit(main())

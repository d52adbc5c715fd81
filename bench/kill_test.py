"""Time the fault kill test and print its score.

    python bench/kill_test.py [-n WORKERS] [--scope tests|files] [-k EXPR]

Runs ``pytest -n WORKERS tests/test_fault_kill.py`` (default 2 workers, the
CI machine's core count), then prints the wall time, the kill score from
``reports/out/kill-score.json`` and the slowest faults. Exit code: pytest's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCORE = ROOT / "reports" / "out" / "kill-score.json"
BUDGET_S = 300.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--workers", default="2", help="pytest-xdist workers (default 2)")
    parser.add_argument("--scope", choices=("tests", "files"), default="tests",
                        help="what each fault runs: its requirements' tests (default) or whole suite files")
    parser.add_argument("-k", dest="keyword", default=None, help="only the faults matching this -k expression")
    args = parser.parse_args(argv)

    cmd = [sys.executable, "-m", "pytest", "tests/test_fault_kill.py", "-q", "-p", "no:cacheprovider",
           "-n", args.workers]
    if args.keyword:
        cmd += ["-k", args.keyword]
    env = dict(os.environ, QSC_KILL_SCOPE=args.scope)
    before = SCORE.stat().st_mtime if SCORE.exists() else None
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env)
    elapsed = time.monotonic() - started
    load = os.getloadavg()
    print(f"kill test: {elapsed:.1f} s wall with -n {args.workers}, scope {args.scope} "
          f"(budget {BUDGET_S:.0f} s; load average now {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f})")
    if not SCORE.exists() or SCORE.stat().st_mtime == before:
        print("kill score: not written (no fault ran)")
        return proc.returncode or 1
    data = json.loads(SCORE.read_text())
    print(f"kill score: {data['killed']}/{data['total']}")
    for fault in data["faults"]:
        if not fault["killed"]:
            print(f"  not killed: {fault['fault']}: {fault['detail'][:300]}")
    slowest = sorted(data["faults"], key=lambda f: f["seconds"], reverse=True)[:5]
    print("slowest: " + ", ".join(f"{f['fault']} {f['seconds']:.0f} s" for f in slowest))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())

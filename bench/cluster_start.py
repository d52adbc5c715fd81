"""Cluster start-up: first node spawned → every peer lists every peer (GET /cluster), for 3 nodes.

    /work/venv/bin/python bench/cluster_start.py [-n 5] [--nodes 3] [--no-docker] [--docker-network bridge]

Starts a p2p-TLS cluster of the reference server N times with the process
launcher, and N times with the Docker launcher when the image
``local/qsc-reference:latest`` exists, through :func:`fixtures.cluster.start_cluster`
(the suite's own path: per-node certificates, node 1 first, the others in
parallel, convergence polled on GET /cluster). Prints each run's time and
min / median / max per launcher, against the 10 s target, and the load
average (the machine is shared). Every cluster is stopped; the script checks
that no process or container of the run is left.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qdrant_conformance.fixtures.cluster import start_cluster
from qdrant_conformance.fixtures.launchers.base import BadTargetInput, Target
from qdrant_conformance.fixtures.launchers.process import ProcessTarget, processes_under
from qdrant_conformance.fixtures.pki import RunPKI
from qdrant_conformance.fixtures.profiles import Credentials

TARGET_S = 10.0
IMAGE = "local/qsc-reference:latest"


def bench(name: str, make: Callable[[int], Target], runs: int, nodes: int, pki: RunPKI,
          keys: Credentials) -> list[float]:
    times: list[float] = []
    for i in range(runs):
        launcher: Target = make(i)
        try:
            load = os.getloadavg()[0]
            cluster = start_cluster(launcher, pki, keys, nodes=nodes)
            assert cluster.formed_in is not None
            times.append(cluster.formed_in)
            stop_started = time.monotonic()
            cluster.stop()
            print(f"{name} run {i + 1}: all {nodes} peers visible after {cluster.formed_in:.2f} s "
                  f"(stop {time.monotonic() - stop_started:.2f} s, load {load:.1f})", flush=True)
        finally:
            launcher.close()
    return times


def summary(name: str, times: list[float]) -> str:
    if not times:
        return f"{name}: no runs"
    verdict = "meets" if max(times) < TARGET_S else "MISSES"
    return (f"{name}: min {min(times):.2f} s, median {statistics.median(times):.2f} s, max {max(times):.2f} s "
            f"over {len(times)} runs; {verdict} the {TARGET_S:.0f} s target")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--no-docker", action="store_true")
    parser.add_argument("--docker-network", default="bridge", choices=("bridge", "host"))
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="qsc-bench-cluster-"))
    pki = RunPKI.create(root / "pki")
    keys = Credentials.generate()
    results: list[str] = []
    try:
        nodes_root = root / "process"
        times = bench("process", lambda i: ProcessTarget(nodes_root / f"run{i}"), args.runs, args.nodes, pki, keys)
        results.append(summary("process", times))
        left = processes_under(nodes_root)
        results.append(f"process: {len(left)} processes left behind" if left else "process: nothing left behind")

        if not args.no_docker:
            results.extend(_docker(root, args, pki, keys))
    finally:
        pki.cleanup()
        shutil.rmtree(root, ignore_errors=True)
    print()
    for line in results:
        print(line)
    return 0


def _docker(root: Path, args: argparse.Namespace, pki: RunPKI, keys: Credentials) -> list[str]:
    from qdrant_conformance.fixtures.launchers.docker import LABEL_RUN, DockerTarget, connect

    try:
        client = connect(timeout=30)
    except BadTargetInput as exc:
        return [f"docker: skipped ({exc})"]
    try:
        client.images.get(IMAGE)
    except Exception:
        client.close()
        return [f"docker: skipped ({IMAGE} is not built; docker/build.sh)"]
    run_id = "qsc-bench-" + secrets.token_hex(4)
    try:
        times = bench(f"docker/{args.docker_network}",
                      lambda i: DockerTarget(IMAGE, f"{run_id}-{i}", network_mode=args.docker_network,
                                               workroot=root / "docker" / f"run{i}", client=client),
                      args.runs, args.nodes, pki, keys)
        left = [c.name for c in client.containers.list(all=True)
                if (c.labels or {}).get(LABEL_RUN, "").startswith(run_id)]
        nets = [n.name for n in client.networks.list() if n.name.startswith(f"qsc-{run_id}")]
    finally:
        client.close()
    lines = [summary(f"docker/{args.docker_network}", times)]
    lines.append(f"docker: left behind {left + nets}" if left or nets else "docker: nothing left behind")
    return lines


if __name__ == "__main__":
    sys.exit(main())

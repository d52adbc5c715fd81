"""Start-up time of the reference server: spawn → ``/readyz`` answers 200 and the gRPC port accepts.

    /work/venv/bin/python bench/startup.py [-n 10]

Starts ``python -m reference_server`` N times in plain mode and N times with
TLS (trustme certificates), each in a fresh work dir on free ports, and prints
min / median / max seconds per mode, both wall-clock and the server's own CPU
time until ready (the latter does not depend on what else the machine runs). Every server is stopped with SIGTERM and
must exit 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trustme

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.probes import cpu_seconds, readyz_ok
from tests.server_helpers import free_port, launch, port_open, prepare_workdir

DEADLINE_S = 15.0


def tls_files(ca: trustme.CA) -> dict[str, bytes]:
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    return {
        "tls/cert.pem": b"".join(b.bytes() for b in leaf.cert_chain_pems),
        "tls/key.pem": leaf.private_key_pem.bytes(),
    }



def one_start(tls: ssl.SSLContext | None, ca: trustme.CA) -> tuple[float, float]:
    http_port, grpc_port = free_port(), free_port()
    config = {"service": {"host": "127.0.0.1", "http_port": http_port, "grpc_port": grpc_port,
                          "enable_tls": tls is not None}}
    workdir = Path(tempfile.mkdtemp(prefix="refsrv-bench-"))
    try:
        prepare_workdir(workdir, config, tls_files(ca) if tls is not None else None)
        started = time.perf_counter()
        proc, _ = launch(workdir)
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited with {proc.returncode}: {(workdir / 'server.log').read_text()}")
                if time.perf_counter() - started > DEADLINE_S:
                    raise RuntimeError("server not ready before the deadline")
                if readyz_ok(http_port, tls) and port_open(grpc_port):
                    cpu = cpu_seconds(proc.pid)
                    assert cpu is not None, "the server is alive: its /proc entry is readable"
                    return time.perf_counter() - started, cpu
                time.sleep(0.005)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(10)
            if code != 0:
                raise RuntimeError(f"server exit code {code} after SIGTERM")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10, help="starts per mode")
    args = parser.parse_args()
    ca = trustme.CA()
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    print(f"reference server start-up, spawn -> /readyz 200 + gRPC port open, n={args.n} per mode")
    print(f"(load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
          "server CPU time is the load-independent figure)")
    for mode, tls in (("plain", None), ("tls", ctx)):
        runs = [one_start(tls, ca) for _ in range(args.n)]
        for label, values in (("wall", [r[0] for r in runs]), ("cpu", [r[1] for r in runs])):
            print(f"{mode:6s} {label:4s} min {min(values):.3f} s  median {statistics.median(values):.3f} s  "
                  f"max {max(values):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

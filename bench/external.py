"""An already-running reference server for the external-target figure, started outside the timed run.

The server is the ``jwt`` profile (the ``api-key`` profile's keys plus ``service.jwt_rbac`` and the
audit log), started with the project's :class:`ProcessTarget` exactly as a run would start it, and
declared to the suite as the README's running-deployment example does: ``--profile api-key
--jwt-secret-file``. Its keys are written to 0600 files in a private directory and never printed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.probes import cpu_seconds, peak_rss, readyz_ok
from qdrant_conformance.fixtures.launchers.base import Instance, NodeSpec
from qdrant_conformance.fixtures.launchers.process import ProcessTarget, processes_under
from qdrant_conformance.fixtures.pki import RunPKI
from qdrant_conformance.fixtures.profiles import Credentials, profile, render

PROFILE = "jwt"
READY_TIMEOUT_S = 30.0



def _ready(instance: Instance) -> bool:
    assert instance.ports is not None
    return readyz_ok(instance.ports.http)


def _write_secret(path: Path, value: str | None) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write((value or "") + "\n")
    return path



@dataclass
class RunningServer:
    """One reference server and the options that point ``pytest suites/`` at it."""

    root: Path
    launcher: ProcessTarget
    pki: RunPKI
    instance: Instance
    pytest_options: list[str]

    def _pids(self) -> list[int]:
        assert self.instance.workdir is not None
        return processes_under(self.instance.workdir)

    def cpu_seconds(self) -> float:
        """CPU the server has used so far (it is no child of the measured run, so rusage misses it)."""
        return sum(cpu_seconds(pid) or 0.0 for pid in self._pids())

    def peak_rss_bytes(self) -> int:
        return sum(peak_rss(pid) or 0 for pid in self._pids())

    def stop(self) -> None:
        try:
            self.launcher.close()
        finally:
            self.pki.cleanup()
            shutil.rmtree(self.root, ignore_errors=True)


def start() -> RunningServer:
    """Start the server and return once ``/readyz`` answers 200."""
    root = Path(tempfile.mkdtemp(prefix="qsc-bench-external-"))
    os.chmod(root, 0o700)
    try:
        pki = RunPKI.create(root / "pki")
        keys = Credentials.generate()
        rendered = render(profile(PROFILE), pki, keys)
        launcher = ProcessTarget(root / "nodes")
        instance = launcher.start(NodeSpec(rendered=rendered, name=PROFILE, ready=_ready, timeout=READY_TIMEOUT_S))
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    keydir = root / "keys"
    keydir.mkdir(mode=0o700)
    options = [
        "--target", "external", "--rest-url", instance.rest_url, "--grpc-url", instance.grpc_target,
        "--api-key-file", str(_write_secret(keydir / "api.key", keys.api_key)),
        "--alt-key-file", str(_write_secret(keydir / "alt.key", keys.alt_api_key)),
        "--read-only-key-file", str(_write_secret(keydir / "ro.key", keys.read_only_api_key)),
        "--profile", "api-key", "--jwt-secret-file", str(keydir / "api.key"),
    ]
    return RunningServer(root=root, launcher=launcher, pki=pki, instance=instance, pytest_options=options)

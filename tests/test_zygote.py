"""Self-tests of the zygote the process launcher forks reference servers from (``reference_server/zygote.py``).

A forked server must be indistinguishable from one started with ``python -m
reference_server`` where the harness can see it: exit codes (0 after SIGTERM,
1 with ``Error:`` for a bad start-up), the work dir, a fresh environment,
SIGPIPE ignored as a fresh interpreter has it (else a client that hangs up
mid-answer kills the server), and nothing left running when the harness dies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from qdrant_conformance.fixtures.launchers.base import LaunchError, NodeSpec, RenderedConfig, free_port, poll_until
from qdrant_conformance.fixtures.launchers.process import REPO_ROOT, ProcessTarget, Zygote, clean_env, processes_under
from qdrant_conformance.fixtures.launchers.zygote import ZygoteFailure


def _spec(name: str, config: str) -> NodeSpec:
    files = {"config/c.yaml": (config.encode(), 0o600)}
    rendered = RenderedConfig(profile="plain", config_relpath="config/c.yaml", env={}, files=files,
                              tls=False, mtls=False)
    return NodeSpec(rendered=rendered, name=name)


def _readyz(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/readyz")
        return conn.getresponse().status in (200, 503)
    except OSError:
        return False


def _sig_ignored(pid: int, sig: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (sig - 1)))
    raise AssertionError("no SigIgn line")


def test_forked_server_serves_in_its_work_dir_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    launcher = ProcessTarget(tmp_path / "nodes")
    try:
        instance = launcher.start(dataclasses.replace(_spec("one", "log_level: INFO\n"),
                                                      ready=lambda i: _readyz(i.ports.http)))
        assert instance.workdir is not None
        pids = [p for p in processes_under(tmp_path / "nodes") if Path(os.readlink(f"/proc/{p}/cwd")) ==
                instance.workdir]
        assert len(pids) == 1, pids
        assert _sig_ignored(pids[0], signal.SIGPIPE), "a forked server must ignore SIGPIPE like a fresh interpreter"
        node = launcher._nodes[0]
        node.stop()
        assert node.proc.returncode == 0, node.logs()
        assert not instance.alive()
    finally:
        launcher.close()
    assert not processes_under(tmp_path / "nodes")


def test_bad_start_up_is_exit_1_with_its_error_line(tmp_path: Path) -> None:
    launcher = ProcessTarget(tmp_path / "nodes")
    try:
        spec = _spec("bad", "service:\n  enable_tls: true\ntls:\n  cert: ./missing.pem\n  key: ./missing.pem\n")
        with pytest.raises(LaunchError, match="exited with code 1") as caught:
            launcher.start(dataclasses.replace(spec, ready=lambda i: _readyz(i.ports.http), timeout=30))
        assert "Error:" in caught.value.logs
    finally:
        launcher.close()


def test_zygote_and_its_servers_end_with_the_harness(tmp_path: Path) -> None:
    """The stand-in harness (a sleeping process) dies hard: the zygote and its server follow."""
    harness = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    root = tmp_path / "root"
    try:
        env = clean_env({"PYTHONPATH": str(REPO_ROOT), "QSC_PARENT_PID": str(harness.pid)})
        zygote = Zygote(root, env)
        workdir = root / "srv"
        workdir.mkdir()
        (workdir / "c.yaml").write_text("log_level: INFO\n")
        port = free_port()
        child_env = clean_env({"QSC_PARENT_PID": str(harness.pid), "QDRANT__SERVICE__HTTP_PORT": str(port),
                               "QDRANT__SERVICE__GRPC_PORT": str(free_port()), "QDRANT__SERVICE__HOST": "127.0.0.1",
                               "QDRANT__CLUSTER__P2P__PORT": str(free_port())})
        child = zygote.fork(["--config-path", "c.yaml"], workdir, child_env, workdir / "log")
        assert poll_until(lambda: _readyz(port), timeout=30), (workdir / "log").read_text()
        assert child.poll() is None
        harness.kill()
        harness.wait()
        assert poll_until(lambda: not processes_under(root), timeout=20), "zygote or server outlived the harness"
        assert child.wait(timeout=5) is not None
        assert poll_until(lambda: not zygote.path.parent.exists(), timeout=10), "the zygote's socket directory was left"
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
        for pid in processes_under(root):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def _fake_zygote(tmp_path: Path, reply: bytes) -> Iterator[Zygote]:
    """A zygote socket that answers one fork request with ``reply`` (the real client, no real zygote)."""
    path = tmp_path / "z.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(reply)
            conn.recv(1)  # until the harness closes its end

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        yield Zygote.attach(path)
    finally:
        thread.join(timeout=10)
        server.close()


def test_an_exit_that_arrives_with_the_fork_reply_is_read(tmp_path: Path) -> None:
    """A child that fails at once: its exit message may come in the same read as the fork's reply.

    Seen under load: the two lines were parsed as one JSON document, and the harness error read as
    "the node did not start", which a "refuses to start" check counted as a pass.
    """
    with _fake_zygote(tmp_path, b'{"pid": 4242}\n{"exit": 1}\n') as zygote:
        proc = zygote.fork(["--config-path", "c.yaml"], tmp_path, {}, tmp_path / "server.log")
        assert proc.pid == 4242
        assert proc.poll() == 1


def test_a_zygote_that_does_not_fork_is_a_harness_failure_not_a_launch_error(tmp_path: Path) -> None:
    with _fake_zygote(tmp_path, b"not json\n") as zygote:
        with pytest.raises(ZygoteFailure) as caught:
            zygote.fork(["--config-path", "c.yaml"], tmp_path, {}, tmp_path / "server.log")
        assert not isinstance(caught.value, LaunchError)


def test_a_launcher_forks_from_a_shared_zygote_and_leaves_it_running(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``QSC_SHARED_ZYGOTE`` (the kill test's): servers come from that zygote; closing the run stops them, not it."""
    from qdrant_conformance.fixtures.launchers.process import SHARED_ZYGOTE_ENV

    env = clean_env({"PYTHONPATH": str(REPO_ROOT), "QSC_PARENT_PID": str(os.getpid())})
    shared = Zygote(tmp_path / "shared", env)
    try:
        monkeypatch.setenv(SHARED_ZYGOTE_ENV, str(shared.path))
        launcher = ProcessTarget(tmp_path / "nodes")
        try:
            instance = launcher.start(dataclasses.replace(_spec("one", "log_level: INFO\n"),
                                                          ready=lambda i: _readyz(i.ports.http)))
            assert instance.alive()
            assert shared.pid is not None
            parent = int(Path(f"/proc/{launcher._nodes[0].proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            assert parent == shared.pid, "the server was not forked by the shared zygote"
        finally:
            launcher.close()
        assert not processes_under(tmp_path / "nodes"), "the run's server outlived its launcher"
        assert shared.alive(), "closing a run stopped the zygote it shared"
    finally:
        shared.close()
    assert not shared.alive()

"""Self-tests: a port taken between choosing and binding it never lets a stranger stand in for the server.

Seen in CI: a TLS server's gRPC port was taken by another run's server; the
reference server (like Qdrant, spec §1.5) logged the bind error and kept REST
up, the readiness check found both ports answering, and a test judged the
stranger's certificate. The process launcher now checks who holds the ports
and starts again with other ones.
"""

from __future__ import annotations

import dataclasses
import http.client
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from qdrant_conformance.fixtures.launchers import process
from qdrant_conformance.fixtures.launchers.base import (
    PORT_ATTEMPTS,
    Instance,
    NodeSpec,
    PortConflict,
    RenderedConfig,
    free_port,
)
from qdrant_conformance.fixtures.launchers.listeners import held_elsewhere, socket_inodes
from qdrant_conformance.fixtures.launchers.process import ProcessTarget, processes_under


def _spec(name: str) -> NodeSpec:
    files = {"config/c.yaml": (b"log_level: INFO\n", 0o600)}
    rendered = RenderedConfig(profile="plain", config_relpath="config/c.yaml", env={}, files=files,
                              tls=False, mtls=False)
    return NodeSpec(rendered=rendered, name=name, ready=_both_answer, timeout=30.0)


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _both_answer(instance: Instance) -> bool:
    # As loose as a TLS readiness check: something accepts on each port.
    try:
        conn = http.client.HTTPConnection("127.0.0.1", instance.ports.http, timeout=1)
        conn.request("GET", "/readyz")
        rest_up = conn.getresponse().status in (200, 503)
    except OSError:
        return False
    return rest_up and _answers(instance.ports.grpc)


@pytest.fixture
def stranger() -> Iterator[socket.socket]:
    """Another process's listener, as far as the launcher can tell (it is not the server's)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock
    sock.close()


def _hand_out(monkeypatch: pytest.MonkeyPatch, taken: int, slot: int, times: int) -> list[int]:
    """Make the launcher's port choice return ``taken`` as the ``slot``-th port of its first ``times`` starts."""
    calls: list[int] = []

    def chosen(host: str = "127.0.0.1") -> int:
        index = len(calls)
        port = taken if index % 3 == slot and index // 3 < times else free_port(host)
        calls.append(port)
        return port

    monkeypatch.setattr(process, "free_port", chosen)
    return calls


@pytest.mark.parametrize("slot", [1, 0], ids=["grpc-taken", "rest-taken"])
def test_a_taken_port_means_a_start_on_other_ports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   stranger: socket.socket, slot: int) -> None:
    taken = stranger.getsockname()[1]
    calls = _hand_out(monkeypatch, taken, slot, times=1)
    launcher = ProcessTarget(tmp_path / "nodes")
    try:
        instance = launcher.start(_spec("one"))
        assert len(calls) == 6, f"expected exactly one start on other ports, chose {calls}"
        assert taken not in (instance.ports.http, instance.ports.grpc)
        (node,) = launcher._nodes
        mine = socket_inodes(node.proc.pid)
        assert mine, "the server's sockets are readable"
        assert not held_elsewhere({instance.ports.http, instance.ports.grpc}, [node.proc.pid]), (
            "both ports are held by the server itself")
    finally:
        launcher.close()


def test_a_port_taken_on_every_try_is_a_port_conflict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       stranger: socket.socket) -> None:
    taken = stranger.getsockname()[1]
    _hand_out(monkeypatch, taken, 1, times=PORT_ATTEMPTS)
    launcher = ProcessTarget(tmp_path / "nodes")
    try:
        with pytest.raises(PortConflict) as caught:
            launcher.start(_spec("two"))
        message = str(caught.value)
        assert str(taken) in message and "held by another process" in message and "\n" not in message
        assert not processes_under(tmp_path / "nodes" / "two"), "a server that lost its port is stopped"
    finally:
        launcher.close()


def test_ports_the_caller_chose_are_not_changed(tmp_path: Path, stranger: socket.socket) -> None:
    taken = stranger.getsockname()[1]
    launcher = ProcessTarget(tmp_path / "nodes")
    ports = process.Ports(free_port(), taken, free_port())
    try:
        with pytest.raises(PortConflict):
            launcher.start(dataclasses.replace(_spec("three"), ports=ports))
    finally:
        launcher.close()


def test_held_elsewhere_knows_our_own_listener(stranger: socket.socket) -> None:
    import os

    port = stranger.getsockname()[1]
    assert held_elsewhere({port}, [os.getpid()]) == set()
    assert held_elsewhere({port}, []) == {port}

"""Container hardening of Docker targets (HARD-ANY-005..010, hardening.yaml).

Each check inspects the running container of a profile through the engine's API
(``docker inspect``; nothing runs inside the container). Findings name their
origin: the image's own defaults (the official qdrant/qdrant image runs as root and
declares no volumes, spec §1.3) or the container's launch options. The twin of each
check is the inspection itself: the container is found, running, and the facts the
check reads are present. Other targets are *disabled*.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from qdrant_conformance.fixtures.outcomes import disabled, inconclusive, note

pytestmark = pytest.mark.profiles("api-key", "tls")

req = pytest.mark.requirement

ROOT_USERS = {"", "0", "root", "0:0", "root:root"}
SOCKETS = ("docker.sock",)


def _inspect(server: Any) -> dict[str, Any]:
    if not server.capabilities.container:
        disabled("container hardening applies to Docker targets (--target docker)")
    container_id = server.instance.description.get("container_id")
    try:
        attrs: dict[str, Any] = server.inspect()
    except Exception as exc:  # the engine's answer decides nothing about the server
        inconclusive(f"cannot inspect container {container_id}: {type(exc).__name__}")
    if not attrs.get("State", {}).get("Running"):
        inconclusive(f"container {container_id} is not running, so its settings say nothing")
    note(f"inspected container {str(container_id)[:12]} of image {server.instance.description.get('image')}")
    return attrs


@req("HARD-ANY-005")
def test_container_does_not_run_as_root(qdrant: Callable[[str], Any]) -> None:
    attrs = _inspect(qdrant("api-key"))
    user = str(attrs.get("Config", {}).get("User") or "")
    note(f"Config.User = {user!r}")
    assert user not in ROOT_USERS, (
        f"the container runs as root (Config.User {user or 'unset'}): the image's default; the official "
        "qdrant/qdrant image runs as root unless built with USER_ID (spec §1.3), Qdrant publishes an "
        "unprivileged variant")


@req("HARD-ANY-006")
def test_container_is_not_privileged(qdrant: Callable[[str], Any]) -> None:
    host = _inspect(qdrant("api-key")).get("HostConfig", {})
    privileged, added = bool(host.get("Privileged")), list(host.get("CapAdd") or [])
    note(f"HostConfig.Privileged = {privileged}, CapAdd = {added}")
    assert not privileged, "the container runs with --privileged (its launch options)"
    assert not added, f"the container was given extra capabilities by its launch options: {', '.join(added)}"


@req("HARD-ANY-007")
def test_only_configured_ports_are_published_where_asked(qdrant: Callable[[str], Any]) -> None:
    server = qdrant("api-key")
    attrs = _inspect(server)
    host = attrs.get("HostConfig", {})
    if host.get("NetworkMode") == "host":
        disabled("with --docker-network host nothing is published: the server binds 127.0.0.1 itself")
    bindings: dict[str, Any] = attrs.get("NetworkSettings", {}).get("Ports") or {}
    note(f"published: {bindings}; PublishAllPorts = {host.get('PublishAllPorts')}")
    wanted = {"6333/tcp", "6334/tcp"}
    if not wanted <= {port for port, to in bindings.items() if to}:
        inconclusive(f"twin: the REST and gRPC ports are not published as the launcher asked: {bindings}")
    extra = sorted(port for port, to in bindings.items() if to and port not in wanted)
    assert not host.get("PublishAllPorts"), "the container publishes every exposed port (-P, its launch options)"
    assert not extra, f"the container publishes ports besides REST and gRPC: {', '.join(extra)}"
    wide = sorted(f"{port} on {b.get('HostIp') or '0.0.0.0'}" for port, to in bindings.items() for b in to or []
                  if b.get("HostIp") not in ("127.0.0.1", "::1"))
    assert not wide, f"ports are published beyond the loopback address the launcher asked for: {', '.join(wide)}"


@req("HARD-ANY-008")
def test_docker_socket_is_not_mounted(qdrant: Callable[[str], Any]) -> None:
    mounts = _inspect(qdrant("api-key")).get("Mounts") or []
    if not mounts:
        inconclusive("twin: the container shows no mounts, although the suite mounts its config into it")
    note("mounts: " + ", ".join(f"{m.get('Source')} -> {m.get('Destination')}" for m in mounts))
    found = [f"{m.get('Source')} -> {m.get('Destination')}" for m in mounts
             if any(str(m.get(k) or "").endswith(SOCKETS) for k in ("Source", "Destination"))]
    assert not found, (f"the Docker engine's socket is mounted into the container (its launch options): "
                       f"{'; '.join(found)}")


@req("HARD-ANY-009")
def test_storage_and_snapshots_are_on_volumes(qdrant: Callable[[str], Any]) -> None:
    attrs = _inspect(qdrant("api-key"))
    workdir = str(attrs.get("Config", {}).get("WorkingDir") or "/qdrant").rstrip("/")
    mounted = {str(m.get("Destination")).rstrip("/") for m in attrs.get("Mounts") or []}
    declared = set((attrs.get("Config", {}).get("Volumes") or {}).keys())
    missing = [d for d in (f"{workdir}/storage", f"{workdir}/snapshots") if d not in mounted | declared]
    assert not missing, (f"{', '.join(missing)} live in the container's writable layer: neither the image (the "
                         "official image declares no volume) nor the launch options put a volume there")


@req("HARD-ANY-010")
def test_tls_key_is_not_world_readable(qdrant: Callable[[str], Any]) -> None:
    server = qdrant("tls")
    attrs = _inspect(server)
    tls_mount = next((m for m in attrs.get("Mounts") or [] if str(m.get("Destination")).endswith("/tls")), None)
    if tls_mount is None or tls_mount.get("Type") != "bind":
        disabled("the TLS files are not bind-mounted from this host, so their mode cannot be read without exec")
    key = Path(str(tls_mount["Source"])) / "key.pem"
    try:
        mode = stat.S_IMODE(os.stat(key).st_mode)
    except OSError as exc:
        inconclusive(f"cannot read the mode of the mounted key file {key}: {exc.strerror}")
    note(f"{tls_mount['Destination']}/key.pem has mode {mode:04o}")
    assert not mode & stat.S_IROTH, f"the TLS private key mounted at {tls_mount['Destination']} is world-readable " \
        f"(mode {mode:04o})"

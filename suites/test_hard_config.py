"""Misconfiguration that fails open, and unauthenticated side doors (hardening.yaml).

* ADV-REST-004, the empty-key trap (spec §1.4): profile ``switches`` sets
  ``service.api_key: ""`` beside real alternate and read-only keys. Qdrant v1.19.0+
  counts the empty key as unset (and warns); up to v1.18.3 it stays a key, and an
  empty ``api-key:`` header then gets full access. The empty header and no header
  must both be refused; the read-only key must work (twin).
* HARD-ANY-001 (spec §1.2, §11.10): a launched server runs with the file it was
  given. A missing --config-path only logs an error and starts with defaults, no key;
  the check names that cause from the log, or says the file was ignored silently.
* HARD-ANY-002 (spec §1.1, §10): with ``service.metrics_port`` unset the server listens
  on its REST and gRPC ports only; the ports are read from ``/proc`` (the server's own
  sockets, or the container's network namespace). An extra listener is probed for
  ``/metrics`` without a credential and what it leaks is named.
* HARD-REST-003 (spec §10, §2.6): with ``enable_cors: false`` no Origin is echoed and
  preflights reach authentication; the twin is the ``api-key`` profile (Qdrant's default,
  CORS on), where the same request is echoed.

The profile-based checks need launched targets (an external target is *disabled*
unless declared as the profile).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any

import pytest

from fixtures.clients.rest import RestClient
from fixtures.hardening import namespace_listening_ports, process_listening_ports
from fixtures.outcome import note
from fixtures.outcomes import disabled, inconclusive

req = pytest.mark.requirement

MSG_CONFIG_MISSING = "Config file via --config-path is not found"
MSG_EMPTY_KEY = "is set but empty"
PROBE_ORIGIN = "https://qsc-cors-probe.invalid"


def _launched(server: Any) -> None:
    if server.launcher.kind == "external" or server.workdir is None:
        disabled("needs a server the suite launched with its own configuration")


@req("ADV-REST-004")
def test_empty_key_setting_grants_nothing(qdrant: Callable[[str], Any]) -> None:
    server = qdrant("switches")
    rest = server.rest()
    twin = rest.request("GET", "/collections", headers=server.key_headers("read_only"))
    if twin.allowance != "allowed":
        inconclusive(f"positive twin: the read-only key beside the empty api_key cannot read: {twin.summary()}")
    bare = rest.request("GET", "/collections")
    empty = rest.request("GET", "/collections", headers={"api-key": ""})
    trap = ("the empty-key trap (spec §1.4): the launched config sets service.api_key to an empty string; "
            "Qdrant up to v1.18.3 keeps it as a key, so an empty api-key header matches it with full access")
    assert not empty.succeeded and empty.denied, f"{trap}; an empty api-key header got {empty.summary()}"
    assert bare.denied, (f"with an empty api_key beside real alternate and read-only keys a request without "
                         f"a credential must still be refused; got {bare.summary()}")


@req("HARD-ANY-001")
def test_launched_server_runs_with_its_config(qdrant: Callable[[str], Any]) -> None:
    server = qdrant("api-key")
    _launched(server)
    rest = server.rest()
    twin = rest.request("GET", "/collections", headers=server.key_headers())
    if twin.allowance != "allowed":
        inconclusive(f"positive twin: the manage key cannot read /collections: {twin.summary()}")
    bare = rest.request("GET", "/collections")
    log = server.logs()
    causes = [line.strip() for line in log.splitlines() if MSG_CONFIG_MISSING in line or MSG_EMPTY_KEY in line]
    assert not causes, ("the server did not run with the configuration it was given (spec §1.2, §11.10): "
                        + " | ".join(causes[:3]))
    assert bare.denied, (
        "the config passed with --config-path sets service.api_key, yet a request without a credential got "
        f"{bare.summary()}: the server runs with Qdrant's defaults (no key), and its log does not say why "
        f"(no '{MSG_CONFIG_MISSING}' line): the file was ignored silently")


def _expected_ports(server: Any) -> set[int]:
    ports = server.instance.ports
    if server.launcher.kind == "docker":
        from fixtures.launchers.docker import CONTAINER_PORTS

        return {CONTAINER_PORTS.http, CONTAINER_PORTS.grpc}
    return {ports.http, ports.grpc}


def _listening(server: Any) -> set[int] | None:
    if server.launcher.kind == "docker":
        container = server.launcher.client.containers.get(server.instance.description["container_id"])
        pid = int(container.attrs["State"]["Pid"])
        return namespace_listening_ports(pid) if pid else None
    return process_listening_ports(server.workdir)


def _leak(server: Any, port: int) -> str:
    """What ``/metrics`` on ``port`` gives away without a credential (process targets only)."""
    if server.launcher.kind == "docker":
        return "not probed: the port is inside the container"
    scheme = "https" if server.tls else "http"
    client = RestClient(f"{scheme}://127.0.0.1:{port}", ssl_context=server.ssl_context(), timeout=10.0)
    try:
        outcome = client.request("GET", "/metrics")
    finally:
        client.close()
    if not outcome.succeeded:
        return f"/metrics answered {outcome.status or outcome.refused}"
    text = outcome.text
    leaked = sorted(set(re.findall(r'collection(?:_name)?="([^"]+)"', text)))
    counts = re.findall(r"^(collections_\w+) (\d+)", text, re.MULTILINE)
    version = re.search(r'version="([^"]+)"', text)
    parts = ["/metrics answers without a credential"]
    if counts:
        parts.append("counts: " + ", ".join(f"{k}={v}" for k, v in counts))
    if leaked:
        parts.append("collection names: " + ", ".join(leaked[:10]))
    if version:
        parts.append(f"version {version.group(1)}")
    return "; ".join(parts)


@req("HARD-ANY-002")
def test_no_listener_besides_the_configured_ports(qdrant: Callable[[str], Any]) -> None:
    server = qdrant("api-key")
    _launched(server)
    if server.launcher.kind == "docker" and server.launcher.network_mode != "bridge":
        disabled("with --docker-network host the container shares the host's ports: its own cannot be told apart")
    found = _listening(server)
    expected = _expected_ports(server)
    if found is None or not expected <= found:
        inconclusive(f"positive twin: the server's own REST and gRPC ports {sorted(expected)} are not among the "
                     f"listening ports read from /proc ({sorted(found) if found is not None else 'unreadable'})")
    note(f"listening ports: {sorted(found)} (configured: {sorted(expected)})")
    extra = sorted(found - expected)
    described = [f"port {port}: {_leak(server, port)}" for port in extra]
    assert not extra, (
        "with service.metrics_port unset the server listens on more than its REST and gRPC ports: "
        + "; ".join(described) + " (spec §1.1: the metrics listener has no authentication)")


@req("HARD-REST-003")
def test_cors_switched_off_echoes_no_origin(qdrant: Callable[[str], Any]) -> None:
    default = qdrant("api-key")
    echoed = default.rest().request("GET", "/", headers={"origin": PROBE_ORIGIN})
    if echoed.headers.get("access-control-allow-origin") != PROBE_ORIGIN:
        inconclusive("positive twin: with CORS at its default (on) the target does not echo the Origin "
                     f"(spec §10), so its absence below would prove nothing: {echoed.summary()}")
    server = qdrant("switches")
    rest = server.rest()
    plain = rest.request("GET", "/", headers={"origin": PROBE_ORIGIN})
    preflight = rest.request("OPTIONS", f"/collections/qsc-{secrets.token_hex(3)}",
                             headers={"origin": PROBE_ORIGIN, "access-control-request-method": "DELETE"})
    leaking = [o.summary() for o in (plain, preflight) if "access-control-allow-origin" in o.headers]
    assert not leaking, ("with service.enable_cors: false the target still answers with CORS headers: "
                         + "; ".join(leaking))
    assert preflight.denied, (f"with CORS off a preflight is an ordinary OPTIONS request and must reach "
                              f"authentication (401, spec §2.6); got {preflight.summary()}")

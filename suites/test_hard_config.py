"""Misconfiguration that fails open, and unauthenticated side doors (hardening.yaml).

* ADV-REST-004, the empty-key trap (spec §1.4): profile ``switches`` sets
  ``service.api_key: ""`` beside real alternate and read-only keys. Qdrant v1.19.0+
  counts the empty key as unset (and warns); up to v1.18.3 it stays a key, and an
  empty ``api-key:`` header then gets full access. The empty header and no header
  must both be refused; the read-only key must work (twin). An external deployment
  cannot be configured so; it is checked as it is, with the key the user gave as the
  twin. Its telemetry does not show whether a key is set (spec §10), so the cause is
  named from behaviour: an empty header accepted where a wrong key is refused (≤ v1.18.3),
  or no credential needed at all (every key empty, v1.19.0+).
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

Observations (level INFO, outcome ``info``; never a finding), on the target's default
configuration (``api-key`` for a launched target, the deployment itself for an external one):

* HARD-REST-011 / HARD-GRPC-012 (spec §2.5, §3, §10): what ``GET /`` and ``qdrant.Qdrant/HealthCheck``
  tell a caller without a credential (version, commit);
* HARD-REST-013 (spec §10, §2.6): CORS answers a random Origin; a SHOULD-level warning
  instead when ``--no-browser-clients`` declares that no browser uses the deployment.

The profile-based checks need launched targets (an external target is *disabled*
unless declared as the profile); the observations and ADV-REST-004 run on every target.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from typing import Any

import pytest

from qdrant_conformance.fixtures.clients.rest import RestClient
from qdrant_conformance.fixtures.hardening import (
    EMPTY_KEY_FIX,
    declared_key,
    empty_key_cause,
)
from qdrant_conformance.fixtures.outcomes import Outcome, disabled, harness_error, inconclusive, note
from qdrant_conformance.fixtures.target import TargetOptions

pytestmark = pytest.mark.profiles("api-key", "switches")

req = pytest.mark.requirement

MSG_CONFIG_MISSING = "Config file via --config-path is not found"
MSG_EMPTY_KEY = "is set but empty"
PROBE_ORIGIN = "https://qsc-cors-probe.invalid"
HEALTH_CHECK = "/qdrant.Qdrant/HealthCheck"
#: What Qdrant's GET / and HealthCheck answer (spec §2.5, §3); version and commit are the disclosure.
BUILD_FIELDS = ("title", "version", "commit")


def _launched(server: Any) -> None:
    if not server.capabilities.launches or server.workdir is None:
        disabled("needs a server the suite launched with its own configuration")


@req("ADV-REST-004")
def test_empty_key_setting_grants_nothing(qdrant: Callable[[str], Any], target_options: TargetOptions) -> None:
    if not qdrant.capabilities.launches:
        _external_empty_key(qdrant("api-key"))
        return
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


def _external_empty_key(server: Any) -> None:
    """ADV-REST-004 on a deployment as it is: the user's key is the twin, the cause is named from behaviour."""
    which = declared_key(server)
    if which is None:
        harness_error("ADV-REST-004 on an external target needs the deployment's key: give --api-key-file "
                      "(or --alt-key-file / --read-only-key-file)")
    rest = server.rest()
    twin = rest.request("GET", "/collections", headers=server.key_headers(which))
    if twin.allowance != "allowed":
        inconclusive(f"positive twin: the {which} key given for the deployment cannot read: {twin.summary()}")
    bare = rest.request("GET", "/collections")
    empty = rest.request("GET", "/collections", headers={"api-key": ""})
    wrong = rest.request("GET", "/collections", headers={"api-key": "qsc-wrong-" + secrets.token_urlsafe(24)})
    if bare.succeeded:
        ignored = " (a fresh random key is accepted too: no credential is checked)" if wrong.succeeded else ""
        pytest.fail(f"a request without a credential succeeds{ignored}: {bare.summary()}" + empty_key_cause(server))
    assert not empty.succeeded, (
        f"the empty-key trap (spec §1.4): an empty api-key header gets {empty.summary()}, while no header gets "
        f"{bare.status or bare.refused} and a wrong key {wrong.status or wrong.refused}. The deployment has a key "
        "setting (service.api_key, alt_api_key or read_only_api_key) set to an empty string, which Qdrant up to "
        "v1.18.3 keeps as a key that an empty header matches, with that key's access (fixed in v1.19.0, #9199). "
        "Fix: " + EMPTY_KEY_FIX)


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


def _leak(server: Any, port: int) -> str:
    """What ``/metrics`` on ``port`` gives away without a credential (process targets only)."""
    if server.capabilities.container:
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
    if not server.capabilities.own_listeners:
        disabled("with --docker-network host the container shares the host's ports: its own cannot be told apart")
    found = server.listening_ports()
    expected = server.server_ports()
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


# -- observations (INFO): what the default configuration shows ------------------------------------


def _deployment(qdrant: Callable[[str], Any], options: TargetOptions) -> Any:
    """The target as it is by default: the ``api-key`` profile, or the external deployment itself."""
    if not qdrant.capabilities.launches and qdrant.declared:
        return qdrant(qdrant.declared[0])
    return qdrant("api-key")


def _build_fields(values: dict[str, Any]) -> dict[str, str]:
    return {k: str(values[k]) for k in BUILD_FIELDS if isinstance(values.get(k), str | int) and str(values[k])}


def _learned(learned: dict[str, str]) -> str:
    """Every field as the caller got it (for the evidence)."""
    return ", ".join(f"{k} {v!r}" for k, v in learned.items()) or "neither version nor commit"


def _disclosed(learned: dict[str, str]) -> str:
    """``version 1.19.0 and commit 0123456789ab``; empty when neither version nor commit is there."""
    parts = []
    if "version" in learned:
        parts.append(f"version {learned['version']}")
    if "commit" in learned:
        parts.append(f"commit {learned['commit'][:12]}")
    return " and ".join(parts)


@req("HARD-REST-011")
def test_rest_root_version_disclosure(qdrant: Callable[[str], Any], target_options: TargetOptions) -> None:
    server = _deployment(qdrant, target_options)
    outcome = server.rest().request("GET", "/")
    if not outcome.conclusive:
        inconclusive(f"GET / without a credential got no definite answer: {outcome.summary()}")
    learned: dict[str, str] = {}
    if outcome.succeeded:
        try:
            body = json.loads(outcome.body)
        except ValueError:
            body = None
        learned = _build_fields(body) if isinstance(body, dict) else {}
    note(f"a caller without a credential learns from GET /: {_learned(learned)}")
    disclosed = _disclosed(learned)
    if disclosed:
        pytest.fail(f"GET / without a credential discloses {disclosed} (spec §2.5, §10): anyone who reaches the "
                    "port learns which release runs, and so which advisories apply to it")


@req("HARD-GRPC-012")
def test_grpc_health_check_version_disclosure(qdrant: Callable[[str], Any], target_options: TargetOptions) -> None:
    from qdrant_client import grpc as qdrant_grpc

    server = _deployment(qdrant, target_options)
    if not server.grpc_target:
        disabled("the deployment's gRPC port is not known (--grpc-url)")
    outcome, reply = server.grpc().call_typed(HEALTH_CHECK, qdrant_grpc.HealthCheckRequest(),
                                               qdrant_grpc.HealthCheckReply)
    learned: dict[str, str] = {}
    if outcome.succeeded:
        if reply is None:
            inconclusive(f"HealthCheck answered OK with a reply that is not a HealthCheckReply: {outcome.summary()}")
        learned = _build_fields({name: getattr(reply, name) for name in BUILD_FIELDS})
    elif not (outcome.denied or outcome.code == "UNIMPLEMENTED"):
        # Refused by auth (before v1.15.1) or not served at all: either way nothing is disclosed.
        inconclusive(f"HealthCheck without a credential got no definite answer: {outcome.summary()}")
    note(f"a caller without a credential learns from {HEALTH_CHECK}: {_learned(learned)}")
    disclosed = _disclosed(learned)
    if disclosed:
        pytest.fail(f"{HEALTH_CHECK} without a credential discloses {disclosed} (spec §3, §10; no key needed "
                    "from v1.15.1): anyone who reaches the gRPC port learns which release runs")


def _cors_headers(outcome: Outcome) -> str:
    shown = {k: v for k, v in outcome.headers.items() if k.startswith("access-control-")}
    return ", ".join(f"{k}: {v}" for k, v in sorted(shown.items())) or "no CORS headers"


@req("HARD-REST-013")
def test_cors_on_defaults_answers_any_origin(qdrant: Callable[[str], Any], target_options: TargetOptions) -> None:
    server = _deployment(qdrant, target_options)
    rest = server.rest()
    origin = f"https://qsc-{secrets.token_hex(4)}.invalid"  # a fresh origin nobody could have allowed
    preflight = rest.request("OPTIONS", "/collections", headers={
        "origin": origin, "access-control-request-method": "GET", "access-control-request-headers": "api-key"})
    simple = rest.request("GET", "/", headers={"origin": origin})
    for outcome in (preflight, simple):
        # The twin of a pass: the request got a definite answer, so a missing header means something.
        if not outcome.conclusive:
            inconclusive(f"no definite answer, so the absence of CORS headers shows nothing: {outcome.summary()}")
        note(f"{outcome.request} -> HTTP {outcome.status}: {_cors_headers(outcome)}")
    echoed = [name for name, o in (("a preflight OPTIONS /collections", preflight), ("GET /", simple))
              if o.headers.get("access-control-allow-origin") in (origin, "*")]
    if target_options.no_browser_clients:
        why = "declared with --no-browser-clients: no browser uses this deployment, so CORS only widens its reach"
    else:
        why = ("recorded for information: if no browser client uses the deployment, switch CORS off "
               "(--no-browser-clients makes this a SHOULD-level warning)")
    if echoed:
        pytest.fail(
            f"CORS allows a random Origin on the default configuration: {' and '.join(echoed)} from {origin} "
            f"got access-control-allow-origin for it (spec §10: service.enable_cors defaults to true and echoes any "
            f"origin; §2.6: preflights are answered before authentication), so any web page a user of the "
            f"deployment opens may call it from the browser; {why}")

"""TLS enforcement on REST and gRPC (spec §1.5, §6; requirements TLS-REST-001/002, TLS-GRPC-001, TLS-ANY-001).

Every refusal has its positive twin on the same server: HTTPS and TLS gRPC
verified against the run's CA work where plaintext is refused. A server
configured with a bad certificate is shown to start and serve exactly that
certificate (verified in every respect except the one that is wrong), as
Qdrant does (TLS-ANY-001). Whether a *client* refuses such a certificate is
not a property of the server and is not tested; whether the deployment's own
certificate is good is (suites/test_tls_certificate.py).

Plaintext probes never carry an API key: a key sent in clear to a deployment
would be the very leak these tests look for. They use routes that answer
without a credential (``GET /``, gRPC ``HealthCheck``) or look for *any*
answer from the API, so a server that speaks plaintext cannot hide behind 401.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

import pytest

from qdrant_conformance.fixtures import tls_probe
from qdrant_conformance.fixtures.client_tls import ssl_client_context
from qdrant_conformance.fixtures.clients.rest import RestClient
from qdrant_conformance.fixtures.launchers.base import Instance, LaunchError, answers
from qdrant_conformance.fixtures.outcomes import disabled
from qdrant_conformance.fixtures.pki import CertFiles, RunPKI
from qdrant_conformance.fixtures.plugin import Variant

pytestmark = pytest.mark.profiles("tls")

req = pytest.mark.requirement

HEALTH = "/qdrant.Qdrant/HealthCheck"
LIST_COLLECTIONS = "/qdrant.Collections/List"
START_TIMEOUT = 30.0


def _grpc_endpoint(server: Any) -> tuple[str, int]:
    if not server.grpc_target:
        disabled("no gRPC endpoint for this target: give --grpc-url")
    return tls_probe.endpoint(server.grpc_target, 6334)


def _rest_twin(server: Any) -> None:
    """HTTPS with the deployment's CA (and client certificate if it has one) gets 2xx."""
    outcome = tls_probe.until_answered(lambda: server.rest().request("GET", "/", headers=server.key_headers()))
    assert outcome.succeeded and outcome.tls_version, (
        f"positive twin failed: HTTPS verified against the CA does not work, so refusals prove nothing: "
        f"{outcome.summary()}")


def _grpc_twin(server: Any) -> None:
    material = server.tls_material
    client = tls_probe.grpc_client(server.grpc_target, root_certificates=material.ca_pem,
                                   private_key=material.client_key_pem, certificate_chain=material.client_chain_pem)
    try:
        outcome = tls_probe.until_answered(lambda: client.call(HEALTH, metadata=list(server.key_headers().items())))
    finally:
        client.close()
    assert outcome.succeeded, (
        f"positive twin failed: TLS gRPC verified against the CA does not work, so refusals prove nothing: "
        f"{outcome.summary()}")


# -- plaintext to the TLS ports ---------------------------------------------------------------


def _plaintext_rest(server: Any) -> list[Any]:
    host, port = tls_probe.endpoint(server.rest_url, 6333)
    url_host = f"[{host}]" if ":" in host else host
    client = RestClient(f"http://{url_host}:{port}")
    try:
        # No credential: "/" answers anyone (spec §2.5), "/collections" shows whether the API speaks plaintext.
        return [client.request("GET", "/"), client.request("GET", "/collections")]
    finally:
        client.close()


@req("TLS-REST-001")
def test_rest_plaintext_is_refused(qdrant):
    server = qdrant("tls")
    _rest_twin(server)
    outcomes = _plaintext_rest(server)
    served = [o for o in outcomes if o.succeeded]
    assert not served, "plaintext HTTP to the TLS REST port got 2xx: " + "; ".join(o.summary() for o in served)
    api = [o for o in outcomes if o.status in (401, 403)]
    assert not api, (
        "the REST API answers plaintext HTTP on the TLS port (an auth refusal is still the API speaking "
        "in clear: a client's key would travel unencrypted): " + "; ".join(o.summary() for o in api))
    leaked = [o for o in outcomes if b'"result"' in o.body]
    assert not leaked, "API data came back over plaintext: " + "; ".join(o.summary() for o in leaked)


@req("TLS-REST-002")
def test_rest_plaintext_gets_no_http_response(qdrant):
    server = qdrant("tls")
    _rest_twin(server)
    answered = [o for o in _plaintext_rest(server) if o.refused is None]
    assert not answered, (
        "Qdrant closes a plaintext connection to its TLS port without any HTTP response (spec §6, inferred "
        "from rustls); this target answered: " + "; ".join(o.summary() for o in answered))


@req("TLS-GRPC-001")
def test_grpc_plaintext_is_refused(qdrant):
    server = qdrant("tls")
    _grpc_endpoint(server)
    _grpc_twin(server)
    plain = tls_probe.grpc_client(server.grpc_target, timeout=10.0)
    try:
        outcomes = [tls_probe.until_answered(lambda m=m: plain.call(m), retry_if=tls_probe.slow_connection)
                    for m in (HEALTH, LIST_COLLECTIONS)]
    finally:
        plain.close()
    answered = [o for o in outcomes if not tls_probe.refused_outright(o)]
    assert not answered, (
        "the gRPC port answers a plaintext channel, or holds a plaintext call open (any gRPC status means the "
        "API speaks in clear; a key sent this way would travel unencrypted): "
        + "; ".join(o.summary() for o in answered))


# -- servers presenting bad certificates ------------------------------------------------------


@dataclass(frozen=True)
class BadCert:
    """A bad server certificate Qdrant still serves, and how to verify it in every other respect."""

    kind: str
    attr: str  # RunPKI attribute of the leaf the server is configured with
    trust_foreign: bool = False  # the twin trusts the foreign CA instead of the run CA
    twin_hostname: str | None = None  # the twin asks for this name instead of the host
    twin_ignores_dates: bool = False

    def cert(self, pki: RunPKI) -> CertFiles:
        leaf: CertFiles = getattr(pki, self.attr)
        return leaf

    def twin_context(self, pki: RunPKI) -> ssl.SSLContext:
        """A verifying context that accepts exactly this certificate's one defect."""
        ctx = ssl_client_context(pki.foreign_ca.cert_path if self.trust_foreign else pki.ca_path)
        if self.twin_ignores_dates:
            tls_probe.ignore_validity_dates(ctx)
        return ctx


BAD_CERTS = [
    BadCert("foreign-ca", "foreign_server", trust_foreign=True),
    BadCert("expired", "expired_server", twin_ignores_dates=True),
    BadCert("not-yet-valid", "not_yet_valid_server", twin_ignores_dates=True),
    BadCert("wrong-host", "wrong_host_server", twin_hostname="wrong.example.invalid"),
]
BAD_IDS = [b.kind for b in BAD_CERTS]


def _answers_on_both_ports(instance: Instance) -> bool:
    # Both ports answer (a TLS server answers a ClientHello whatever certificate it has; a bare
    # TCP accept would be Docker's proxy). What they present is the tests' business: a server that
    # serves something other than its configured certificate must fail them, not look like one
    # that did not start.
    rest = tls_probe.endpoint(instance.rest_url, 6333)
    grpc = tls_probe.endpoint(instance.grpc_target, 6334) if instance.grpc_target else None
    return answers(*rest) and (grpc is None or answers(*grpc))


def _bad_servers(qdrant: Any, pki: RunPKI) -> dict[str, Instance | LaunchError]:
    """The ``tls`` profile once per bad certificate (as ``tls/cert.pem`` with its key), each started once."""
    variants = [Variant(f"tls-bad-{bad.kind}", {"tls/cert.pem": bad.cert(pki).chain_pem,
                                                "tls/key.pem": bad.cert(pki).key_pem})
                for bad in BAD_CERTS]
    # A second try covers a port taken between choosing and binding it.
    return qdrant.variants("tls", variants, ready=_answers_on_both_ports, timeout=START_TIMEOUT, attempts=2,
                           workers=len(variants))


@pytest.mark.parametrize("bad", BAD_CERTS, ids=BAD_IDS)
@req("TLS-ANY-001")
def test_bad_server_certificate_is_served_unchanged(qdrant, pki, bad):
    server = qdrant("tls")
    if not server.can_modify_files:
        disabled("needs servers started with chosen certificates; the suite never reconfigures an external target")
    started = _bad_servers(qdrant, pki)[f"tls-bad-{bad.kind}"]
    assert not isinstance(started, LaunchError), (
        f"Qdrant starts with a {bad.kind} certificate and serves it (spec §1.5: rustls does not check its own "
        f"certificate); this target did not start: {started}")
    leaf = bad.cert(pki)
    seen = []
    for label, target, default, alpn in (("REST", started.rest_url, 6333, None),
                                          ("gRPC", started.grpc_target, 6334, ["h2"])):
        host, port = tls_probe.endpoint(target, default)
        hs = tls_probe.handshake(host, port, bad.twin_context(pki), server_hostname=bad.twin_hostname or host,
                                 alpn=alpn)
        seen.append(f"{label}: {hs.summary()}")
        assert hs.completed and hs.leaf_serial == leaf.serial, (
            f"{label} does not present the configured {bad.kind} certificate (serial {leaf.serial:x}): "
            + "; ".join(seen))

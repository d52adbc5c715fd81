"""Client certificates (spec §6, §11.6; requirements MTLS-REST-001..005, MTLS-GRPC-001..002), profile ``mtls``.

Every refused request carries the valid API key over a channel that verified
the server, so the client certificate is the only thing that can stop it: a
server that accepts the connection answers 2xx, and that is a failure. The
positive twin on the same server, the run's valid client certificate, gets 2xx.

The security requirements count any non-success as a refusal: Qdrant's
rustls aborts the handshake (under TLS 1.3 the client sees it only when it
reads), a proxy in front may answer HTTP 400 instead. The compatibility
requirement MTLS-REST-005 asks for Qdrant's exact behaviour: a TLS-layer
refusal and never an HTTP status.

gRPC: Qdrant's public gRPC port never asks for a client certificate, whatever
``verify_https_client_certificate`` says (spec §6). MTLS-GRPC-001
(compatibility) expects exactly that; MTLS-GRPC-002 (security, SHOULD) reports
it as a warning unless ``--strict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from qdrant_conformance.fixtures import tls_probe
from qdrant_conformance.fixtures.client_tls import ssl_client_context
from qdrant_conformance.fixtures.outcomes import disabled
from qdrant_conformance.fixtures.pki import CertFiles, RunPKI

pytestmark = pytest.mark.profiles("mtls")

req = pytest.mark.requirement

#: The call made over gRPC: whether it completes shows whether the TLS layer let a client in. HealthCheck answers
#: without touching data (public since v1.15.1; the manage key is sent for older versions).
HEALTH = "/qdrant.Qdrant/HealthCheck"


@dataclass(frozen=True)
class BadClient:
    """A client identity the REST port must refuse; ``attr`` is the RunPKI leaf (``None``: no certificate)."""

    case: str
    what: str  # as a sentence says it
    attr: str | None
    needs_target_ca: bool  # minted by the run CA: meaningful only if the target trusts that CA
    note: str = ""  # how sure the spec is, when it is not

    def cert(self, pki: RunPKI) -> CertFiles | None:
        if self.attr is None:
            return None
        leaf: CertFiles = getattr(pki, self.attr)
        return leaf


NO_CERT = BadClient("no-certificate", "no client certificate", None, needs_target_ca=False)
FOREIGN = BadClient("foreign-ca", "a client certificate from another CA", "foreign_client", needs_target_ca=False)
EXPIRED = BadClient("expired", "an expired client certificate", "expired_client", needs_target_ca=True)
NOT_YET_VALID = BadClient("not-yet-valid", "a not-yet-valid client certificate", "not_yet_valid_client",
                          needs_target_ca=True)
SERVER_ONLY_EKU = BadClient("server-only-eku", "a client certificate without the clientAuth EKU",
                            "server_only_eku_client", needs_target_ca=True,
                            note=" (spec §6, inferred: webpki requires clientAuth when the EKU extension is present)")
ALL_BAD = [NO_CERT, FOREIGN, EXPIRED, NOT_YET_VALID, SERVER_ONLY_EKU]


def _mtls_server(qdrant: Any) -> Any:
    server = qdrant("mtls")
    assert server.tls, f"profile mtls is declared, but the REST URL is not https: {server.rest_url}"
    material = server.tls_material
    if material is None or material.client_cert_path is None:
        disabled("the positive twin needs a client certificate the deployment accepts: give --client-cert "
                 "and --client-key")
    return server


def _usable(server: Any, pki: RunPKI, bad: BadClient) -> None:
    if bad.needs_target_ca and server.tls_material.ca_path != pki.ca_path:
        disabled(f"{bad.what} must come from the deployment's own CA to test only that one defect; "
                 "the suite has no key for --ca-cert")


def _request(server: Any, client: CertFiles | None) -> Any:
    """GET / with the manage key, over TLS verified against the deployment's CA, presenting ``client``."""
    rest = server.new_rest(ssl_context=ssl_client_context(server.tls_material.ca_path, client))
    try:
        return rest.request("GET", "/", headers=server.key_headers())
    finally:
        rest.close()


def _twin(server: Any) -> None:
    rest = server.new_rest()  # the deployment's CA and its accepted client certificate
    try:
        outcome = tls_probe.until_answered(lambda: rest.request("GET", "/", headers=server.key_headers()))
    finally:
        rest.close()
    assert outcome.succeeded, (
        f"positive twin failed: the valid client certificate is refused too, so refusals prove nothing: "
        f"{outcome.summary()}")


def _check_refused(server: Any, pki: RunPKI, bad: BadClient) -> None:
    _usable(server, pki, bad)
    _twin(server)
    outcome = _request(server, bad.cert(pki))
    assert not outcome.succeeded, (
        f"REST accepted a request with {bad.what} although "
        f"service.verify_https_client_certificate is on{bad.note}: {outcome.summary()}")


@req("MTLS-REST-001")
def test_rest_refuses_missing_client_certificate(qdrant, pki):
    _check_refused(_mtls_server(qdrant), pki, NO_CERT)


@req("MTLS-REST-002")
def test_rest_refuses_foreign_ca_client_certificate(qdrant, pki):
    _check_refused(_mtls_server(qdrant), pki, FOREIGN)


@pytest.mark.parametrize("bad", [EXPIRED, NOT_YET_VALID], ids=lambda b: b.case)
@req("MTLS-REST-003")
def test_rest_refuses_out_of_date_client_certificate(qdrant, pki, bad):
    _check_refused(_mtls_server(qdrant), pki, bad)


@req("MTLS-REST-004")
def test_rest_refuses_client_certificate_without_client_auth_eku(qdrant, pki):
    # spec §6: "(inferred) webpki requires EKU clientAuth when the EKU extension is present".
    _check_refused(_mtls_server(qdrant), pki, SERVER_ONLY_EKU)


@pytest.mark.parametrize("bad", ALL_BAD, ids=lambda b: b.case)
@req("MTLS-REST-005")
def test_rest_refuses_client_certificates_at_the_tls_layer(qdrant, pki, bad):
    server = _mtls_server(qdrant)
    _usable(server, pki, bad)
    _twin(server)
    outcome = _request(server, bad.cert(pki))
    assert outcome.refused is not None, (
        f"Qdrant refuses a request with {bad.what} in the TLS handshake "
        f"(spec §6: certificate_required / unknown_ca / certificate_expired / unsupported_certificate alerts), "
        f"never with an HTTP status; this target answered: {outcome.summary()}")


def _grpc_without_client_cert(server: Any) -> Any:
    if not server.grpc_target:
        disabled("no gRPC endpoint for this target: give --grpc-url")
    # TLS with the deployment's CA, no client certificate.
    client = tls_probe.grpc_client(server.grpc_target, root_certificates=server.tls_material.ca_pem)
    try:
        # A refusal is the verdict here; only a connection that timed out (a slow machine) is tried again.
        return tls_probe.until_answered(lambda: client.call(HEALTH, metadata=list(server.key_headers().items())),
                                        retry_if=tls_probe.slow_connection)
    finally:
        client.close()


@req("MTLS-GRPC-001")
def test_grpc_does_not_ask_for_client_certificate(qdrant):
    server = _mtls_server(qdrant)
    _grpc_twin(server)
    outcome = _grpc_without_client_cert(server)
    assert outcome.succeeded, (
        "Qdrant's public gRPC port builds its TLS config without a client-CA root and so never asks for a "
        f"client certificate (spec §6); this target refused a call without one: {outcome.summary()}")


@req("MTLS-GRPC-002")
def test_grpc_verifies_client_certificates(qdrant):
    server = _mtls_server(qdrant)
    _grpc_twin(server)
    outcome = _grpc_without_client_cert(server)
    if outcome.succeeded:
        pytest.fail(
            "the gRPC port does not verify client certificates: service.verify_https_client_certificate "
            "protects REST only. A client without a certificate completed a TLS handshake and a call with the API "
            "key "
            f"({outcome.summary()}). Restrict the gRPC port by network policy, or turn it off "
            "(service.grpc_port: null) if REST mTLS is your access control.", pytrace=False)


def _grpc_twin(server: Any) -> None:
    """gRPC with the deployment's CA and the accepted client certificate completes a call."""
    if not server.grpc_target:
        disabled("no gRPC endpoint for this target: give --grpc-url")
    material = server.tls_material
    with_cert = tls_probe.grpc_client(server.grpc_target, root_certificates=material.ca_pem,
                                      private_key=material.client_key_pem,
                                      certificate_chain=material.client_chain_pem)
    try:
        twin = tls_probe.until_answered(lambda: with_cert.call(HEALTH, metadata=list(server.key_headers().items())))
    finally:
        with_cert.close()
    assert twin.succeeded, f"positive twin failed: gRPC with the valid client certificate: {twin.summary()}"


"""The certificate each TLS port of the deployment presents (spec §1.1, §6, §7).

Requirements TLS-REST-003/004/005 and TLS-GRPC-002/003/004. These are
properties of the *deployment's* certificate, which an external target can
get wrong: it MUST chain to the CA its users trust, name the host they connect
to and be within its validity period (TLS-REST-004, TLS-GRPC-003); it SHOULD
NOT expire within 30 days, carry an RSA key below 2048 bits or a SHA-1
signature (TLS-REST-003, TLS-GRPC-002).

The chain is read in a real handshake whose only trust root is the deployment's
CA (the run CA, or ``--ca-cert``): never trust on first use. That handshake
ignores the host name, the dates and OpenSSL's security level, so each test
checks one property and says which one is wrong. On the gRPC port the handshake
offers ALPN ``h2``, as a gRPC client does.

"Exactly the configured chain" needs to know the configuration: it compares
with the files in the server's work dir. For an external target that is
unknown, so only the security requirements run.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from cryptography import x509

from qdrant_conformance.fixtures import cert_inspection, tls_probe
from qdrant_conformance.fixtures.outcomes import disabled

pytestmark = pytest.mark.profiles("tls")

req = pytest.mark.requirement

#: A certificate that ends sooner than this is due for renewal (SHOULD; a common monitoring threshold).
RENEWAL_WINDOW = datetime.timedelta(days=30)
MIN_RSA_BITS = 2048
WEAK_HASHES = frozenset({"sha1", "md5"})


def _tls_server(qdrant: Any) -> Any:
    server = qdrant("tls")
    assert server.tls, f"profile tls is declared, but the REST URL is not https: {server.rest_url}"
    return server


def _port(server: Any, protocol: str) -> tuple[str, int, list[str] | None]:
    if protocol == "rest":
        host, port = tls_probe.endpoint(server.rest_url, 6333)
        return host, port, None
    if not server.grpc_target:
        disabled("no gRPC endpoint for this target: give --grpc-url")
    host, port = tls_probe.endpoint(server.grpc_target, 6334)
    return host, port, ["h2"]


def _inspect(server: Any, protocol: str) -> tuple[str, tls_probe.Handshake]:
    """The served chain, from a handshake that verifies it against the deployment's CA only."""
    host, port, alpn = _port(server, protocol)
    ctx = tls_probe.inspection_context(server.ssl_context())
    return host, tls_probe.handshake(host, port, ctx, alpn=alpn)


def _served_chain(server: Any, protocol: str) -> tuple[str, list[x509.Certificate]]:
    """Host and the certificates the port sent (leaf first); fails when they do not chain to the CA."""
    host, hs = _inspect(server, protocol)
    assert hs.completed, (
        f"{protocol}: the certificate does not chain to the deployment's CA, so nothing it says can be trusted "
        f"(spec §6; TLS-REST-004/TLS-GRPC-003): {hs.summary()}")
    chain = [x509.load_der_x509_certificate(der) for der in hs.chain_der]
    assert chain, f"{protocol}: the handshake completed but no certificate could be read"
    return host, chain


# -- MUST: chains to the CA, names the host, within its dates ------------------------------------


def _check_chains_to_ca(server: Any, protocol: str) -> None:
    _, hs = _inspect(server, protocol)
    assert hs.completed, (
        f"{protocol}: a client that trusts only the deployment's CA cannot build a path to it from the "
        f"certificate this port presents (dates, host name and key strength were not checked here): "
        f"{hs.summary()}")


def _check_names_host(server: Any, protocol: str) -> None:
    host, chain = _served_chain(server, protocol)
    leaf = chain[0]
    assert cert_inspection.host_matches(leaf, host), (
        f"{protocol}: the certificate does not name {host!r}, the host clients connect to (RFC 6125: SAN only): "
        f"{cert_inspection.describe_cert(leaf)}")


def _check_within_validity(server: Any, protocol: str) -> None:
    _, chain = _served_chain(server, protocol)
    problems = [f"{cert_inspection.describe_cert(c)} is {p}" for c in chain
                if (p := cert_inspection.validity_problem(c)) is not None]
    assert not problems, (
        f"{protocol}: a served certificate is outside its validity period (spec §1.5: Qdrant serves it "
        f"anyway; every verifying client refuses it): " + "; ".join(problems))


# -- SHOULD: not about to expire, no weak key, no weak signature ------------------------------------


def _check_not_expiring_soon(server: Any, protocol: str) -> None:
    _, chain = _served_chain(server, protocol)
    now = datetime.datetime.now(datetime.UTC)
    soon = [f"{cert_inspection.describe_cert(c)} ends in {(c.not_valid_after_utc - now).days} days"
            for c in chain if now <= c.not_valid_after_utc < now + RENEWAL_WINDOW]
    assert not soon, (
        f"{protocol}: a served certificate expires within {RENEWAL_WINDOW.days} days; Qdrant does not warn "
        f"(spec §1.5) and clients refuse it the moment it does: " + "; ".join(soon))


def _check_rsa_key_size(server: Any, protocol: str) -> None:
    _, chain = _served_chain(server, protocol)
    weak = [f"{cert_inspection.describe_cert(c)} has a {bits}-bit RSA key" for c in chain
            if (bits := cert_inspection.rsa_key_bits(c)) is not None and bits < MIN_RSA_BITS]
    assert not weak, (
        f"{protocol}: RSA keys below {MIN_RSA_BITS} bits are refused by Qdrant's own stack (ring, spec §1.5) "
        f"and by OpenSSL's default security level: " + "; ".join(weak))


def _check_signature_hash(server: Any, protocol: str) -> None:
    _, chain = _served_chain(server, protocol)
    # A self-signed root's own signature protects nothing; every other signature is what clients rely on.
    weak = [f"{cert_inspection.describe_cert(c)} is signed with {h}" for c in chain
            if not cert_inspection.is_self_signed(c) and (h := cert_inspection.signature_hash(c)) in WEAK_HASHES]
    assert not weak, (
        f"{protocol}: certificate signatures with SHA-1 or MD5 can be forged (RFC 9155 deprecates them) and "
        f"rustls/webpki, as in Qdrant, does not verify them: " + "; ".join(weak))


# -- the table: requirement, property, port ----------------------------------------------------

#: (requirement, property check, port): REST and gRPC carry the same properties (spec §6: one
#: certificate, ``tls.cert``, serves both), each under its own requirement ID.
CHECKS = [
    ("TLS-REST-004", _check_chains_to_ca, "rest"),
    ("TLS-REST-004", _check_names_host, "rest"),
    ("TLS-REST-004", _check_within_validity, "rest"),
    ("TLS-GRPC-003", _check_chains_to_ca, "grpc"),
    ("TLS-GRPC-003", _check_names_host, "grpc"),
    ("TLS-GRPC-003", _check_within_validity, "grpc"),
    ("TLS-REST-003", _check_not_expiring_soon, "rest"),
    ("TLS-REST-003", _check_rsa_key_size, "rest"),
    ("TLS-REST-003", _check_signature_hash, "rest"),
    ("TLS-GRPC-002", _check_not_expiring_soon, "grpc"),
    ("TLS-GRPC-002", _check_rsa_key_size, "grpc"),
    ("TLS-GRPC-002", _check_signature_hash, "grpc"),
]


@pytest.mark.parametrize("check, protocol", [
    pytest.param(check, protocol, marks=req(rid), id=f"{protocol}-{check.__name__.removeprefix('_check_')}")
    for rid, check, protocol in CHECKS
])
def test_deployment_certificate(qdrant: Any, check: Any, protocol: str) -> None:
    check(_tls_server(qdrant), protocol)


# -- compatibility: exactly the configured chain --------------------------------------------------


def _check_exact_chain(server: Any, protocol: str) -> None:
    if not server.can_modify_files or server.workdir is None:
        disabled("the configured certificate of an external target is unknown to the suite; "
                 "TLS-REST-004 and TLS-GRPC-003 check it against --ca-cert and the host instead")
    cert_file = server.workdir / "tls" / "cert.pem"
    key_file = server.workdir / "tls" / "key.pem"
    configured = cert_inspection.pem_chain_der(cert_file.read_bytes())
    configured_spki = cert_inspection.public_key_der_of_private_key(key_file.read_bytes())
    _, hs = _inspect(server, protocol)
    assert hs.completed, f"{protocol}: no handshake with the deployment's CA: {hs.summary()}"
    leaf = hs.leaf
    assert leaf is not None, f"{protocol}: no certificate read"
    assert list(hs.chain_der) == configured, (
        f"{protocol}: the server sent {len(hs.chain_der)} certificate(s), not the {len(configured)} in tls.cert "
        f"(spec §1.1: every certificate in the file is used), or not in that order; leaf served: "
        f"{cert_inspection.describe_cert(leaf)}")
    assert cert_inspection.spki_der(leaf) == configured_spki, (
        f"{protocol}: the served leaf's public key is not the public key of tls.key")


@req("TLS-REST-005")
def test_rest_presents_exactly_the_configured_chain(qdrant):
    _check_exact_chain(_tls_server(qdrant), "rest")


@req("TLS-GRPC-004")
def test_grpc_presents_exactly_the_configured_chain_with_h2(qdrant):
    server = _tls_server(qdrant)
    _check_exact_chain(server, "grpc")
    _, hs = _inspect(server, "grpc")
    assert hs.alpn == "h2", f"gRPC (tonic) negotiates ALPN h2 only (spec §6); negotiated {hs.alpn!r}"

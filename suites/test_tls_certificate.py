"""The certificate each TLS port presents (spec §1.1, §6; requirements TLS-REST-004/005, TLS-GRPC-003/004).

The chain is read with a stdlib handshake that verifies it against the
deployment's CA (the run CA, or ``--ca-cert`` for an external target) and
checks the host name, so a completed handshake is itself the first proof.
The certificate is then checked field by field, so a failure says which
property is wrong. On the gRPC port the handshake offers ALPN ``h2``, as a
gRPC client does.

"Exactly the configured chain" needs to know the configuration: it compares
with the files in the server's work dir (and with the run PKI's server
certificate they were rendered from). For an external target that is unknown,
so only the security requirement (valid for the host, chains to the CA) runs.
"""

from __future__ import annotations

from typing import Any

import pytest

from fixtures import tls_probe
from fixtures.outcomes import disabled

req = pytest.mark.requirement


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


def _presented(server: Any, protocol: str) -> tuple[str, tls_probe.Handshake]:
    host, port, alpn = _port(server, protocol)
    hs = tls_probe.handshake(host, port, server.ssl_context(), alpn=alpn)
    return host, hs


def _check_valid_for_host(server: Any, protocol: str) -> None:
    host, hs = _presented(server, protocol)
    assert hs.completed, (
        f"{protocol}: a client that trusts only the deployment's CA and checks the host name cannot connect: "
        f"{hs.summary()}")
    leaf = hs.leaf
    assert leaf is not None, f"{protocol}: the handshake completed but no certificate could be read"
    facts = tls_probe.describe_cert(leaf)
    assert tls_probe.host_matches(leaf, host), f"{protocol}: the certificate does not name {host!r}: {facts}"
    problem = tls_probe.validity_problem(leaf)
    assert problem is None, f"{protocol}: the certificate is {problem}: {facts}"


def _check_exact_chain(server: Any, pki: Any, protocol: str) -> None:
    if not server.can_modify_files or server.workdir is None:
        disabled("the configured certificate of an external target is unknown to the suite; "
                 "TLS-REST-004 and TLS-GRPC-003 check it against --ca-cert and the host instead")
    cert_file = server.workdir / "tls" / "cert.pem"
    key_file = server.workdir / "tls" / "key.pem"
    configured = tls_probe.pem_chain_der(cert_file.read_bytes())
    configured_spki = tls_probe.public_key_der_of_private_key(key_file.read_bytes())
    _, hs = _presented(server, protocol)
    assert hs.completed, f"{protocol}: no handshake with the deployment's CA: {hs.summary()}"
    leaf = hs.leaf
    assert leaf is not None, f"{protocol}: no certificate read"
    assert leaf.serial_number == pki.server.serial, (
        f"{protocol}: leaf serial {leaf.serial_number:x}, configured {pki.server.serial:x} "
        f"({tls_probe.describe_cert(leaf)})")
    assert list(hs.chain_der) == configured, (
        f"{protocol}: the server sent {len(hs.chain_der)} certificate(s), not the {len(configured)} in tls.cert "
        "(spec §1.1: every certificate in the file is used), or not in that order")
    assert tls_probe.spki_der(leaf) == configured_spki, (
        f"{protocol}: the served leaf's public key is not the public key of tls.key")


@req("TLS-REST-004")
def test_rest_certificate_is_valid_for_the_host(qdrant):
    _check_valid_for_host(_tls_server(qdrant), "rest")


@req("TLS-REST-005")
def test_rest_presents_exactly_the_configured_chain(qdrant, pki):
    _check_exact_chain(_tls_server(qdrant), pki, "rest")


@req("TLS-GRPC-003")
def test_grpc_certificate_is_valid_for_the_host(qdrant):
    _check_valid_for_host(_tls_server(qdrant), "grpc")


@req("TLS-GRPC-004")
def test_grpc_presents_exactly_the_configured_chain_with_h2(qdrant, pki):
    server = _tls_server(qdrant)
    _check_exact_chain(server, pki, "grpc")
    _, hs = _presented(server, "grpc")
    assert hs.alpn == "h2", f"gRPC (tonic) negotiates ALPN h2 only (spec §6); negotiated {hs.alpn!r}"

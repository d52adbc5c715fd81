"""Faulty TLS behaviour: how a context changes when a TLS fault of the catalog is switched on.

Only :mod:`reference_server.tls` calls these, at its seams, with the server's
:class:`~reference_server.fault_policy.FaultPolicy`; with :data:`~reference_server.fault_policy.NO_FAULTS`
every function here leaves the context as it is. Kept apart from ``tls.py`` so
that the faithful code reads without them, and importing nothing of the server
but the policy type, so no import circle can form.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .fault_policy import FaultPolicy

#: OpenSSL's X509_V_FLAG_NO_CHECK_TIME: skip the validity-period check of the peer's chain.
X509_V_FLAG_NO_CHECK_TIME = 0x200000


def weak_certificate_allowed(faults: FaultPolicy) -> bool:
    """``tls-cert-rsa-1024``, ``tls-cert-sha1``: the server loads a certificate its stack would refuse."""
    return faults.active("tls-cert-rsa-1024") or faults.active("tls-cert-sha1")


def weaken_server_context(ctx: ssl.SSLContext, faults: FaultPolicy) -> None:
    """REST server context seam (``tls.new_server_context``): protocol and cipher faults."""
    if faults.active("tls-rest-p521-group"):
        ctx.set_ecdh_curve("secp521r1")
    if weak_certificate_allowed(faults):
        # OpenSSL's security level 2 refuses to load a 1024-bit RSA or SHA-1-signed certificate.
        ctx.set_ciphers(_current_ciphers(ctx) + ":@SECLEVEL=0")
    if faults.active("tls-legacy-versions"):
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if faults.active("tls-weak-cipher"):
        # CBC with SHA-1/SHA-256 MACs for either certificate type, plus static-RSA key exchange.
        ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:"
                        "ECDHE-ECDSA-AES256-SHA384:AES128-SHA:AES256-SHA256:!aNULL:!eNULL")
    if faults.active("tls-anon-cipher"):
        ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:AECDH-AES128-SHA:ADH-AES128-GCM-SHA256:@SECLEVEL=0")


def _current_ciphers(ctx: ssl.SSLContext) -> str:
    return ":".join(c["name"] for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3")


def weaken_client_verification(ctx: ssl.SSLContext, faults: FaultPolicy) -> None:
    """REST mTLS seam (``tls.new_server_context`` with a client CA): client-certificate faults."""
    if faults.active("mtls-no-client-cert-required"):
        ctx.verify_mode = ssl.CERT_NONE
    if faults.active("mtls-client-cert-optional"):
        ctx.verify_mode = ssl.CERT_OPTIONAL
    if faults.active("mtls-expired-accepted"):
        ctx.verify_flags |= X509_V_FLAG_NO_CHECK_TIME


def weaken_grpc_context(ctx: ssl.SSLContext, faults: FaultPolicy) -> None:
    """Public gRPC context seam (``tls.new_grpc_context``): protocol, cipher and group faults."""
    if weak_certificate_allowed(faults):
        ctx.set_ciphers(_current_ciphers(ctx) + ":@SECLEVEL=0")
    if faults.active("tls-grpc-p521-group"):
        ctx.set_ecdh_curve("secp521r1")
    if faults.active("tls-grpc-legacy-versions"):
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if faults.active("tls-grpc-anon-cipher"):
        ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:AECDH-AES128-SHA:ADH-AES128-GCM-SHA256:@SECLEVEL=0")


def require_client_cert(ctx: ssl.SSLContext, ca_pem: str) -> None:
    """``grpc-requests-client-cert``: the public gRPC port demands a client certificate from ``tls.ca_cert``."""
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=ca_pem)


def replace_certificate(ctx: ssl.SSLContext, faults: FaultPolicy) -> None:
    """``tls-wrong-certificate``: load a fresh self-signed certificate for localhost over the configured one."""
    if faults.active("tls-wrong-certificate"):
        load_self_signed(ctx)


def load_self_signed(ctx: ssl.SSLContext) -> None:
    """Load a fresh self-signed P-256 certificate for ``localhost``/``127.0.0.1`` into ``ctx``."""
    import datetime
    import ipaddress
    import os
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "qsc-fault-self-signed")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        with open(cert_path, "wb") as fh:
            fh.write(cert.public_bytes(serialization.Encoding.PEM))
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
        ctx.load_cert_chain(cert_path, key_path)

"""p2p TLS on the wire: the port's server credentials and the channels a node dials its peers on.

Mutual TLS against ``tls.ca_cert`` both ways, the peer's certificate checked
against the host in its URI (spec §8). Fault seams: :data:`~.config.FAULT_PLAINTEXT`,
:data:`~.config.FAULT_ANY_CLIENT_CERT`, :data:`~.config.FAULT_NO_SERVER_NAME_CHECK`
and :data:`~.config.FAULT_BUILTIN_CERT`, asked of ``ClusterConfig.faults``.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .config import (
    CALL_TIMEOUT_S,
    FAULT_ANY_CLIENT_CERT,
    FAULT_BUILTIN_CERT,
    FAULT_NO_SERVER_NAME_CHECK,
    FAULT_PLAINTEXT,
    ClusterConfig,
    P2pTls,
    PeerError,
    PeerUri,
)
from .service import dump, load

_CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    # One connection per channel, and quick reconnects after a refused attempt.
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
]


# -- the p2p port ---------------------------------------------------------------------------


def server_credentials(config: ClusterConfig) -> grpc.ServerCredentials | None:
    """The p2p port's credentials: mutual TLS against ``tls.ca_cert``, or ``None`` for plaintext.

    Fault seams: :data:`FAULT_PLAINTEXT` (no TLS at all), :data:`FAULT_ANY_CLIENT_CERT`
    (TLS without client-certificate checks) and :data:`FAULT_BUILTIN_CERT` (:func:`builtin_identity`).
    """
    if config.tls is None or config.faults.active(FAULT_PLAINTEXT):
        return None
    identity = (config.tls.key_pem, config.tls.chain_pem)
    if config.faults.active(FAULT_BUILTIN_CERT):
        identity = builtin_identity()
    if config.faults.active(FAULT_ANY_CLIENT_CERT) or config.tls.ca_pem is None:
        return grpc.ssl_server_credentials([identity], root_certificates=None, require_client_auth=False)
    return grpc.ssl_server_credentials([identity], root_certificates=config.tls.ca_pem, require_client_auth=True)


def builtin_identity() -> tuple[bytes, bytes]:
    """``p2p-builtin-certificate``: ``(key PEM, certificate PEM)`` of a certificate "built into the server".

    Self-signed P-256 with a fixed key, serial, dates and a deterministic (RFC 6979) signature, so
    every process makes the same bytes and peers can trust it; it names every address the suite's peers use.
    """
    key = ec.derive_private_key(0x5EC0DE_0F_B1_17_1A, ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "qsc-fault-builtin-p2p")])
    # Not "localhost": the suite's peers are reached by it only to test the joiner's name check.
    names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    names += [x509.DNSName(f"node{i}") for i in range(1, 10)]
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(0x5EC0DE).not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
            .not_valid_after(datetime.datetime(2045, 1, 1, tzinfo=datetime.UTC))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(key, hashes.SHA256(), ecdsa_deterministic=True))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


# -- client side --------------------------------------------------------------------------


def presented_name(target: PeerUri, p2p_tls: P2pTls) -> str:
    """A name the peer's certificate carries, read without verifying it (fault seam only)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    ctx.load_cert_chain(p2p_tls.cert_path, p2p_tls.key_path)
    with socket.create_connection((target.host, target.port), timeout=CALL_TIMEOUT_S) as raw, \
            ctx.wrap_socket(raw) as conn:
        der = conn.getpeercert(binary_form=True)
    if der is None:
        raise PeerError(f"{target} presented no certificate")
    cert = x509.load_der_x509_certificate(der)
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise PeerError(f"{target} presented a certificate without SAN") from None
    for name in sans:
        if isinstance(name, x509.DNSName | x509.IPAddress):
            return str(name.value)
    raise PeerError(f"{target} presented a certificate without a DNS or IP SAN")


class PeerChannels:
    """One cached grpc channel per peer URI, with the node's TLS identity when the URI is https."""

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()

    def metadata(self) -> list[tuple[str, str]] | None:
        key = self.config.outgoing_key
        return [("api-key", key)] if key else None

    def channel(self, uri: PeerUri) -> grpc.Channel:
        """The channel for ``uri``: TLS for https (identity + CA, URI host checked), plaintext for http.

        Fault seams: :data:`FAULT_NO_SERVER_NAME_CHECK` checks the certificate
        against a name it carries instead of the URI host; :data:`FAULT_PLAINTEXT`
        dials in plaintext whatever the scheme.
        """
        key = str(uri)
        with self._lock:
            existing = self._channels.get(key)
        if existing is not None:
            return existing
        p2p_tls = self.config.tls
        if uri.tls and not self.config.faults.active(FAULT_PLAINTEXT):
            if p2p_tls is None:
                raise PeerError(f"peer URI {uri} needs TLS but cluster.p2p.enable_tls is off")
            roots = p2p_tls.ca_pem
            if self.config.faults.active(FAULT_BUILTIN_CERT):
                roots = (roots or b"") + builtin_identity()[1]
            creds = grpc.ssl_channel_credentials(
                root_certificates=roots, private_key=p2p_tls.key_pem, certificate_chain=p2p_tls.chain_pem)
            options = list(_CHANNEL_OPTIONS)
            if self.config.faults.active(FAULT_NO_SERVER_NAME_CHECK):
                try:
                    options.append(("grpc.ssl_target_name_override", presented_name(uri, p2p_tls)))
                except (OSError, ssl.SSLError, ValueError) as exc:
                    raise PeerError(f"cannot read the certificate of {uri}: {exc}") from None
            channel = grpc.secure_channel(uri.target, creds, options=options)
        else:
            channel = grpc.insecure_channel(uri.target, options=list(_CHANNEL_OPTIONS))
        with self._lock:
            if key in self._channels:
                channel.close()
                return self._channels[key]
            self._channels[key] = channel
            return channel

    def call(self, uri: PeerUri, method: str, message: dict[str, Any], *, timeout: float = CALL_TIMEOUT_S
             ) -> dict[str, Any]:
        """Call ``method`` on ``uri``; raises :class:`grpc.RpcError` or :class:`PeerError`."""
        stub = self.channel(uri).unary_unary(method)
        raw = stub(dump(message), timeout=timeout, metadata=self.metadata())
        return load(bytes(raw))

    def future(self, uri: PeerUri, method: str, message: dict[str, Any], *, timeout: float) -> grpc.Future:
        stub = self.channel(uri).unary_unary(method)
        return stub.future(dump(message), timeout=timeout, metadata=self.metadata())

    def forget(self, uri: PeerUri) -> None:
        with self._lock:
            channel = self._channels.pop(str(uri), None)
        if channel is not None:
            channel.close()

    def close(self) -> None:
        with self._lock:
            channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            channel.close()


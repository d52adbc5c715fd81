"""TLS for the public listeners: start-up validation, contexts, lazy rotation.

Qdrant's behaviour (spec §1.5, §6, §7), restated for Python's ``ssl``:

* The certificate chain, the private key and, for mTLS, the client CA are
  checked before anything binds; each failure has Qdrant's message.
* REST accepts TLS 1.2 and 1.3 with rustls-like suites only; the client CA is
  read once at start-up and never again.
* ``tls.cert_ttl`` rotation is lazy: the first handshake after the TTL re-reads
  both files; if that fails the old pair stays in service and every later
  handshake tries again. gRPC gets fixed credentials and never rotates.

Fault seams take the server's :class:`~reference_server.fault_policy.FaultPolicy`;
what a TLS fault does to a context is in :mod:`reference_server.tls_faults`.
Nothing here logs or formats key material: errors name files and kinds only.
"""

from __future__ import annotations

import logging
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from . import tls_faults
from .fault_policy import NO_FAULTS, FaultPolicy
from .settings import Settings
from .versioning import Emulation

log = logging.getLogger("reference_server.tls")

#: TLS 1.2 suites rustls offers with the *ring* provider: ECDHE key exchange,
#: AEAD ciphers only (spec §6). TLS 1.3 suites are OpenSSL's defaults, which
#: are the same three AEADs.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"
MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2
#: uvicorn's h11 speaks HTTP/1.1 only, so that is all we may advertise.
REST_ALPN = ("http/1.1",)
#: tonic offers h2 only (spec §6).
GRPC_ALPN = ("h2",)

_PEM_ITEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)
_KEY_LABELS = {b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY"}
_ROTATION_FAILED = "Failed to refresh server TLS certificate, keeping current: %s"


class TlsError(Exception):
    """A TLS file or setting Qdrant would refuse; ``str()`` is the one-line reason."""


@dataclass(frozen=True)
class ServerIdentity:
    """A validated certificate chain and private key, as read from disk."""

    chain_pem: bytes
    key_pem: bytes = field(repr=False)
    leaf: x509.Certificate = field(repr=False)

    @property
    def serial(self) -> int:
        return self.leaf.serial_number


def read_tls_file(path: str) -> bytes:
    """The bytes of one TLS file, or :class:`TlsError` with Qdrant's wording."""
    try:
        handle = open(path, "rb")  # opening and reading fail with different messages
    except IsADirectoryError:
        raise TlsError(f"TLS file could not be read: {path}") from None
    except OSError:
        raise TlsError(f"TLS file could not be opened: {path}") from None
    with handle:
        try:
            return handle.read()
        except OSError:
            raise TlsError(f"TLS file could not be read: {path}") from None


def pem_items(data: bytes) -> list[tuple[bytes, bytes]]:
    """``(label, whole PEM block)`` for each PEM item, in file order."""
    return [(m.group(1), m.group(0) + b"\n") for m in _PEM_ITEM.finditer(data)]


def _no_password() -> bytes:
    # A callable password stops OpenSSL from prompting on a terminal.
    return b""


def _check_signing_key(key: object, faults: FaultPolicy) -> None:
    """Reject keys rustls/*ring* cannot sign with (spec §1.5: ``TLS signing error``)."""
    if isinstance(key, rsa.RSAPrivateKey):
        if not 2048 <= key.key_size <= 8192 and not faults.active("tls-cert-rsa-1024"):  # fault seam
            raise TlsError(f"TLS signing error: RSA key size {key.key_size} is not supported")
        return
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP256R1 | ec.SECP384R1):
            raise TlsError(f"TLS signing error: elliptic curve {key.curve.name} is not supported")
        return
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return
    raise TlsError(f"TLS signing error: unsupported private key type {type(key).__name__.lstrip('_')}")


def _public_der(key: object) -> bytes:
    public = key.public_key()  # type: ignore[attr-defined]
    der: bytes = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return der


def parse_identity(cert_data: bytes, key_data: bytes, cert_path: str, faults: FaultPolicy) -> ServerIdentity:
    """Validate a chain and key the way Qdrant's REST loader does, in its order."""
    cert_blocks = [block for label, block in pem_items(cert_data) if label == b"CERTIFICATE"]
    if not cert_blocks:
        raise TlsError("no server certificate found")
    try:
        chain = [x509.load_pem_x509_certificate(block) for block in cert_blocks]
    except ValueError:
        raise TlsError(f"invalid server certificate in {cert_path}") from None

    items = pem_items(key_data)
    if not items:
        raise TlsError("no private key found")
    label, key_block = items[0]
    if label not in _KEY_LABELS:
        raise TlsError("invalid private key")
    try:
        key = serialization.load_pem_private_key(key_block, password=None)
    except (ValueError, TypeError):
        # Unparsable or passphrase-protected: neither is a key rustls can use.
        raise TlsError("invalid private key") from None
    _check_signing_key(key, faults)
    if _public_der(key) != chain[0].public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise TlsError("TLS signing error: private key does not match certificate")
    chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    return ServerIdentity(chain_pem=chain_pem, key_pem=key_block, leaf=chain[0])


def load_identity(settings: Settings, faults: FaultPolicy) -> ServerIdentity:
    """Read and validate ``tls.cert`` and ``tls.key`` (cert file first, as Qdrant does)."""
    cert_data = read_tls_file(settings.tls.cert)
    key_data = read_tls_file(settings.tls.key)
    return parse_identity(cert_data, key_data, settings.tls.cert, faults)


def load_client_ca(settings: Settings) -> str:
    """PEM text of the usable certificates in ``tls.ca_cert``; unparsable ones are skipped."""
    if settings.tls.ca_cert is None:
        raise TlsError("No ca_cert provided")
    data = read_tls_file(settings.tls.ca_cert)
    usable: list[str] = []
    for label, block in pem_items(data):
        if label != b"CERTIFICATE":
            continue
        try:
            cert = x509.load_pem_x509_certificate(block)
        except ValueError:
            continue
        usable.append(cert.public_bytes(serialization.Encoding.PEM).decode("ascii"))
    if not usable:
        raise TlsError(f"client certificate verification: no usable CA certificate in {settings.tls.ca_cert}")
    return "".join(usable)


def minimum_version(emulation: Emulation) -> ssl.TLSVersion:
    """REST spoke TLS 1.3 only until v1.3.0 (OpenSSL ``mozilla_modern_v5``), then 1.2+ (spec §6, §9)."""
    return MINIMUM_VERSION if emulation.at_least("1.3.0") else ssl.TLSVersion.TLSv1_3


def _base_context(minimum: ssl.TLSVersion, alpn: tuple[str, ...]) -> ssl.SSLContext:
    """TLS 1.2+ (or ``minimum``), rustls's AEAD suites, no compression or renegotiation, ``alpn``.

    The key-exchange groups come from ``reference_server/openssl.cnf`` (X25519, P-256, P-384).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = minimum
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.set_alpn_protocols(list(alpn))
    return ctx


def _load_chain(ctx: ssl.SSLContext, cert_path: str, key_path: str) -> None:
    try:
        ctx.load_cert_chain(cert_path, key_path, password=_no_password)
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise TlsError(f"TLS signing error: {reason}") from None


def new_server_context(
    cert_path: str,
    key_path: str,
    client_ca_pem: str | None,
    minimum: ssl.TLSVersion = MINIMUM_VERSION,
    *,
    faults: FaultPolicy,
) -> ssl.SSLContext:
    """A REST server context: TLS 1.2+, AEAD suites, no compression or renegotiation."""
    ctx = _base_context(minimum, REST_ALPN)
    tls_faults.weaken_server_context(ctx, faults)  # fault seam: tls-legacy-versions, tls-weak-cipher, ...
    _load_chain(ctx, cert_path, key_path)
    tls_faults.replace_certificate(ctx, faults)  # fault seam: tls-wrong-certificate
    if client_ca_pem is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=client_ca_pem)
        tls_faults.weaken_client_verification(ctx, faults)  # fault seam: mtls-*
    return ctx


def new_grpc_context(cert_path: str, key_path: str, faults: FaultPolicy = NO_FAULTS) -> ssl.SSLContext:
    """The public gRPC port's context (terminated by :mod:`reference_server.transport`).

    As tonic's: TLS 1.2 and 1.3 with rustls's suites (spec §6; gRPC was on rustls
    from v1.1.1), ALPN ``h2`` only, never a client certificate whatever
    ``verify_https_client_certificate`` says, one certificate whatever the SNI.
    """
    ctx = _base_context(MINIMUM_VERSION, GRPC_ALPN)
    tls_faults.weaken_grpc_context(ctx, faults)  # fault seam: tls-grpc-*
    _load_chain(ctx, cert_path, key_path)
    return ctx


class RotatingServerContext:
    """The REST listening context, with Qdrant's lazy ``cert_ttl`` reload.

    The listening context carries an SNI callback, which OpenSSL runs on every
    handshake (with or without SNI). When the serving pair is older than the
    TTL the callback re-reads both files and, if they are good, hands this and
    later handshakes a fresh context. Open connections keep theirs.
    """

    def __init__(
        self,
        settings: Settings,
        identity: ServerIdentity,
        client_ca_pem: str | None,
        *,
        faults: FaultPolicy,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._client_ca_pem = client_ca_pem  # read once at start-up, never again (spec §7)
        self._faults = faults
        self._clock = clock
        self._lock = threading.Lock()
        self._emulation = Emulation.of(settings.version)
        self._minimum = minimum_version(self._emulation)
        self.context = new_server_context(settings.tls.cert, settings.tls.key, client_ca_pem, self._minimum,
                                          faults=faults)
        #: ``rotation-self-signed-fallback``: the made-up context, made once, served after every failed reload.
        self._fallback: ssl.SSLContext | None = None
        self._serving = self.context
        self._serial = identity.serial
        self._loaded_at = clock()
        self.ttl = settings.tls.cert_ttl
        if self.ttl is not None:
            self.context.sni_callback = self._on_handshake

    def _due(self) -> bool:
        if self._faults.active("rotation-never-reloads"):  # fault seam
            return False
        return self.ttl is not None and self._clock() - self._loaded_at >= self.ttl

    def _reload(self) -> None:
        """Re-read cert and key; on failure keep the current pair and do not reset the age.

        Before v1.3.0 (OpenSSL) a failed reload aborted the handshake instead.
        """
        tls = self._settings.tls
        try:
            identity = parse_identity(read_tls_file(tls.cert), read_tls_file(tls.key), tls.cert, self._faults)
            fresh = new_server_context(tls.cert, tls.key, self._client_ca_pem, self._minimum, faults=self._faults)
        except Exception as exc:  # any failure keeps the old pair in service (spec §7)
            reason = exc if isinstance(exc, TlsError) else type(exc).__name__
            if not self._emulation.at_least("1.3.0"):
                log.error("Failed to refresh server TLS certificate: %s", reason)
                raise ssl.SSLError("certificate reload failed") from None
            log.error(_ROTATION_FAILED, reason)
            if self._faults.active("rotation-drops-old-cert"):  # fault seam: the failed reload aborts the handshake
                raise ssl.SSLError("certificate reload failed") from None
            if self._faults.active("rotation-self-signed-fallback"):  # fault seam: serve a made-up certificate
                if self._fallback is None:
                    self._fallback = _base_context(self._minimum, REST_ALPN)
                    tls_faults.load_self_signed(self._fallback)
                self._serving = self._fallback
            return
        self._serving = fresh
        self._serial = identity.serial
        self._loaded_at = self._clock()
        log.info("Reloaded server TLS certificate (serial %x)", identity.serial)

    def _on_handshake(self, ssl_obj: ssl.SSLObject, server_name: str | None, ctx: ssl.SSLContext) -> None:
        with self._lock:
            if self._due():
                self._reload()
            serving = self._serving
        if serving is not self.context:
            ssl_obj.context = serving


def rest_context(settings: Settings, identity: ServerIdentity, faults: FaultPolicy) -> RotatingServerContext:
    """The REST TLS context for ``settings``; mTLS when ``verify_https_client_certificate``."""
    ca_pem = load_client_ca(settings) if settings.service.verify_https_client_certificate else None
    return RotatingServerContext(settings, identity, ca_pem, faults=faults)


def grpc_context(settings: Settings, faults: FaultPolicy) -> ssl.SSLContext:
    """Fixed gRPC TLS: read once, never a client CA, never client auth (spec §6, §7).

    Fault seams: ``rotation-reloads-grpc`` (:func:`_reloading_grpc_context`) and, with mTLS configured
    for REST, ``grpc-requests-client-cert`` (a client certificate demanded from ``tls.ca_cert``).
    """
    ctx = (_reloading_grpc_context(settings, faults) if faults.active("rotation-reloads-grpc")  # fault seam
           else new_grpc_context(settings.tls.cert, settings.tls.key, faults))
    if settings.service.verify_https_client_certificate and faults.active("grpc-requests-client-cert"):  # fault seam
        tls_faults.require_client_cert(ctx, load_client_ca(settings))
    return ctx


def _reloading_grpc_context(settings: Settings, faults: FaultPolicy) -> ssl.SSLContext:
    """``rotation-reloads-grpc``: gRPC re-reads ``tls.cert``/``tls.key`` on new handshakes (Qdrant's never does)."""
    first = new_grpc_context(settings.tls.cert, settings.tls.key, faults)
    state = {"chain": load_identity(settings, faults).chain_pem, "context": first}

    def on_handshake(ssl_obj: ssl.SSLObject, server_name: str | None, ctx: ssl.SSLContext) -> None:
        try:
            fresh = load_identity(settings, faults)
            if fresh.chain_pem != state["chain"]:
                state["context"] = new_grpc_context(settings.tls.cert, settings.tls.key, faults)
                state["chain"] = fresh.chain_pem
        except TlsError:
            pass
        if state["context"] is not first:
            ssl_obj.context = state["context"]  # type: ignore[assignment]

    first.sni_callback = on_handshake
    return first


def ttl_text(settings: Settings) -> str:
    return "none" if settings.tls.cert_ttl is None else str(settings.tls.cert_ttl)


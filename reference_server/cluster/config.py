"""Cluster configuration: what cluster mode needs, read and validated before anything binds (spec §1.5, §8).

Fault seams: :data:`FAULT_NO_CA` (:func:`load_p2p_tls`) and ``p2p-internal-auth-ignored``
(:func:`prepare`); :data:`FAULTS` are the p2p faults :mod:`.channels` also asks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .. import tls
from ..auth import AuthKeys
from ..fault_policy import NO_FAULTS, FaultPolicy
from ..settings import Settings
from ..versioning import Emulation

CA_REQUIRED = "CA certificate is required for TLS configuration"

#: Fault: p2p TLS is configured but ignored: the port listens in plaintext and the node dials its
#: peers in plaintext too, even at https URIs (so a cluster of such nodes still forms, "over https").
FAULT_PLAINTEXT = "p2p-accepts-plaintext"
#: Fault: the p2p port does TLS but neither asks for nor checks client certificates.
FAULT_ANY_CLIENT_CERT = "p2p-accepts-any-client-cert"
#: Fault: outgoing p2p connections do not check the peer's certificate against its URI host.
FAULT_NO_SERVER_NAME_CHECK = "p2p-skips-server-name-check"
#: Fault: p2p TLS without ``tls.ca_cert`` starts anyway, checking no client certificate and trusting the
#: system roots for outgoing calls, instead of refusing to start (spec §8).
FAULT_NO_CA = "p2p-tls-without-ca"
#: Fault: the p2p port presents a certificate built into the server, which peers also trust.
FAULT_BUILTIN_CERT = "p2p-builtin-certificate"
FAULTS = (FAULT_PLAINTEXT, FAULT_ANY_CLIENT_CERT, FAULT_NO_SERVER_NAME_CHECK, FAULT_NO_CA, FAULT_BUILTIN_CERT)

DEFAULT_HEARTBEAT_S = 0.25
DEFAULT_JOIN_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 2.0


class ClusterError(Exception):
    """Cluster mode cannot start (bad config, port, or failed join); ``str()`` is one line."""


class PeerError(Exception):
    """An outgoing p2p connection cannot even be attempted (e.g. https URI without TLS)."""


@dataclass(frozen=True)
class PeerUri:
    """A peer URI (``https://node1:6335``), normalised the way Qdrant prints it (trailing ``/``)."""

    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> PeerUri:
        try:
            parts = urlsplit(text.strip())
            port = parts.port
        except ValueError as exc:
            raise ClusterError(f"Invalid peer URI {text!r}: {exc}") from None
        if parts.scheme not in ("http", "https"):
            raise ClusterError(f"Invalid peer URI {text!r}: the scheme must be http or https")
        if not parts.hostname:
            raise ClusterError(f"Invalid peer URI {text!r}: no host")
        if port is None:
            raise ClusterError(f"Invalid peer URI {text!r}: no port")
        return cls(parts.scheme, parts.hostname, port)

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def target(self) -> str:
        """``host:port`` for grpc (IPv6 in brackets)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.target}/"


@dataclass(frozen=True)
class P2pTls:
    """The node's p2p TLS material: its identity and the CA its peers must chain to."""

    ca_pem: bytes | None  # None only with the fault p2p-tls-without-ca
    chain_pem: bytes
    key_pem: bytes = field(repr=False)
    cert_path: str = ""
    key_path: str = field(default="", repr=False)


@dataclass(frozen=True)
class ClusterConfig:
    """Everything cluster mode needs, validated before any port is bound."""

    host: str
    port: int
    uri: PeerUri | None
    bootstrap: PeerUri | None
    tls: P2pTls | None
    #: Keys checked on the p2p port (``enforce_internal_auth``); ``None`` = unauthenticated.
    keys: AuthKeys | None
    #: Key sent as ``api-key`` on outgoing p2p calls.
    outgoing_key: str | None = field(repr=False)
    version: str
    #: The server's fault switches (self-tests only): the p2p seams ask them.
    faults: FaultPolicy = NO_FAULTS
    heartbeat_interval: float = DEFAULT_HEARTBEAT_S
    join_timeout: float = DEFAULT_JOIN_TIMEOUT_S


def _own_number(raw: dict[str, Any], name: str, default: float) -> float:
    own = raw.get("reference_server") or {}
    section = own.get("cluster") if isinstance(own, dict) else None
    value = section.get(name, default) if isinstance(section, dict) else default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ClusterError(f"reference_server.cluster.{name} must be a number, got {value!r}") from None
    if number <= 0:
        raise ClusterError(f"reference_server.cluster.{name} must be positive")
    return number


def load_p2p_tls(settings: Settings, faults: FaultPolicy) -> P2pTls:
    """Read the p2p identity and CA the way Qdrant's channel service does: the CA is mandatory."""
    if settings.tls.ca_cert is None:
        if not faults.active(FAULT_NO_CA):  # fault seam
            raise ClusterError(CA_REQUIRED)
        try:
            identity = tls.load_identity(settings, faults)
        except tls.TlsError as exc:
            raise ClusterError(str(exc)) from None
        return P2pTls(ca_pem=None, chain_pem=identity.chain_pem, key_pem=identity.key_pem,
                      cert_path=settings.tls.cert, key_path=settings.tls.key)
    try:
        identity = tls.load_identity(settings, faults)
        ca_data = tls.read_tls_file(settings.tls.ca_cert)
    except tls.TlsError as exc:
        raise ClusterError(str(exc)) from None
    cas = [block for label, block in tls.pem_items(ca_data) if label == b"CERTIFICATE"]
    if not cas:
        raise ClusterError(f"no CA certificate found in {settings.tls.ca_cert}")
    return P2pTls(ca_pem=b"".join(cas), chain_pem=identity.chain_pem, key_pem=identity.key_pem,
                  cert_path=settings.tls.cert, key_path=settings.tls.key)


def prepare(settings: Settings, faults: FaultPolicy) -> ClusterConfig | None:
    """The cluster configuration, or ``None`` when cluster mode is off; :class:`ClusterError` if unusable.

    Runs before anything binds, like Qdrant's ``init_channel_service`` (spec §1.5).
    """
    cluster = settings.cluster
    if not cluster.enabled:
        return None
    p2p_tls = load_p2p_tls(settings, faults) if cluster.p2p_enable_tls else None
    uri = PeerUri.parse(settings.uri) if settings.uri else None
    bootstrap = PeerUri.parse(settings.bootstrap) if settings.bootstrap else None
    emulation = Emulation.of(settings.version)
    internal_auth = emulation.at_least("1.18.0")
    keys = AuthKeys.from_settings(settings, faults)
    return ClusterConfig(
        host=settings.service.host,
        port=cluster.p2p_port,
        uri=uri,
        bootstrap=bootstrap,
        tls=p2p_tls,
        keys=(keys if internal_auth and settings.service.enforce_internal_auth
              and not faults.active("p2p-internal-auth-ignored") else None),  # fault seam
        outgoing_key=(keys.manage if keys is not None else None) if internal_auth else None,
        version=settings.version,
        faults=faults,
        heartbeat_interval=_own_number(settings.raw, "heartbeat_interval", DEFAULT_HEARTBEAT_S),
        join_timeout=_own_number(settings.raw, "join_timeout", DEFAULT_JOIN_TIMEOUT_S),
    )


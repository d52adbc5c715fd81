"""Cluster mode: the p2p port, joining a cluster and the peer list (spec §1.1, §1.5, §3, §8).

What a Qdrant peer shows from the outside, and nothing of Qdrant's internal
protocol (we test the TLS and authentication posture, not Raft):

* ``cluster.enabled`` binds a gRPC server on ``service.host:cluster.p2p.port``.
* ``cluster.p2p.enable_tls`` makes that port **mutual TLS**: the node's
  ``tls.cert``/``tls.key`` as identity, client certificates required and
  checked against ``tls.ca_cert``. Outgoing p2p connections present the same
  identity, trust ``tls.ca_cert`` only and check the peer's certificate
  against the host in its URI. ``tls.ca_cert`` unset →
  ``CA certificate is required for TLS configuration`` at start-up.
* ``service.enforce_internal_auth`` (v1.18.0+) puts the API-key check on the
  p2p port, with the health methods whitelisted; from v1.18.0 peers always
  send their ``service.api_key`` as ``api-key`` metadata.
* The port serves ``qdrant.Qdrant/HealthCheck``, ``grpc.health.v1.Health/Check``
  and the read-only ``qdrant.QdrantInternal/GetConsensusCommit`` as Qdrant's
  does, plus our own minimal peer service ``qsc.p2p.Peer`` (``Ping``, ``Join``,
  ``Exchange``) whose messages are JSON bytes.

Membership: a node started with ``--bootstrap URI`` calls ``Join`` on that
peer. The bootstrap peer first dials the newcomer back at its URI (so a
newcomer whose certificate does not match its own URI, or that speaks
plaintext to TLS peers, is never admitted), then adds it and answers with
its peer table. Every node then sends its table to every known peer every
``heartbeat_interval`` seconds (``Exchange``) and merges the answers, so
the tables converge within one interval. Only known peers may exchange.
A join that has not succeeded by ``join_timeout`` fails start-up (exit 1).

Fault seams for the fault catalog (``reference_server.faults`` names):
:data:`FAULT_PLAINTEXT`, :data:`FAULT_ANY_CLIENT_CERT` and
:data:`FAULT_NO_SERVER_NAME_CHECK`; see :func:`server_credentials` and
:meth:`PeerChannels.channel`.

Nothing here logs or formats key material or API keys.
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import grpc
from cryptography import x509

from reference_server import COMMIT, TITLE, faults, tls
from reference_server.auth import AuthFailure, AuthKeys
from reference_server.settings import Settings
from reference_server.versioning import Emulation

log = logging.getLogger("reference_server.cluster")

CA_REQUIRED = "CA certificate is required for TLS configuration"

PEER_SERVICE = "qsc.p2p.Peer"
M_PING = f"/{PEER_SERVICE}/Ping"
M_JOIN = f"/{PEER_SERVICE}/Join"
M_EXCHANGE = f"/{PEER_SERVICE}/Exchange"
M_QDRANT_HEALTH = "/qdrant.Qdrant/HealthCheck"
M_GRPC_HEALTH = "/grpc.health.v1.Health/Check"
#: A read-only internal method Qdrant's p2p port serves (empty request; answers commit and term).
M_CONSENSUS_COMMIT = "/qdrant.QdrantInternal/GetConsensusCommit"
#: Methods the p2p port answers without credentials even with ``enforce_internal_auth`` (spec §3).
HEALTH_METHODS = frozenset({M_QDRANT_HEALTH, M_GRPC_HEALTH})

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
SERVER_WORKERS = 8

_CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    # One connection per channel, and quick reconnects after a refused attempt.
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
]
_SERVER_OPTIONS: list[tuple[str, Any]] = [("grpc.so_reuseport", 0)]


class ClusterError(Exception):
    """Cluster mode cannot start (bad config, port, or failed join); ``str()`` is one line."""


class PeerError(Exception):
    """An outgoing p2p connection cannot even be attempted (e.g. https URI without TLS)."""


# -- configuration ----------------------------------------------------------------------


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
    faults: frozenset[str] = frozenset()
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


def load_p2p_tls(settings: Settings) -> P2pTls:
    """Read the p2p identity and CA the way Qdrant's channel service does: the CA is mandatory."""
    if settings.tls.ca_cert is None:
        if not faults.active(FAULT_NO_CA):  # fault seam
            raise ClusterError(CA_REQUIRED)
        try:
            identity = tls.load_identity(settings)
        except tls.TlsError as exc:
            raise ClusterError(str(exc)) from None
        return P2pTls(ca_pem=None, chain_pem=identity.chain_pem, key_pem=identity.key_pem,
                      cert_path=settings.tls.cert, key_path=settings.tls.key)
    try:
        identity = tls.load_identity(settings)
        ca_data = tls.read_tls_file(settings.tls.ca_cert)
    except tls.TlsError as exc:
        raise ClusterError(str(exc)) from None
    cas = [block for label, block in tls.pem_items(ca_data) if label == b"CERTIFICATE"]
    if not cas:
        raise ClusterError(f"no CA certificate found in {settings.tls.ca_cert}")
    return P2pTls(ca_pem=b"".join(cas), chain_pem=identity.chain_pem, key_pem=identity.key_pem,
                  cert_path=settings.tls.cert, key_path=settings.tls.key)


def prepare(settings: Settings) -> ClusterConfig | None:
    """The cluster configuration, or ``None`` when cluster mode is off; :class:`ClusterError` if unusable.

    Runs before anything binds, like Qdrant's ``init_channel_service`` (spec §1.5).
    """
    cluster = settings.cluster
    if not cluster.enabled:
        return None
    p2p_tls = load_p2p_tls(settings) if cluster.p2p_enable_tls else None
    uri = PeerUri.parse(settings.uri) if settings.uri else None
    bootstrap = PeerUri.parse(settings.bootstrap) if settings.bootstrap else None
    emulation = Emulation.of(settings.version)
    internal_auth = emulation.at_least("1.18.0")
    keys = AuthKeys.from_settings(settings)
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
        faults=frozenset(f for f in settings.faults if f in FAULTS),
        heartbeat_interval=_own_number(settings.raw, "heartbeat_interval", DEFAULT_HEARTBEAT_S),
        join_timeout=_own_number(settings.raw, "join_timeout", DEFAULT_JOIN_TIMEOUT_S),
    )


# -- wire helpers -------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _pb_string(number: int, text: str) -> bytes:
    data = text.encode("utf-8")
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def health_check_reply(version: str) -> bytes:
    """``qdrant.HealthCheckReply``: title (1), version (2), commit (3)."""
    return _pb_string(1, TITLE) + _pb_string(2, version) + _pb_string(3, COMMIT)


#: ``grpc.health.v1.HealthCheckResponse`` with ``status = SERVING``.
GRPC_HEALTH_SERVING = b"\x08\x01"


def _dump(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("utf-8")


def _load(raw: bytes) -> dict[str, Any]:
    try:
        message = json.loads(raw.decode("utf-8") or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("request is not a JSON object") from None
    if not isinstance(message, dict):
        raise ValueError("request is not a JSON object")
    return message


def describe_rpc_error(exc: grpc.RpcError) -> str:
    """``CODE: details`` of a failed call, on one line, cut short."""
    call: Any = exc
    text = f"{call.code().name}: {call.details() or ''}"
    text = " ".join(text.split())
    return text if len(text) <= 400 else text[:400] + "..."


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


# -- server side --------------------------------------------------------------------------


def server_credentials(config: ClusterConfig) -> grpc.ServerCredentials | None:
    """The p2p port's credentials: mutual TLS against ``tls.ca_cert``, or ``None`` for plaintext.

    Fault seams: :data:`FAULT_PLAINTEXT` (no TLS at all) and
    :data:`FAULT_ANY_CLIENT_CERT` (TLS without client-certificate checks).
    """
    if config.tls is None or FAULT_PLAINTEXT in config.faults:
        return None
    identity = (config.tls.key_pem, config.tls.chain_pem)
    if FAULT_BUILTIN_CERT in config.faults:
        identity = faults.builtin_p2p_identity()
    if FAULT_ANY_CLIENT_CERT in config.faults or config.tls.ca_pem is None:
        return grpc.ssl_server_credentials([identity], root_certificates=None, require_client_auth=False)
    return grpc.ssl_server_credentials([identity], root_certificates=config.tls.ca_pem, require_client_auth=True)


def _deny(code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    def abort(request: bytes, context: grpc.ServicerContext) -> bytes:
        context.abort(code, message)
        raise AssertionError("unreachable")  # context.abort raises

    return grpc.unary_unary_rpc_method_handler(abort)


class InternalAuth(grpc.ServerInterceptor):
    """``enforce_internal_auth``: the API-key check before routing, health methods exempt (spec §3)."""

    def __init__(self, keys: AuthKeys) -> None:
        self.keys = keys

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        details: Any = handler_call_details
        if details.method in HEALTH_METHODS and not faults.active("p2p-health-requires-key"):  # fault seam
            return continuation(handler_call_details)
        first: dict[str, str] = {}
        for key, value in details.invocation_metadata or ():
            if isinstance(value, str):
                first.setdefault(key.lower(), value)
        try:
            self.keys.authenticate(first.get("api-key"), first.get("authorization"))
        except AuthFailure as failure:
            return _deny(getattr(grpc.StatusCode, failure.grpc_code), failure.message)
        return continuation(handler_call_details)


class _Handlers(grpc.GenericRpcHandler):
    def __init__(self, table: dict[str, Callable[[bytes, grpc.ServicerContext], bytes]]) -> None:
        self.table = table

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = self.table.get(handler_call_details.method)
        return grpc.unary_unary_rpc_method_handler(method) if method is not None else None


def _peer_address(peer: str) -> str | None:
    """The host of grpc's ``context.peer()`` (``ipv4:1.2.3.4:5``, ``ipv6:[::1]:5``)."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return None


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
        if uri.tls and FAULT_PLAINTEXT not in self.config.faults:
            if p2p_tls is None:
                raise PeerError(f"peer URI {uri} needs TLS but cluster.p2p.enable_tls is off")
            roots = p2p_tls.ca_pem
            if FAULT_BUILTIN_CERT in self.config.faults:
                roots = (roots or b"") + faults.builtin_p2p_identity()[1]
            creds = grpc.ssl_channel_credentials(
                root_certificates=roots, private_key=p2p_tls.key_pem, certificate_chain=p2p_tls.chain_pem)
            options = list(_CHANNEL_OPTIONS)
            if FAULT_NO_SERVER_NAME_CHECK in self.config.faults:
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
        raw = stub(_dump(message), timeout=timeout, metadata=self.metadata())
        return _load(bytes(raw))

    def future(self, uri: PeerUri, method: str, message: dict[str, Any], *, timeout: float) -> grpc.Future:
        stub = self.channel(uri).unary_unary(method)
        return stub.future(_dump(message), timeout=timeout, metadata=self.metadata())

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


# -- the node -----------------------------------------------------------------------------


@dataclass
class _SendFailure:
    count: int = 0
    latest_error: str = ""
    latest_error_timestamp: str = ""


class ClusterNode:
    """One peer: the p2p server, the join, the heartbeat loop and the peer table."""

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.peer_id = secrets.randbits(53) or 1
        self.uri: PeerUri | None = None
        self.leader: int | None = None
        self._peers: dict[int, PeerUri] = {}
        self._failures: dict[str, _SendFailure] = {}
        self._inflight: set[str] = set()  # peers with an Exchange still under way
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: grpc.Server | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._heartbeat: threading.Thread | None = None
        self._last_update = _now_iso()
        self.channels = PeerChannels(config)

    # -- lifecycle ----------------------------------------------------------

    def start(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        """Bind the p2p port, join through ``--bootstrap`` (blocking), start heartbeats."""
        self._serve()
        try:
            if self.config.bootstrap is not None:
                self._join(self.config.bootstrap, cancelled)
            else:
                self.uri = self.config.uri or self._default_uri()
                with self._lock:
                    self._peers[self.peer_id] = self.uri
                    self.leader = self.peer_id
                log.info("Started a new cluster as peer %d at %s", self.peer_id, self.uri)
        except BaseException:
            self.stop()
            raise
        self._heartbeat = threading.Thread(target=self._heartbeat_loop, name="p2p-heartbeat", daemon=True)
        self._heartbeat.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._heartbeat is not None and self._heartbeat is not threading.current_thread():
            self._heartbeat.join(timeout=CALL_TIMEOUT_S + 1)
        if self._server is not None:
            self._server.stop(grace=0.5).wait(3)
            self._server = None
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
        self.channels.close()

    def _default_uri(self) -> PeerUri:
        host = self.config.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        return PeerUri("https" if self.config.tls else "http", host, self.config.port)

    def _serve(self) -> None:
        config = self.config
        self._executor = ThreadPoolExecutor(max_workers=SERVER_WORKERS, thread_name_prefix="p2p-worker")
        interceptors = [InternalAuth(config.keys)] if config.keys is not None else []
        table: dict[str, Callable[[bytes, grpc.ServicerContext], bytes]] = {
            M_QDRANT_HEALTH: lambda req, ctx: health_check_reply(config.version),
            M_GRPC_HEALTH: lambda req, ctx: GRPC_HEALTH_SERVING,
            M_CONSENSUS_COMMIT: self._on_consensus_commit,
            M_PING: self._on_ping,
            M_JOIN: self._on_join,
            M_EXCHANGE: self._on_exchange,
        }
        server = grpc.server(self._executor, handlers=[_Handlers(table)], interceptors=interceptors,
                             options=_SERVER_OPTIONS)
        address = PeerUri("http", config.host, config.port).target
        creds = server_credentials(config)
        try:
            bound = server.add_secure_port(address, creds) if creds is not None else server.add_insecure_port(address)
            reason = "address in use or not available"
        except RuntimeError as exc:
            bound, reason = 0, str(exc)
        if bound == 0:
            server.stop(None)
            raise ClusterError(f"Can't bind the internal gRPC (p2p) port {address}: {reason}")
        server.start()
        self._server = server
        if creds is None:
            log.info("Qdrant internal gRPC listening on %s", config.port)
        else:
            log.info("TLS enabled for internal gRPC API (TTL not supported)")
            log.info("Qdrant internal gRPC listening on %s", config.port)
        if config.keys is None:
            log.info("Internal (p2p) API is not authenticated (service.enforce_internal_auth is off)")
        if config.faults:
            log.warning("p2p faults switched on: %s", ", ".join(sorted(config.faults)))

    # -- joining ------------------------------------------------------------

    def _join(self, bootstrap: PeerUri, cancelled: Callable[[], bool]) -> None:
        config = self.config
        request = {"peer_id": self.peer_id, "uri": str(config.uri) if config.uri else None, "port": config.port}
        deadline = time.monotonic() + config.join_timeout
        delay = 0.05
        errors: dict[str, None] = {}  # distinct failures, oldest first: the telling one may not be the last
        attempts = 0
        while True:
            if cancelled() or self._stopping.is_set():
                raise ClusterError(f"Can't initialize consensus: interrupted while joining via {bootstrap}")
            attempts += 1
            remaining = deadline - time.monotonic()
            try:
                answer = self.channels.call(bootstrap, M_JOIN, request,
                                            timeout=max(0.2, min(CALL_TIMEOUT_S * 2, remaining)))
                self._accept_join(bootstrap, answer)
                return
            except PeerError as exc:
                raise ClusterError(f"Can't initialize consensus: failed to join the cluster via {bootstrap}: "
                                   f"{exc}") from None
            except grpc.RpcError as exc:
                error = describe_rpc_error(exc)
                if error not in errors:
                    log.warning("Joining the cluster via %s failed (attempt %d): %s", bootstrap, attempts, error)
                errors.pop(error, None)
                errors[error] = None
            except (KeyError, TypeError, ValueError) as exc:
                errors[f"malformed join answer: {exc}"] = None
            if time.monotonic() + delay >= deadline:
                raise ClusterError(f"Can't initialize consensus: failed to join the cluster via {bootstrap} "
                                   f"after {attempts} attempts: {' | '.join(list(errors)[-3:])}")
            self._stopping.wait(delay)
            delay = min(delay * 2, 0.5)

    def _accept_join(self, bootstrap: PeerUri, answer: dict[str, Any]) -> None:
        own = PeerUri.parse(str(answer["uri"]))
        peers = {int(pid): PeerUri.parse(str(uri)) for pid, uri in dict(answer["peers"]).items()}
        with self._lock:
            self.uri = own
            self._peers.update(peers)
            self._peers[self.peer_id] = own
            leader = answer.get("leader")
            self.leader = int(leader) if leader is not None else None
            self._last_update = _now_iso()
            known = len(self._peers)
        log.info("Joined the cluster via %s as peer %d at %s (%d peers known)", bootstrap, self.peer_id, own, known)

    # -- handlers -----------------------------------------------------------

    def _table(self) -> dict[str, str]:
        with self._lock:
            return {str(pid): str(uri) for pid, uri in self._peers.items()}

    def _on_consensus_commit(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        # GetConsensusCommitResponse: commit (1) and term (2), both int64.
        with self._lock:
            commit = len(self._peers)
        return _varint(1 << 3) + _varint(commit) + _varint(2 << 3) + _varint(1)

    def _on_ping(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        return _dump({"peer_id": self.peer_id})

    def _on_join(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            message = _load(request)
            peer_id = int(message["peer_id"])
            if message.get("uri"):
                uri = PeerUri.parse(str(message["uri"]))
            else:
                # Qdrant builds the URI of a peer that joins without --uri from its address (spec §8).
                host = _peer_address(context.peer())
                if host is None:
                    raise ValueError(f"cannot tell the address of {context.peer()}")
                uri = PeerUri("https" if self.config.tls else "http", host, int(message["port"]))
        except (KeyError, TypeError, ValueError, ClusterError) as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad join request: {exc}")
            raise AssertionError("unreachable") from None
        with self._lock:
            known = self._peers.get(peer_id)
        if peer_id == self.peer_id or (known is not None and known != uri):
            context.abort(grpc.StatusCode.ALREADY_EXISTS, f"peer id {peer_id} is taken")
        # Admit only a peer we can reach at its own URI with full verification.
        try:
            self.channels.call(uri, M_PING, {"peer_id": self.peer_id})
        except (grpc.RpcError, PeerError) as exc:
            self.channels.forget(uri)
            reason = describe_rpc_error(exc) if isinstance(exc, grpc.RpcError) else str(exc)
            log.warning("Refused peer %d: cannot reach it at %s: %s", peer_id, uri, reason)
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"cannot reach the joining peer at {uri}: {reason}")
        with self._lock:
            self._peers[peer_id] = uri
            self._last_update = _now_iso()
        log.info("Peer %d joined at %s", peer_id, uri)
        return _dump({"uri": str(uri), "peers": self._table(), "leader": self.leader, "peer_id": self.peer_id})

    def _on_exchange(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            message = _load(request)
            sender = int(message["peer_id"])
            peers = {int(pid): PeerUri.parse(str(uri)) for pid, uri in dict(message.get("peers") or {}).items()}
        except (KeyError, TypeError, ValueError, ClusterError) as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad exchange request: {exc}")
            raise AssertionError("unreachable") from None
        with self._lock:
            if sender not in self._peers:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"peer {sender} is not a member: join first")
            self._merge(peers)
        return _dump({"peer_id": self.peer_id, "peers": self._table()})

    def _merge(self, peers: dict[int, PeerUri]) -> None:
        """Add peers we did not know (caller holds the lock); members were admitted by a dial-back."""
        added = False
        for pid, uri in peers.items():
            if pid not in self._peers:
                self._peers[pid] = uri
                added = True
        if added:
            self._last_update = _now_iso()

    # -- heartbeats ---------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        interval = self.config.heartbeat_interval
        while not self._stopping.wait(interval):
            try:
                self._heartbeat_once(timeout=max(0.2, min(CALL_TIMEOUT_S, interval * 4)))
            except Exception:  # the loop must survive anything a peer sends
                log.exception("p2p heartbeat failed")

    def _heartbeat_once(self, *, timeout: float) -> None:
        """Send the table to every peer without waiting: a dead peer must not slow the others down."""
        with self._lock:
            others = [uri for pid, uri in self._peers.items() if pid != self.peer_id and str(uri) not in self._inflight]
            self._inflight.update(str(uri) for uri in others)
        message = {"peer_id": self.peer_id, "uri": str(self.uri), "peers": self._table()}
        for uri in others:
            try:
                future = self.channels.future(uri, M_EXCHANGE, message, timeout=timeout)
            except PeerError as exc:
                self._record_failure(uri, str(exc))
                self._done(uri)
                continue
            future.add_done_callback(lambda fut, uri=uri: self._on_exchange_answer(uri, fut))

    def _done(self, uri: PeerUri) -> None:
        with self._lock:
            self._inflight.discard(str(uri))

    def _on_exchange_answer(self, uri: PeerUri, future: grpc.Future) -> None:
        try:
            answer = _load(bytes(future.result()))
            peers = {int(pid): PeerUri.parse(str(u)) for pid, u in dict(answer.get("peers") or {}).items()}
        except grpc.RpcError as exc:
            self._record_failure(uri, describe_rpc_error(exc))
        except (TypeError, ValueError, ClusterError) as exc:
            self._record_failure(uri, f"malformed answer: {exc}")
        except Exception as exc:  # cancelled at shutdown, or anything else: never kill grpc's callback thread
            self._record_failure(uri, type(exc).__name__)
        else:
            with self._lock:
                self._merge(peers)
        finally:
            self._done(uri)

    def _record_failure(self, uri: PeerUri, error: str) -> None:
        with self._lock:
            failure = self._failures.setdefault(str(uri), _SendFailure())
            failure.count += 1
            failure.latest_error = error
            failure.latest_error_timestamp = _now_iso()

    # -- reporting ----------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """``GET /cluster`` ``result`` in Qdrant's shape."""
        with self._lock:
            peers = {str(pid): {"uri": str(uri)} for pid, uri in self._peers.items()}
            failures = {uri: {"count": f.count, "latest_error": f.latest_error,
                              "latest_error_timestamp": f.latest_error_timestamp}
                        for uri, f in self._failures.items()}
            leader = self.leader
            last_update = self._last_update
        return {
            "status": "enabled",
            "peer_id": self.peer_id,
            "peers": peers,
            "raft_info": {
                "term": 1,
                "commit": len(peers),
                "pending_operations": 0,
                "leader": leader,
                "role": "Leader" if leader == self.peer_id else "Follower",
                "is_voter": True,
            },
            "consensus_thread_status": {"consensus_thread_status": "working", "last_update": last_update},
            "message_send_failures": failures,
        }


# -- process-wide access ------------------------------------------------------------------

_ACTIVE: ClusterNode | None = None
_ACTIVE_LOCK = threading.Lock()


def start(config: ClusterConfig, cancelled: Callable[[], bool] = lambda: False) -> ClusterNode:
    """Start this process's node (see :meth:`ClusterNode.start`); raises :class:`ClusterError`."""
    global _ACTIVE
    node = ClusterNode(config)
    node.start(cancelled)
    with _ACTIVE_LOCK:
        _ACTIVE = node
    return node


def stop(node: ClusterNode) -> None:
    global _ACTIVE
    with _ACTIVE_LOCK:
        if _ACTIVE is node:
            _ACTIVE = None
    node.stop()


def status() -> dict[str, Any]:
    """What ``GET /cluster`` reports: the node's state, or ``{"status": "disabled"}``."""
    with _ACTIVE_LOCK:
        node = _ACTIVE
    return node.status() if node is not None else {"status": "disabled"}

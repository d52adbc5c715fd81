"""Process wiring: settings → keys and TLS → listeners → serve until SIGTERM/SIGINT.

Start-up order keeps the time to "ready" short and failures clean:

1. load settings and validate every TLS file (nothing bound yet, nothing
   logged: a failure is exactly one ``Error: ...`` line on stderr, exit 1);
2. bind the REST socket (a failure here also exits 1, before gRPC starts
   and before any log line);
3. start gRPC, then serve REST with uvicorn on the bound socket;
4. only then import qdrant_client in the background (the data plane), so the
   ~1 s import does not compete with start-up for the GIL.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
import ssl
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

from . import cluster, tls, transport
from .auth import AuthKeys
from .fault_policy import NO_FAULTS, FaultPolicy, ReachLog
from .faults import UnknownFault
from .rest.protocol import ActixH11Protocol
from .settings import ConfigError, Settings, load_settings
from .versioning import Emulation

if TYPE_CHECKING:
    import grpc

    from .data_plane import DataPlane
    from .rest.app import RestApp

log = logging.getLogger("reference_server")

#: How long in-flight requests may take to finish after SIGTERM.
GRACEFUL_SHUTDOWN_S = 3


class StartupError(Exception):
    """The server cannot start; ``str()`` is the one-line reason."""


@dataclass
class Prepared:
    """Everything checked before a single port is bound."""

    settings: Settings
    keys: AuthKeys | None
    rest_tls: tls.RotatingServerContext | None
    grpc_tls: ssl.SSLContext | None  # terminated by a transport.Front, not by grpcio (spec §6 groups)
    p2p: cluster.ClusterConfig | None = None
    #: The faults switched on for this start (self-tests only), handed to every seam.
    faults: FaultPolicy = NO_FAULTS


def prepare(
    config_path: str | None,
    *,
    uri: str | None = None,
    bootstrap: str | None = None,
    faults: tuple[str, ...] = (),
) -> Prepared:
    """Settings, keys, TLS material and the fault policy, or :class:`StartupError`.

    ``faults`` are fault names from the command line (``--fault``), added to those of the config.
    """
    try:
        settings = load_settings(config_path, uri=uri, bootstrap=bootstrap, extra_faults=faults)
        Emulation.of(settings.version)
        policy = FaultPolicy.from_names(settings.faults, ReachLog.from_env())  # built once, passed to every seam
    except UnknownFault as exc:
        raise StartupError(str(exc)) from None
    except ConfigError as exc:
        raise StartupError(str(exc)) from None
    except ValueError as exc:
        raise StartupError(f"reference_server.version: {exc}") from None
    # p2p TLS is checked first, as Qdrant's channel service is set up before REST (spec §1.5).
    try:
        p2p = cluster.prepare(settings, policy)
    except cluster.ClusterError as exc:
        raise StartupError(str(exc)) from None
    rest_tls = None
    grpc_tls = None
    if settings.service.enable_tls:
        try:
            identity = tls.load_identity(settings, policy)
            rest_tls = tls.rest_context(settings, identity, policy)
            if settings.service.grpc_port is not None:
                grpc_tls = tls.grpc_context(settings, policy)
        except tls.TlsError as exc:
            if not policy.active("tls-missing-cert-plaintext"):  # fault seam: falls back to plaintext
                raise StartupError(str(exc)) from None
            rest_tls = grpc_tls = None
    keys = AuthKeys.from_settings(settings, policy)
    if settings.cluster.enabled and policy.active("cluster-node-open"):  # fault seam
        keys = None
    return Prepared(settings, keys, rest_tls, grpc_tls, p2p, policy)


def log_startup_notes(prepared: Prepared) -> None:
    """The warnings and notices Qdrant prints at start-up."""
    settings = prepared.settings
    for note in settings.warnings:
        # A missing --config-path is logged at error level and is not fatal (spec §1.2).
        level = logging.ERROR if note.startswith("Config file via --config-path") else logging.WARNING
        log.log(level, "%s", note)
    emulation = Emulation.of(settings.version)
    svc = settings.service
    if emulation.empty_key_is_unset:
        for name, value in (("api_key", svc.api_key), ("alt_api_key", svc.alt_api_key),
                            ("read_only_api_key", svc.read_only_api_key)):
            if value == "":
                log.warning("Service %s is set but empty, it is treated as unset and "
                            "authentication may be disabled", name)
    if prepared.keys is None:
        log.warning("No API key configured: every request gets full access")
    log.info("Emulating Qdrant v%s", settings.version)
    if prepared.rest_tls is not None:
        log.info("TLS enabled for REST API (TTL: %s)", tls.ttl_text(settings))
    if prepared.grpc_tls is not None:
        log.info("TLS enabled for gRPC API (TTL not supported)")
    if settings.faults:
        log.warning("Faults switched on: %s", ", ".join(settings.faults))


def bind_rest_socket(settings: Settings) -> socket.socket:
    host, port = settings.service.host, settings.service.http_port
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP,
        # and without it every keep-alive response waits ~40 ms for a delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    except OSError as exc:
        raise StartupError(f"Error while starting REST server: {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(1024)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise StartupError(f"Error while starting REST server: {host}:{port}: {exc.strerror or exc}") from None
    return sock


def bind_metrics_socket(settings: Settings, faults: FaultPolicy) -> socket.socket | None:
    """The ``service.metrics_port`` listener (v1.17.0+, no authentication, spec §1.1), or ``None`` when unset."""
    port = settings.service.metrics_port
    if port is None and faults.active("metrics-port-open-when-off"):  # fault seam: a free port, unasked
        port = 0
    if port is None:
        return None
    sock = bind_rest_socket(dataclasses.replace(settings, service=dataclasses.replace(settings.service,
                                                                                        http_port=port)))
    log.info("Qdrant metrics listening on %s", sock.getsockname()[1])
    return sock


@dataclass
class GrpcService:
    """The public gRPC server and, with TLS, the front that terminates it on the public port."""

    server: grpc.Server
    front: transport.Front | None = None

    def stop(self) -> None:
        self.server.stop(grace=1.0).wait(5.0)
        if self.front is not None:
            self.front.close()


def start_grpc(prepared: Prepared, data: DataPlane) -> GrpcService | None:
    """The public gRPC server, or ``None`` when off or when it fails (Qdrant keeps REST up).

    With TLS, grpcio serves plaintext on a loopback port and a :class:`transport.Front`
    terminates TLS on the public port: grpcio's BoringSSL cannot be limited to
    Qdrant's key-exchange groups, Python's ``ssl`` can (spec §6).
    """
    settings = prepared.settings
    svc = settings.service
    if svc.grpc_port is None:
        return None
    try:
        from .grpc_api.server import GrpcBindError, start_grpc_server, start_grpc_server_bound

        faults = prepared.faults
        if prepared.grpc_tls is None:
            service = GrpcService(start_grpc_server(settings, prepared.keys, data, None, faults=faults))
        else:
            try:
                public = transport.bind_listener(svc.host, svc.grpc_port)
            except OSError as exc:
                raise GrpcBindError(f"Error while starting gRPC server: {exc.strerror}") from None
            try:
                inner = dataclasses.replace(settings, service=dataclasses.replace(svc, host="127.0.0.1", grpc_port=0))
                server, port = start_grpc_server_bound(inner, prepared.keys, data, None, faults=faults)
            except BaseException:
                public.close()
                raise
            plaintext = (transport.Plaintext.RELAY if faults.active("grpc-plaintext-also")  # fault seam
                         else transport.Plaintext.REFUSE)
            front = transport.Front(public, ("127.0.0.1", port), name="grpc", tls=prepared.grpc_tls,
                                    require_alpn="h2", plaintext=plaintext)
            try:
                front.start()
            except BaseException:
                server.stop(None)
                public.close()
                raise
            service = GrpcService(server, front)
    except Exception as exc:
        # Qdrant logs this and keeps serving REST without gRPC (spec §1.5).
        log.error("Error while starting gRPC server: %s", exc)
        return None
    log.info("Qdrant gRPC listening on %s", svc.grpc_port)
    return service


class _Stopper:
    """SIGTERM/SIGINT → uvicorn's ``should_exit``; a second SIGINT forces it."""

    def __init__(self) -> None:
        self.requested = False
        self.server: uvicorn.Server | None = None

    def attach(self, server: uvicorn.Server) -> None:
        self.server = server
        server.should_exit = self.requested

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        log.info("Received %s, shutting down", signal.Signals(signum).name)
        if self.server is not None:
            if self.server.should_exit:
                self.server.force_exit = True
            self.server.should_exit = True
        self.requested = True


def _uvicorn_server(prepared: Prepared, app: RestApp) -> uvicorn.Server:
    context = prepared.rest_tls.context if prepared.rest_tls is not None else None

    def ssl_factory(config: uvicorn.Config, default: object) -> ssl.SSLContext:
        assert context is not None
        return context

    config = uvicorn.Config(
        app,
        http=ActixH11Protocol,
        loop="asyncio",
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        ssl_context_factory=ssl_factory if context is not None else None,
    )
    port = prepared.settings.service.http_port

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # run() owns SIGTERM/SIGINT; uvicorn would re-raise them after
            # shutdown and turn a clean stop into a signal death.
            yield

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            log.info("Qdrant HTTP listening on %s", port)

    return Server(config)


def run(prepared: Prepared, rest_socket: socket.socket) -> int:
    """Serve on the bound REST socket until SIGTERM or SIGINT; return the exit code."""
    from .data_plane import DataPlane
    from .rest.app import RestApp

    settings = prepared.settings
    stopper = _Stopper()
    previous = {sig: signal.signal(sig, stopper) for sig in (signal.SIGTERM, signal.SIGINT)}
    grpc_service: GrpcService | None = None
    rest_front: transport.Front | None = None
    node: cluster.ClusterNode | None = None
    try:
        # Loads on the first call that needs data: a server that only ever answers handshakes and
        # refusals (a bad-certificate variant, a peer that cannot join) never pays for the import,
        # which costs about half a CPU-second in a fresh interpreter (a container).
        data = DataPlane()
        if prepared.p2p is not None:
            try:  # joins through --bootstrap before REST serves, so "ready" means "joined"
                node = cluster.start(prepared.p2p, cancelled=lambda: stopper.requested)
            except cluster.ClusterError as exc:
                print(f"Error: {exc}", file=sys.stderr, flush=True)
                return 0 if stopper.requested else 1
        grpc_service = start_grpc(prepared, data)
        app = RestApp(settings, prepared.keys, data, prepared.faults,
                      cluster_status=node.status if node is not None else None)
        server = _uvicorn_server(prepared, app)
        stopper.attach(server)
        if prepared.rest_tls is not None and prepared.faults.active("tls-plaintext-also"):  # fault seam
            rest_socket, rest_front = transport.plaintext_also(rest_socket)
        sockets = [rest_socket]
        try:
            metrics_socket = bind_metrics_socket(settings, prepared.faults)
        except StartupError as exc:
            log.error("Error while starting metrics server: %s", exc)  # Qdrant keeps the API up
            metrics_socket = None
        if metrics_socket is not None:
            app.metrics_ports = frozenset({int(metrics_socket.getsockname()[1])})
            sockets.append(metrics_socket)
        asyncio.run(server.serve(sockets=sockets))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if grpc_service is not None:
            grpc_service.stop()
        if rest_front is not None:
            rest_front.close()
        if node is not None:
            node.stop()
        rest_socket.close()
    log.info("Stopped")
    return 0

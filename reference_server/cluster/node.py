"""One peer: the p2p server, the join, the heartbeat loop and the peer table (spec §8).

The membership is ours, not Raft: see the package docstring for the join and
exchange protocol. :meth:`ClusterNode.status` is what ``GET /cluster`` reports.
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc

from .channels import PeerChannels, server_credentials
from .config import CALL_TIMEOUT_S, FAULTS, ClusterConfig, ClusterError, PeerError, PeerUri
from .service import (
    GRPC_HEALTH_SERVING,
    M_CONSENSUS_COMMIT,
    M_EXCHANGE,
    M_GRPC_HEALTH,
    M_JOIN,
    M_PING,
    M_QDRANT_HEALTH,
    Handlers,
    InternalAuth,
    describe_rpc_error,
    dump,
    health_check_reply,
    load,
    peer_address,
    varint,
)

log = logging.getLogger("reference_server.cluster")

SERVER_WORKERS = 8
_SERVER_OPTIONS: list[tuple[str, Any]] = [("grpc.so_reuseport", 0)]


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


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
        interceptors = [InternalAuth(config.keys, config.faults)] if config.keys is not None else []
        table: dict[str, Callable[[bytes, grpc.ServicerContext], bytes]] = {
            M_QDRANT_HEALTH: lambda req, ctx: health_check_reply(config.version),
            M_GRPC_HEALTH: lambda req, ctx: GRPC_HEALTH_SERVING,
            M_CONSENSUS_COMMIT: self._on_consensus_commit,
            M_PING: self._on_ping,
            M_JOIN: self._on_join,
            M_EXCHANGE: self._on_exchange,
        }
        server = grpc.server(self._executor, handlers=[Handlers(table)], interceptors=interceptors,
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
        p2p_faults = config.faults.any_of(FAULTS)
        if p2p_faults:
            log.warning("p2p faults switched on: %s", ", ".join(sorted(p2p_faults)))

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
        return varint(1 << 3) + varint(commit) + varint(2 << 3) + varint(1)

    def _on_ping(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        return dump({"peer_id": self.peer_id})

    def _on_join(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            message = load(request)
            peer_id = int(message["peer_id"])
            if message.get("uri"):
                uri = PeerUri.parse(str(message["uri"]))
            else:
                # Qdrant builds the URI of a peer that joins without --uri from its address (spec §8).
                host = peer_address(context.peer())
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
        return dump({"uri": str(uri), "peers": self._table(), "leader": self.leader, "peer_id": self.peer_id})

    def _on_exchange(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            message = load(request)
            sender = int(message["peer_id"])
            peers = {int(pid): PeerUri.parse(str(uri)) for pid, uri in dict(message.get("peers") or {}).items()}
        except (KeyError, TypeError, ValueError, ClusterError) as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad exchange request: {exc}")
            raise AssertionError("unreachable") from None
        with self._lock:
            if sender not in self._peers:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"peer {sender} is not a member: join first")
            self._merge(peers)
        return dump({"peer_id": self.peer_id, "peers": self._table()})

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
            answer = load(bytes(future.result()))
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



def start(config: ClusterConfig, cancelled: Callable[[], bool] = lambda: False) -> ClusterNode:
    """Start this process's node (see :meth:`ClusterNode.start`); raises :class:`ClusterError`."""
    node = ClusterNode(config)
    node.start(cancelled)
    return node

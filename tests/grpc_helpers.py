"""Self-test helpers for the reference server's gRPC side: in-process servers and raw calls.

Usage::

    with grpc_server({"QDRANT__SERVICE__API_KEY": KEY}) as srv:
        result = call(srv.channel(), "/qdrant.Collections/List", metadata=[("api-key", KEY)])
        assert result.code == "OK"

Servers bind 127.0.0.1 on a free port and are always stopped; channels made
through :meth:`InProcessGrpc.channel` are closed with them.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from qdrant_conformance.reference_server.auth import AuthKeys
from qdrant_conformance.reference_server.data_plane import DataPlane
from qdrant_conformance.reference_server.grpc_api.policy import GrpcPolicy
from qdrant_conformance.reference_server.grpc_api.server import start_grpc_server
from qdrant_conformance.reference_server.settings import Settings, load_settings
from tests.server_helpers import free_port

CALL_TIMEOUT_S = 30.0  # generous: a subprocess server may still be importing qdrant_client
EMPTY_DIR = Path("/nonexistent-reference-server-config-dir")


@dataclass
class RpcResult:
    """One call's outcome: status name, details, raw response and both metadata sets."""

    code: str
    details: str
    response: bytes | None
    initial_metadata: list[tuple[str, Any]] = field(default_factory=list)
    trailing_metadata: list[tuple[str, Any]] = field(default_factory=list)

    def text(self) -> str:
        """Everything the server sent back, as one string (for "never echoes the key" checks)."""
        parts = [self.details, repr(self.response)]
        parts += [f"{k}={v!r}" for k, v in self.initial_metadata + self.trailing_metadata]
        return "\n".join(parts)


def _metadata(md: Any) -> list[tuple[str, Any]]:
    return [(m.key, m.value) for m in (md or ())]


def call(
    channel: grpc.Channel,
    path: str,
    request: bytes = b"",
    *,
    metadata: Sequence[tuple[str, str]] = (),
    timeout: float = CALL_TIMEOUT_S,
) -> RpcResult:
    """A unary call with raw bytes; never raises for a gRPC status."""
    stub = channel.unary_unary(path)
    try:
        response, rpc_call = stub.with_call(request, metadata=list(metadata), timeout=timeout)
    except grpc.RpcError as exc:
        return RpcResult(
            code=exc.code().name,
            details=exc.details() or "",
            response=None,
            initial_metadata=_metadata(exc.initial_metadata()),
            trailing_metadata=_metadata(exc.trailing_metadata()),
        )
    return RpcResult(
        code="OK",
        details=rpc_call.details() or "",
        response=response,
        initial_metadata=_metadata(rpc_call.initial_metadata()),
        trailing_metadata=_metadata(rpc_call.trailing_metadata()),
    )


def call_stream(
    channel: grpc.Channel,
    path: str,
    request: bytes = b"",
    *,
    metadata: Sequence[tuple[str, str]] = (),
    timeout: float = CALL_TIMEOUT_S,
) -> RpcResult:
    """A server-streaming call; ``response`` is the concatenation of the messages received."""
    responses = channel.unary_stream(path)(request, metadata=list(metadata), timeout=timeout)
    try:
        received = b"".join(responses)
    except grpc.RpcError as exc:
        return RpcResult(exc.code().name, exc.details() or "", None,
                         _metadata(exc.initial_metadata()),
                         _metadata(exc.trailing_metadata()))
    return RpcResult("OK", "", received, _metadata(responses.initial_metadata()),
                     _metadata(responses.trailing_metadata()))


def settings_for(env: Mapping[str, str], *, port: int | None = None) -> Settings:
    """Settings from ``QDRANT__*`` variables only (no config files), gRPC on 127.0.0.1."""
    environ = {
        "QDRANT__SERVICE__HOST": "127.0.0.1",
        "QDRANT__SERVICE__GRPC_PORT": str(port if port is not None else free_port()),
        **env,
    }
    return load_settings(environ=environ, cwd=EMPTY_DIR)


@dataclass
class InProcessGrpc:
    settings: Settings
    server: grpc.Server
    data: DataPlane
    tls_root: bytes | None = None
    _channels: list[grpc.Channel] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.settings.service.grpc_port}"

    @property
    def port(self) -> int:
        port = self.settings.service.grpc_port
        assert port is not None
        return port

    def channel(self) -> grpc.Channel:
        """A plaintext channel (whatever the server speaks)."""
        channel = grpc.insecure_channel(self.target)
        self._channels.append(channel)
        return channel

    def secure_channel(self, root_certificates: bytes | None = None) -> grpc.Channel:
        creds = grpc.ssl_channel_credentials(root_certificates=root_certificates or self.tls_root)
        channel = grpc.secure_channel(self.target, creds)
        self._channels.append(channel)
        return channel

    def close(self) -> None:
        for channel in self._channels:
            channel.close()
        self.server.stop(None).wait(10)


@contextmanager
def grpc_server(
    env: Mapping[str, str] | None = None,
    *,
    credentials: grpc.ServerCredentials | None = None,
    tls_root: bytes | None = None,
    data: DataPlane | None = None,
    policy: GrpcPolicy | None = None,
    attempts: int = 3,
) -> Iterator[InProcessGrpc]:
    """Start :func:`start_grpc_server` on a free port; always stopped on exit.

    A free port can be taken between choosing and binding it, so binding is
    retried on a fresh port a few times.
    """
    plane = data if data is not None else DataPlane.lazy()
    # Snapshots are real files: each server keeps them in a scratch dir, never the checkout.
    scratch = tempfile.mkdtemp(prefix="grpc-snapshots-")
    try:
        yield from _start(env, credentials, tls_root, plane, policy, attempts, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _start(env: Mapping[str, str] | None, credentials: grpc.ServerCredentials | None, tls_root: bytes | None,
           plane: DataPlane, policy: GrpcPolicy | None, attempts: int, scratch: str) -> Iterator[InProcessGrpc]:
    last: Exception | None = None
    for _ in range(attempts):
        settings = settings_for({"QDRANT__STORAGE__SNAPSHOTS_PATH": scratch, **(env or {})})
        try:
            server = start_grpc_server(settings, AuthKeys.from_settings(settings), plane, credentials,
                                       policy=policy)
        except RuntimeError as exc:
            last = exc
            continue
        running = InProcessGrpc(settings=settings, server=server, data=plane, tls_root=tls_root)
        try:
            yield running
        finally:
            running.close()
        return
    raise AssertionError(f"could not start the gRPC server: {last}")

"""The public gRPC port: one generic handler that authenticates every path, then routes.

Order per call, as Qdrant's tonic stack does it (spec §3, §4):

1. authentication (whitelisted health paths skip it), for every path, known or not;
2. unknown path (or a service the emulated version lacks) → UNIMPLEMENTED;
3. decoding the request (a bad message → INTERNAL, as tonic reports it), then
   Qdrant's first handler step, request validation (→ INVALID_ARGUMENT);
4. per-method access (read-only principal on a write → PERMISSION_DENIED);
5. the implementation (Health/Watch answers UNIMPLEMENTED, as Qdrant does).

Nothing here imports qdrant_client: the stub-based implementations load on the
first call that needs them, after the data plane finished its background import.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn

import grpc
from google.protobuf.message import DecodeError, Message

from ..audit import AuditLog, Principal, tracing_id
from ..auth import ANONYMOUS, AuthFailure, AuthKeys, Grant
from ..data_plane import DataPlane, DataPlaneError
from ..fault_policy import NO_FAULTS, FaultPolicy, handling_request
from ..jwt_auth import CollectionScope, data_plane_lookup
from ..rbac import filter_grpc, message_collection
from ..settings import Settings
from ..versioning import Emulation
from . import access, messages, reflection
from .call import Call, Handler
from .errors import (
    GrpcError,
    from_data_plane,
    not_implemented,
    status_code,
    unknown_method,
)
from .health_api import EARLY_HANDLERS
from .policy import GrpcPolicy
from .raw_services import RAW_HANDLERS

log = logging.getLogger("reference_server.grpc")

DEFAULT_WORKERS = 16
# Qdrant sets no message-size limit on the public services (spec §3, §10).
SERVER_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
    # grpc's default SO_REUSEPORT would let a second server share a busy port
    # silently; a bind conflict must fail loudly instead.
    ("grpc.so_reuseport", 0),
]


class GrpcBindError(RuntimeError):
    """The gRPC port could not be bound; the message names the address."""


@functools.cache
def _stub_handlers() -> dict[str, Handler]:
    """Implementations built on qdrant_client's stubs (imported on first use)."""
    from . import collections_api, health_api, points_api, points_extra_api, snapshots_api

    table: dict[str, Handler] = {}
    for module in (collections_api, points_api, points_extra_api, snapshots_api, health_api):
        table.update(module.HANDLERS)
    return table


def _needs_backend(path: str) -> bool:
    parts = access.split_path(path)
    return parts is not None and parts[0].startswith("qdrant.")


def _stamp_time(response: Any, started: float) -> None:
    if isinstance(response, Message) and "time" in response.DESCRIPTOR.fields_by_name:
        response.time = time.monotonic() - started


MAX_COLLECTION_NAME = 255


def validate_request(request: Any) -> None:
    """The part of Qdrant's request validation that runs before RBAC and matters here.

    Qdrant validates every public request before checking access, so a
    read-only key sending a malformed write gets INVALID_ARGUMENT, not
    PERMISSION_DENIED (spec §11.9). Only the collection name is checked; the
    wording follows Qdrant's "Validation error in body" prefix.
    """
    fields = request.DESCRIPTOR.fields_by_name
    if "collection_name" not in fields:
        return
    name = request.collection_name
    if not 1 <= len(name) <= MAX_COLLECTION_NAME:
        raise GrpcError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"Validation error in body: [collection_name: length must be between 1 and {MAX_COLLECTION_NAME}]",
        )


def _input_error(exc: Exception) -> GrpcError:
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic: name the first offending field, not the whole input
        first = errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "request"
        text = f"Validation error: {where}: {first.get('msg', 'invalid value')}"
    else:
        text = f"Wrong input: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    return GrpcError(grpc.StatusCode.INVALID_ARGUMENT, text)


class QdrantGrpcHandler(grpc.GenericRpcHandler):
    """Routes every method path; never returns ``None`` (that would skip authentication)."""

    def __init__(self, settings: Settings, policy: GrpcPolicy, data: DataPlane) -> None:
        self._settings = settings
        self._policy = policy
        self._data = data
        self._lookup = data_plane_lookup(data)
        self._audit = AuditLog.from_settings(settings)

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        path = str(handler_call_details.method)
        shape = access.shape_of(path) if access.required_access(path) is not None else None
        if shape is access.Shape.UNARY:
            return grpc.unary_unary_rpc_method_handler(functools.partial(self._unary, path))
        if shape is access.Shape.SERVER_STREAM:
            return grpc.unary_stream_rpc_method_handler(functools.partial(self._unary_stream, path))
        # Unknown paths and bidi streams: answered without reading any request.
        return grpc.stream_stream_rpc_method_handler(functools.partial(self._stream_stream, path))

    # -- behaviours (raw bytes in and out: no serializers are registered) -------

    def _unary(self, path: str, raw: bytes, context: grpc.ServicerContext) -> bytes:
        return self._answer(path, raw, context)

    def _unary_stream(self, path: str, raw: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        yield self._answer(path, raw, context)

    def _stream_stream(self, path: str, requests: Iterator[bytes], context: grpc.ServicerContext
                       ) -> Iterator[bytes]:
        if path not in reflection.PATHS:
            yield self._answer(path, b"", context)
            return
        # Reflection: authenticated once per stream, then one answer per request (spec §3).
        self._guarded(path, context, lambda: self._admit(path, context))
        emulation = self._policy.emulation
        for raw in requests:
            yield self._guarded(path, context, functools.partial(self._reflect, raw, emulation))

    def _admit(self, path: str, context: grpc.ServicerContext) -> bytes:
        granted, _ = self._policy.identify(path, context.invocation_metadata(), lookup=self._lookup)
        if not self._policy.is_served(path):
            raise unknown_method(path)
        self._policy.authorize(path, granted)
        return b""

    def _reflect(self, raw: bytes, emulation: Emulation) -> bytes:
        try:
            return reflection.answer(raw, emulation, self._data, self._policy.faults)
        except DecodeError as exc:
            raise GrpcError(grpc.StatusCode.INTERNAL, f"failed to decode Protobuf message: {exc}") from None

    def _answer(self, path: str, raw: bytes, context: grpc.ServicerContext) -> bytes:
        return self._guarded(path, context, lambda: self._process(path, raw, context))

    def _guarded(self, path: str, context: grpc.ServicerContext, work: Callable[[], bytes]) -> bytes:
        """``work()``, with every refusal turned into the status Qdrant sends."""
        with handling_request():  # the fault seams asked in here belong to this call (fault reach)
            try:
                return work()
            except AuthFailure as failure:
                if self._policy.faults.active("key-echo-grpc"):  # fault seam: the refusal repeats what was presented
                    presented = [(k, v) for k, v in context.invocation_metadata() if k in ("api-key", "authorization")]
                    context.set_trailing_metadata([("x-rejected-credential", str(v)) for _, v in presented[:1]])
                self._abort(context, status_code(failure.grpc_code), failure.message)
            except GrpcError as exc:
                self._abort(context, exc.code, exc.message)
            except DataPlaneError as exc:
                mapped = from_data_plane(exc)
                self._abort(context, mapped.code, mapped.message)
            except Exception as exc:
                # The request may hold secrets: log the type, not the text.
                log.error("gRPC %s failed: %s", path, type(exc).__name__)
                self._abort(context, grpc.StatusCode.INTERNAL, "Internal error")

    @staticmethod
    def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
        context.abort(code, message)
        raise AssertionError("unreachable: abort raises")

    # -- the pipeline -------------------------------------------------------------

    def _process(self, path: str, raw: bytes, context: grpc.ServicerContext) -> bytes:
        started = time.monotonic()
        try:
            granted, principal = self._policy.identify(path, context.invocation_metadata(), lookup=self._lookup)
        except AuthFailure as failure:
            if self._audit is not None and self._audit.logs_denied_logins:
                kind = "Unauthorized" if failure.status == 401 else "Forbidden"
                self._record(path, context, None, ANONYMOUS, None, f"{kind}: {failure.message}")
            raise
        if path == reflection.EXTRA_METHOD and self._policy.faults.active("grpc-extra-method"):  # fault seam
            return b""
        if not self._policy.is_served(path):
            raise unknown_method(path)
        call = Call(path=path, data=self._data, settings=self._settings, raw=raw, faults=self._policy.faults)
        checked = _Checked(self, path, granted, principal, context)
        response = self._dispatch(path, raw, call, granted, checked)
        _stamp_time(response, started)
        if isinstance(response, Message):
            return response.SerializeToString()
        assert isinstance(response, bytes)
        return response

    def _record(self, path: str, context: grpc.ServicerContext, method: str | None, principal: Principal,
                collection: str | None, failure: str | None) -> None:
        """One audit line (spec §10); never given the credential itself."""
        assert self._audit is not None
        metadata = {k: v for k, v in reversed(list(context.invocation_metadata())) if isinstance(v, str)}
        if failure is not None and self._policy.faults.active("audit-log-token"):  # fault seam: credential in the log
            failure = f"{failure} (credential {metadata.get('authorization') or metadata.get('api-key')})"
        remote = _peer_address(context.peer())
        if self._audit.config.trust_forwarded_headers and "x-forwarded-for" in metadata:
            remote = metadata["x-forwarded-for"]
        self._audit.record(method=method, api=path, principal=principal, remote=remote, collection=collection,
                           tracing=tracing_id(metadata), error=failure)

    def _dispatch(self, path: str, raw: bytes, call: Call, granted: Grant, checked: _Checked) -> Any:
        early = EARLY_HANDLERS.get(path)
        if early is not None:
            handler, request_type = early
            request = self._decode(request_type, raw)
            checked.authorize()
            return handler(request, call)
        raw_handler = RAW_HANDLERS.get(path)
        if raw_handler is not None:
            checked.authorize(raw=raw)
            self._data.wait_ready()
            return self._guard_input(raw_handler, raw, call)
        if _needs_backend(path):
            self._data.wait_ready()
        if not messages.has_messages(path):
            # Known to the table but not implemented by Qdrant either (Health/Watch, spec §3).
            checked.authorize(raw=raw)
            raise not_implemented(path)
        request = self._decode(messages.request_class(path), raw)
        validate_request(request)
        checked.authorize(request)
        stub_handler = _stub_handlers().get(path)
        if stub_handler is None:
            raise not_implemented(path)
        response = self._guard_input(stub_handler, request, call)
        if isinstance(granted, CollectionScope):
            response = filter_grpc(path, granted, response)
        return response

    @staticmethod
    def _decode(request_type: Any, raw: bytes) -> Any:
        try:
            return request_type.FromString(raw)
        except DecodeError as exc:
            raise GrpcError(grpc.StatusCode.INTERNAL, f"failed to decode Protobuf message: {exc}") from None

    @staticmethod
    def _guard_input(handler: Handler, request: Any, call: Call) -> Any:
        try:
            return handler(request, call)
        except (GrpcError, DataPlaneError, AuthFailure):
            raise
        except (ValueError, TypeError, KeyError) as exc:
            # Conversions reject messages the REST models cannot hold.
            raise _input_error(exc) from None


class _Checked:
    """The method's access check, written to the audit log when it is on (spec §10)."""

    def __init__(self, handler: QdrantGrpcHandler, path: str, granted: Grant, principal: Principal | None,
                 context: grpc.ServicerContext) -> None:
        self.handler, self.path, self.granted, self.principal, self.context = handler, path, granted, principal, context

    def authorize(self, request: Any = None, raw: bytes = b"") -> None:
        policy = self.handler._policy
        audited = self.handler._audit is not None and self.principal is not None and not self.path.startswith(
            UNAUDITED_PREFIXES)
        if not audited:
            policy.authorize(self.path, self.granted, request, raw)
            return
        assert self.principal is not None
        collection = message_collection(request) if request is not None else None
        method = _snake(self.path.rsplit("/", 1)[-1])
        try:
            policy.authorize(self.path, self.granted, request, raw)
        except AuthFailure as failure:
            self.handler._record(self.path, self.context, method, self.principal, collection, failure.message)
            raise
        self.handler._record(self.path, self.context, method, self.principal, collection, None)


#: Health and reflection: authentication only, no access check to audit (spec §3, §10).
UNAUDITED_PREFIXES = ("/grpc.", "/qdrant.Qdrant/")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _peer_address(peer: str | None) -> str | None:
    """``ipv4:127.0.0.1:5000`` / ``ipv6:[::1]:5000`` → the address alone."""
    if not peer or ":" not in peer:
        return None
    rest = peer.split(":", 1)[1]
    if rest.startswith("["):
        return rest[1:rest.find("]")]
    return rest.rsplit(":", 1)[0]


def _bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def start_grpc_server(
    settings: Settings,
    keys: AuthKeys | None,
    data: DataPlane,
    credentials: grpc.ServerCredentials | None,
    *,
    policy: GrpcPolicy | None = None,
    faults: FaultPolicy = NO_FAULTS,
    max_workers: int = DEFAULT_WORKERS,
) -> grpc.Server:
    """Bind ``service.host:service.grpc_port`` and start serving; raise :class:`GrpcBindError`.

    ``credentials`` switch the port to TLS (no client-certificate check, spec §6).
    ``policy`` replaces the authentication/access decisions (a self-test's variant);
    without one, the version's policy with the server's fault switches ``faults``.
    The caller stops the server (``server.stop(grace)``).
    """
    return start_grpc_server_bound(settings, keys, data, credentials, policy=policy, faults=faults,
                                   max_workers=max_workers)[0]


def start_grpc_server_bound(
    settings: Settings,
    keys: AuthKeys | None,
    data: DataPlane,
    credentials: grpc.ServerCredentials | None,
    *,
    policy: GrpcPolicy | None = None,
    faults: FaultPolicy = NO_FAULTS,
    max_workers: int = DEFAULT_WORKERS,
) -> tuple[grpc.Server, int]:
    """:func:`start_grpc_server`, and the port it bound (``grpc_port: 0`` picks a free one)."""
    port = settings.service.grpc_port
    if port is None:
        raise GrpcBindError("gRPC is disabled: service.grpc_port is not set")
    chosen = policy if policy is not None else GrpcPolicy.from_settings(settings, keys, faults)
    executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc-worker")
    server = grpc.server(
        executor,
        handlers=[QdrantGrpcHandler(settings, chosen, data)],
        options=SERVER_OPTIONS,
    )
    address = _bind_address(settings.service.host, port)
    try:
        bound = (server.add_secure_port(address, credentials) if credentials is not None
                 else server.add_insecure_port(address))
    except RuntimeError as exc:
        bound = 0
        reason = str(exc)
    else:
        reason = "address in use or not available"
    if bound == 0:
        server.stop(None)
        executor.shutdown(wait=False)
        raise GrpcBindError(f"Error while starting gRPC server: cannot bind {address}: {reason}")
    server.start()
    _shutdown_executor_on_stop(server, executor)
    return server, bound


def _shutdown_executor_on_stop(server: grpc.Server, executor: ThreadPoolExecutor) -> None:
    """Release the worker threads once the server has stopped (tests start many servers)."""

    def wait_and_release() -> None:
        server.wait_for_termination()
        executor.shutdown(wait=False)

    threading.Thread(target=wait_and_release, name="grpc-executor-reaper", daemon=True).start()

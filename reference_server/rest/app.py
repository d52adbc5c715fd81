"""The REST API as an ASGI app, layered in Qdrant's order (spec §2.6).

CORS → NormalizePath → Auth → routing → body → access check → handler.

Written by hand rather than on a framework so that this order, the bare
refusal bodies (no Content-Type) and actix's routing quirks are exactly
Qdrant's. Access log lines carry method, normalised path (no query string)
and status, never headers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import posixpath
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from .. import rbac
from ..audit import AuditLog, Principal, tracing_id
from ..auth import ANONYMOUS, Access, AuthKeys, Grant
from ..data_plane import DataPlane, DataPlaneError
from ..fault_policy import FaultPolicy, handling_request
from ..jwt_auth import CollectionScope, data_plane_lookup
from ..settings import Settings
from ..versioning import Emulation
from . import cors
from .gate import Gate, NeedsLookup, first_header, visible_ascii
from .handlers import handler_for, pre_access, validate_body
from .paths import decode_for_routing, normalize
from .registry import Call, Context, data_error
from .responses import Response, empty, error, plain
from .router import Match, Router
from .routes import ROUTES, Route
from .web_ui import WebUi, claims

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("reference_server.rest")

#: Scrapes Qdrant does not audit (spec §10, §5.5 test_audit_telemetry.py).
UNAUDITED_HANDLERS = frozenset({"telemetry", "metrics", "cluster_telemetry"})
#: Qdrant's operation names where the handler's differs (spec §5.5: ``get_logger_config``).
AUDIT_METHOD_NAMES = {"get_logger": "get_logger_config", "audit_logs": "get_audit_logs"}

#: actix's default limit for handlers on plain ``web::Json`` (spec §10).
SMALL_JSON_LIMIT = 2 * 1024 * 1024


class ClientGone(Exception):
    """The client disconnected before its body arrived."""


@dataclass
class Request:
    method: str
    raw_path: str
    headers: list[tuple[bytes, bytes]]
    receive: Receive
    started: float
    path: str = ""
    route_path: str = ""
    client: str | None = None
    principal: Principal | None = None

    @classmethod
    def from_scope(cls, scope: Scope, receive: Receive) -> Request:
        raw = scope.get("raw_path")
        raw_path = raw.decode("latin-1").split("?", 1)[0] if raw else scope.get("path", "/")
        client = scope.get("client")
        return cls(
            method=scope["method"],
            raw_path=raw_path,
            headers=[(k.lower(), v) for k, v in scope.get("headers", [])],
            receive=receive,
            started=time.perf_counter(),
            client=str(client[0]) if client else None,
        )

    def header(self, name: bytes) -> bytes | None:
        return first_header(self.headers, name)

    async def read_body(self, limit: int) -> bytes | None:
        """The whole body, or ``None`` once it exceeds ``limit`` bytes."""
        declared = self.header(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return None
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


class RestApp:
    """Qdrant's REST API over the reference server's data plane."""

    def __init__(self, settings: Settings, keys: AuthKeys | None, data: DataPlane, faults: FaultPolicy, *,
                 cluster_status: Callable[[], dict[str, Any]] | None = None) -> None:
        self.settings = settings
        self.faults = faults  # fault switches (self-tests only), asked at the seams below
        self.emulation = Emulation.of(settings.version)
        self.router = Router(ROUTES, self.emulation)
        self.web_ui = WebUi.from_settings(settings, self.emulation, faults=faults)
        self.gate = Gate(keys, self.emulation, self.router, data_plane_lookup(data), web_ui=self.web_ui is not None,
                         faults=faults)
        self.context = Context(settings=settings, data=data, faults=faults)
        if cluster_status is not None:
            self.context.cluster_status = cluster_status
        self.cors_enabled = settings.service.enable_cors or faults.active("cors-ignores-disable")  # fault seam
        #: Local ports of the metrics listener (``service.metrics_port``): ``/metrics`` only, no auth.
        self.metrics_ports: frozenset[int] = frozenset()
        self.json_limit = settings.service.max_request_size_mb * 1024 * 1024
        self.audit = AuditLog.from_settings(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        with handling_request():  # the fault seams asked from here on belong to this request (fault reach)
            await self._handle(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request.from_scope(scope, receive)
        from_query = [(b"api-key", v.encode("latin-1")) for k, v in
                      parse_qsl(scope.get("query_string", b"").decode("latin-1")) if k == "api-key"][:1]
        if from_query and self.faults.active("key-in-query"):  # fault seam: ?api-key=... read as the header
            request.headers += from_query
        server = scope.get("server")
        try:
            if self.metrics_ports and server is not None and server[1] in self.metrics_ports:
                response = await self.metrics_only(request)
            else:
                response = await self.with_cors(request)
        except ClientGone:
            return
        except Exception:
            log.exception("Error while serving %s %s", request.method, request.path or "?")
            response = error(500, "Service internal error", request.started)
        await _send(send, response)
        log.info("%s %s %d %.4f", request.method, request.path, response.status,
                 time.perf_counter() - request.started)
        if self.faults.active("key-logged"):  # fault seam: the access log shows the credential presented
            presented = request.header(b"api-key") or request.header(b"authorization")
            log.info("credential for %s: %r", request.path, presented)

    async def metrics_only(self, request: Request) -> Response:
        """The metrics listener (v1.17.0+): ``/metrics`` without authentication, nothing else (spec §1.1)."""
        request.path = normalize(request.raw_path)
        if request.method not in ("GET", "HEAD") or request.path != "/metrics":
            return empty(404)
        match = self.router.resolve("GET", "/metrics")
        if match is None:
            return empty(404)
        return await self.run_handler(match.route, match, None, request.started)

    # -- layers, outermost first --------------------------------------------------------

    async def with_cors(self, request: Request) -> Response:
        origin = request.header(b"origin") if self.cors_enabled else None
        if origin is None:
            return await self.with_normalized_path(request)
        wanted = request.header(b"access-control-request-method")
        if cors.is_preflight(request.method, origin, wanted) and not self.faults.active("cors-preflight-requires-key"):
            assert wanted is not None
            answer = cors.preflight(origin, wanted, request.header(b"access-control-request-headers"))
            if self.faults.active("cors-preflight-runs-handler"):  # fault seam
                answer.body = await self.preflight_runs_handler(request, wanted)
            return answer
        return cors.decorate(await self.with_normalized_path(request), origin)

    async def preflight_runs_handler(self, request: Request, wanted: bytes) -> bytes:
        """``cors-preflight-runs-handler``: the preflight runs the method it asks about, unauthenticated."""
        request.method = wanted.decode("latin-1").upper()
        request.path = normalize(request.raw_path)
        request.route_path = decode_for_routing(request.path)
        return (await self.route(request, Access.MANAGE)).body

    async def with_normalized_path(self, request: Request) -> Response:
        request.path = normalize(request.raw_path)
        request.route_path = decode_for_routing(request.path)
        resolved = posixpath.normpath(request.route_path)
        if resolved != request.route_path and self.faults.active("dot-segment-bypass"):  # fault seam: routing
            request.route_path = resolved  # resolves ".." the auth check did not see
        return await self.with_auth(request)

    async def with_auth(self, request: Request) -> Response:
        try:
            admitted = self.gate.admission(request.method, request.path, request.route_path, request.headers,
                                           defer_lookup=True)
        except NeedsLookup:  # a value_exists claim reads the data plane: off the event loop
            admitted = await asyncio.to_thread(self.gate.admission, request.method, request.path,
                                               request.route_path, request.headers)
        if admitted.refusal is not None:
            if admitted.failure is not None and self.audit is not None and self.audit.logs_denied_logins:
                kind = "Unauthorized" if admitted.failure.status == 401 else "Forbidden"
                self._audit(request, None, ANONYMOUS, None, f"{kind}: {admitted.failure.message}")
            return admitted.refusal
        request.principal = admitted.principal
        return await self.route(request, admitted.grant)

    def _audit(self, request: Request, method: str | None, principal: Principal, collection: str | None,
               failure: str | None) -> None:
        """One audit line for an access check (spec §10); never given the credential itself."""
        assert self.audit is not None
        if failure is not None and self.faults.active("audit-log-token"):  # fault seam: the credential in the log
            presented = visible_ascii(request.header(b"authorization")) or visible_ascii(request.header(b"api-key"))
            failure = f"{failure} (credential {presented})"
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in reversed(request.headers)}
        remote = request.client
        if self.audit.config.trust_forwarded_headers and "x-forwarded-for" in headers:
            remote = headers["x-forwarded-for"]
        self.audit.record(method=method, api=request.path, principal=principal, remote=remote,
                          collection=collection, tracing=tracing_id(headers), error=failure)

    def _checked(self, request: Request, access: Grant, route: Route, match: Match, body: Any = None
                 ) -> Response | None:
        """The access check, written to the audit log when it is on."""
        message = self.gate.check(access, route, match.params, body)
        if self.audit is not None and request.principal is not None and route.access != "none" and (
                route.handler not in UNAUDITED_HANDLERS):
            self._audit(request, AUDIT_METHOD_NAMES.get(route.handler, route.handler), request.principal,
                        match.params.get("collection_name"), message)
        if message is None:
            return None
        return plain(403, message) if route.refusal == "text" else error(403, message, request.started)

    async def route(self, request: Request, access: Grant) -> Response:
        if self.web_ui is not None and claims(request.route_path):
            fallthrough = self.web_ui.api_fallthrough(request.route_path)  # fault seam
            if fallthrough is None:
                return self.web_ui.serve(request.method, request.route_path)
            request.route_path = fallthrough
        match = self.router.resolve(request.method, request.route_path)
        if match is None:
            return empty(404)
        route = match.route
        if route.body == "upload":
            early: bytes | None = None
            if self.faults.active("snapshot-upload-read-before-auth"):  # fault seam: body on disk before the check
                early = await request.read_body(sys.maxsize) or b""
                _spill_upload(self.settings.snapshots_path, early)
            # Authorised before a byte of the upload is read (spec §4, v1.18.1+).
            refusal = self._checked(request, access, route, match)
            if refusal is not None:
                return refusal
            # Multipart snapshot uploads have no size limit in Qdrant (spec §10).
            raw = early if early is not None else await request.read_body(sys.maxsize)
            return await self.run_handler(route, match, None, request.started, raw=raw or b"",
                                          content_type=visible_ascii(request.header(b"content-type")))
        body: Any = None
        if route.body in ("json", "json_small"):
            parsed = await self.parse_body(request, route)
            if isinstance(parsed, Response):
                return parsed
            body = parsed
        refusal = pre_access(self.context, route.path, body, request.started) or self._checked(
            request, access, route, match, body)
        if refusal is not None:
            return refusal
        if request.method == "GET" and request.route_path == "/aliases" and self.faults.active("route-answers-501"):
            return error(501, "Not implemented (self-test probe route-answers-501)", request.started)  # probe seam
        response = await self.run_handler(route, match, body, request.started)
        if isinstance(access, CollectionScope) and response.status == 200:
            response.body = rbac.filter_rest(route.label, access, response.body)
        return response

    # -- body ----------------------------------------------------------------------------

    async def parse_body(self, request: Request, route: Route) -> Any:
        """The JSON body, or the response Qdrant gives before any access check."""
        small = route.body == "json_small"
        limit = SMALL_JSON_LIMIT if small else self.json_limit
        raw = await request.read_body(limit)
        if raw is None:
            message = f"JSON payload is larger than allowed (limit: {limit} bytes)."
            return plain(413, message) if small else error(400, message, request.started)
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return error(400, f"Json deserialize error: {exc}", request.started)
        if not isinstance(body, dict):
            return error(400, "Json deserialize error: expected a JSON object", request.started)
        if route.model is not None:
            try:
                why = await asyncio.to_thread(validate_body, self.context.data, route.model, body)
            except DataPlaneError as exc:
                return data_error(exc, request.started)
            if why is not None:
                return error(400, f"Json deserialize error: {why}", request.started)
        return body

    # -- handler -------------------------------------------------------------------------

    async def run_handler(self, route: Route, match: Match, body: Any, started: float, *,
                          raw: bytes = b"", content_type: str | None = None) -> Response:
        call = Call(params=match.params, body=body, started=started, raw=raw, content_type=content_type)
        handler, blocks = handler_for(route.handler)
        if blocks:
            return await asyncio.to_thread(handler, self.context, call)
        return handler(self.context, call)


async def _send(send: Send, response: Response) -> None:
    headers = [*response.headers, (b"content-length", str(len(response.body)).encode())]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


def _spill_upload(snapshots_path: str, body: bytes) -> None:
    """``snapshot-upload-read-before-auth``: the upload lands in ``<snapshots>/tmp`` before any check."""
    tmp = os.path.join(snapshots_path, "tmp")
    os.makedirs(tmp, exist_ok=True)
    with open(os.path.join(tmp, f"upload-{secrets.token_hex(6)}.part"), "wb") as fh:
        fh.write(body)

"""The p2p port's gRPC service: its methods, their wire format and ``enforce_internal_auth`` (spec §3, §8).

Qdrant's own methods answer as Qdrant's do (health checks, ``GetConsensusCommit``);
our peer service ``qsc.p2p.Peer`` carries JSON bytes. :class:`InternalAuth` is the
API-key check Qdrant puts before routing on this port, health methods exempt.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import grpc

from .. import COMMIT, TITLE
from ..auth import AuthFailure, AuthKeys
from ..fault_policy import FaultPolicy, handling_request

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


# -- wire helpers -------------------------------------------------------------------------


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def pb_string(number: int, text: str) -> bytes:
    data = text.encode("utf-8")
    return varint(number << 3 | 2) + varint(len(data)) + data


def health_check_reply(version: str) -> bytes:
    """``qdrant.HealthCheckReply``: title (1), version (2), commit (3)."""
    return pb_string(1, TITLE) + pb_string(2, version) + pb_string(3, COMMIT)


#: ``grpc.health.v1.HealthCheckResponse`` with ``status = SERVING``.
GRPC_HEALTH_SERVING = b"\x08\x01"


def dump(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("utf-8")


def load(raw: bytes) -> dict[str, Any]:
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


# -- the p2p port's handlers ----------------------------------------------------------------


def _deny(code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    def abort(request: bytes, context: grpc.ServicerContext) -> bytes:
        context.abort(code, message)
        raise AssertionError("unreachable")  # context.abort raises

    return grpc.unary_unary_rpc_method_handler(abort)


class InternalAuth(grpc.ServerInterceptor):
    """``enforce_internal_auth``: the API-key check before routing, health methods exempt (spec §3)."""

    def __init__(self, keys: AuthKeys, faults: FaultPolicy) -> None:
        self.keys = keys
        self.faults = faults

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        with handling_request():  # the fault seams asked in here belong to this call (fault reach)
            return self._check(continuation, handler_call_details)

    def _check(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        details: Any = handler_call_details
        if details.method in HEALTH_METHODS and not self.faults.active("p2p-health-requires-key"):  # fault seam
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


class Handlers(grpc.GenericRpcHandler):
    """Unary methods by path, raw bytes in and out (no serializers are registered)."""

    def __init__(self, table: dict[str, Callable[[bytes, grpc.ServicerContext], bytes]]) -> None:
        self.table = table

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = self.table.get(handler_call_details.method)
        return grpc.unary_unary_rpc_method_handler(method) if method is not None else None


def peer_address(peer: str) -> str | None:
    """The host of grpc's ``context.peer()`` (``ipv4:1.2.3.4:5``, ``ipv6:[::1]:5``)."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return None


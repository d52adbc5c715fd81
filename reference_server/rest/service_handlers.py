"""REST handlers for server-wide routes: logger, debugger, profiler, audit, quotas, cluster.

A single-node reference server has little behind these routes, so each answers
in Qdrant's envelope with what a single node would report: an idle profiler,
no peers, quotas as configured through the API. Where the spec does not pin a
result's exact shape (debugger, profiler, stack trace, memory), the
shape here is inferred from qdrant-client's models or kept minimal; the access
rules (spec §4) are the route table's, applied before any of this runs.
Run-time changes (log level, quotas, cluster metadata) live in ``Context.state``.
"""

from __future__ import annotations

import threading
from typing import Any

from ..audit import DEFAULT_LIMIT, MAX_LIMIT, AuditLog, parse_time
from ..data_admin import SINGLE_NODE_PEER_ID
from ..data_errors import DataPlaneError
from .registry import Call, Context, blocking, data_error, inline
from .responses import Response, error, ok

# Qdrant's answers on a single node (src/actix/api/cluster_api.rs, lib/storage toc/mod.rs,
# v1.17-v1.18): remove_peer's BadRequest; recover, the metadata keys and cluster telemetry end in a
# service error (500) past their access checks, as there is no consensus and no peer to ask.
MSG_NOT_DISTRIBUTED = "Bad request: Distributed mode disabled."
MSG_STANDALONE = "Service internal error: Qdrant is running in standalone mode"
MSG_NO_CLUSTER_TELEMETRY = "Service internal error: Could not get telemetry from cluster"
DEFAULT_QUOTAS: dict[str, Any] = {"enabled": False}


@inline("update_logger")
def update_logger(ctx: Context, call: Call) -> Response:
    level = call.body.get("log_level") if isinstance(call.body, dict) else None
    if level is not None:
        if not isinstance(level, str):
            return error(400, "Wrong input: log_level must be a string", call.started)
        ctx.state["log_level"] = level
    return ok(True, call.started)


@inline("get_debugger")
def get_debugger(ctx: Context, call: Call) -> Response:
    return ok(ctx.state.get("debugger", {}), call.started)


@inline("update_debugger")
def update_debugger(ctx: Context, call: Call) -> Response:
    if isinstance(call.body, dict):
        ctx.state.setdefault("debugger", {}).update(call.body)
    return ok(True, call.started)


@inline("slow_requests")
def slow_requests(ctx: Context, call: Call) -> Response:
    return ok({"requests": []}, call.started)


@inline("stacktrace")
def stacktrace(ctx: Context, call: Call) -> Response:
    # Thread names only: frames could show request data.
    return ok([{"name": t.name} for t in threading.enumerate()], call.started)


@blocking("audit_logs")
def audit_logs(ctx: Context, call: Call) -> Response:
    """``POST /audit/logs``: this node's entries, newest first (spec §10; body per Qdrant's ``AuditLogRequest``)."""
    log = AuditLog.from_settings(ctx.settings)
    if log is None:
        return error(400, "Bad request: Audit logging is not enabled", call.started)
    body = call.body if isinstance(call.body, dict) else {}
    limit = body.get("limit")
    filters = body.get("filters") or {}
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT):
        return error(400, f"Validation error in JSON body: limit: must be between 1 and {MAX_LIMIT}", call.started)
    if not isinstance(filters, dict) or not all(isinstance(v, str) for v in filters.values()):
        return error(400, "Json deserialize error: filters must map field names to strings", call.started)
    try:
        time_from, time_to = parse_time(body.get("time_from")), parse_time(body.get("time_to"))
    except ValueError as exc:
        return error(400, f"Json deserialize error: {exc}", call.started)
    entries = log.read(time_from=time_from, time_to=time_to, filters=filters, limit=limit or DEFAULT_LIMIT)
    return ok({"entries": entries}, call.started)


def _quotas(ctx: Context) -> dict[str, Any]:
    config = ctx.state.setdefault("quotas", dict(DEFAULT_QUOTAS))
    assert isinstance(config, dict)
    return config


@inline("get_quotas")
def get_quotas(ctx: Context, call: Call) -> Response:
    return ok({"config": _quotas(ctx), "usage": {}}, call.started)


@inline("update_quotas")
def update_quotas(ctx: Context, call: Call) -> Response:
    if isinstance(call.body, dict):
        _quotas(ctx).update({k: v for k, v in call.body.items() if v is not None})
    return ok(True, call.started)


# -- cluster --------------------------------------------------------------------------


@blocking("cluster_telemetry")
def cluster_telemetry(ctx: Context, call: Call) -> Response:
    if not ctx.settings.cluster.enabled:
        return error(500, MSG_NO_CLUSTER_TELEMETRY, call.started)
    try:
        names = [c.name for c in ctx.data.list_collections().collections]
    except DataPlaneError as exc:
        return data_error(exc, call.started)
    collections = {name: {"id": name, "shards": [{"id": 0, "peer_id": SINGLE_NODE_PEER_ID}]} for name in names}
    cluster = {"enabled": ctx.settings.cluster.enabled, "number_of_peers": 1, "peers": {}}
    return ok({"collections": collections, "cluster": cluster}, call.started)


@inline("cluster_recover")
def cluster_recover(ctx: Context, call: Call) -> Response:
    if not ctx.settings.cluster.enabled:
        return error(500, MSG_STANDALONE, call.started)
    return ok(True, call.started)


@inline("remove_peer")
def remove_peer(ctx: Context, call: Call) -> Response:
    if not ctx.settings.cluster.enabled:
        return error(400, MSG_NOT_DISTRIBUTED, call.started)
    peer = call.params["peer_id"]
    if peer != str(SINGLE_NODE_PEER_ID):
        return error(404, f"Not found: Peer {peer} doesn't exist", call.started)
    return error(400, "Bad request: Cannot remove this peer: it is the only one", call.started)


def _metadata(ctx: Context) -> dict[str, Any]:
    table = ctx.state.setdefault("cluster_metadata", {})
    assert isinstance(table, dict)
    return table


@inline("list_metadata_keys")
def list_metadata_keys(ctx: Context, call: Call) -> Response:
    if not ctx.settings.cluster.enabled:
        return error(500, MSG_STANDALONE, call.started)
    return ok(sorted(_metadata(ctx)), call.started)


@inline("get_metadata_key")
def get_metadata_key(ctx: Context, call: Call) -> Response:
    if not ctx.settings.cluster.enabled:
        return error(500, MSG_STANDALONE, call.started)
    key = call.params["key"]
    table = _metadata(ctx)
    if key not in table:
        return error(404, f"Not found: Metadata key {key} does not exist", call.started)
    return ok(table[key], call.started)


@inline("put_metadata_key")
def put_metadata_key(ctx: Context, call: Call) -> Response:
    if not ctx.settings.cluster.enabled:
        return error(500, MSG_STANDALONE, call.started)
    _metadata(ctx)[call.params["key"]] = call.body
    return ok(True, call.started)


@inline("delete_metadata_key")
def delete_metadata_key(ctx: Context, call: Call) -> Response:
    if not ctx.settings.cluster.enabled:
        return error(500, MSG_STANDALONE, call.started)
    _metadata(ctx).pop(call.params["key"], None)
    return ok(True, call.started)


# -- per collection -----------------------------------------------------------------------


@blocking("collection_memory")
def collection_memory(ctx: Context, call: Call) -> Response:
    try:
        info = ctx.data.get_collection(call.collection)
    except DataPlaneError as exc:
        return data_error(exc, call.started)
    # Local mode keeps everything in RAM and nothing on disk.
    return ok({"points_count": info.points_count or 0, "disk_bytes": 0}, call.started)


@blocking("truncate_wal")
def truncate_wal(ctx: Context, call: Call) -> Response:
    try:
        ctx.data.get_collection(call.collection)
    except DataPlaneError as exc:
        return data_error(exc, call.started)
    return ok(True, call.started)  # local mode has no write-ahead log to truncate

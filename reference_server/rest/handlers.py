"""REST handlers: one function per implemented route, named in the route table.

Handlers run after the auth middleware, body parsing and the access check.
Those that touch the data plane run in a worker thread (the data plane
blocks); the rest are cheap and run on the event loop. Each returns a
:class:`Response`; data-plane errors are mapped by
:func:`~reference_server.rest.registry.data_error`. The server-wide and snapshot
routes are in ``service_handlers`` and ``snapshot_handlers``; :func:`handler_for`
finds any of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from .. import COMMIT, TITLE
from ..data_plane import BadRequest, DataPlane, DataPlaneError, vector_alias
from . import service_handlers, snapshot_handlers  # noqa: F401  (they register theirs)
from .registry import (
    BLOCKING,
    INLINE,
    Call,
    Context,
    Handler,
    blocking,
    data_error,
    inline,
    jsonable,
)
from .responses import Response, error, ok, plain

# -- service ----------------------------------------------------------------------


@inline("root")
def root(ctx: Context, call: Call) -> Response:
    from .responses import json_body

    return json_body(200, {"title": TITLE, "version": ctx.settings.version, "commit": COMMIT})


@inline("healthz")
def healthz(ctx: Context, call: Call) -> Response:
    return plain(200, "healthz check passed")


@inline("readyz")
def readyz(ctx: Context, call: Call) -> Response:
    return plain(200, "all shards are ready")


def _collection_count(ctx: Context) -> int | None:
    # Never wait for the data plane here: a scrape must not block on start-up. It does start the
    # import, so a later scrape has the count.
    if not ctx.data.ready:
        ctx.data.start_loading()
        return None
    return len(ctx.data.list_collections().collections)


@blocking("metrics")
def metrics(ctx: Context, call: Call) -> Response:
    lines = [
        "# HELP app_info information about qdrant server",
        "# TYPE app_info gauge",
        f'app_info{{name="qdrant",version="{ctx.settings.version}"}} 1',
    ]
    count = _collection_count(ctx)
    if count is not None:
        lines += [
            "# HELP collections_total number of collections",
            "# TYPE collections_total gauge",
            f"collections_total {count}",
        ]
    return plain(200, "\n".join(lines) + "\n")


@blocking("telemetry")
def telemetry(ctx: Context, call: Call) -> Response:
    # Configuration flags only: telemetry never carries keys (spec §10).
    result = {
        "id": ctx.telemetry_id,
        "app": {
            "name": "qdrant",
            "version": ctx.settings.version,
            "jwt_rbac": False,
            "hide_jwt_dashboard": None,
        },
        "collections": {"number_of_collections": _collection_count(ctx) or 0},
    }
    return ok(result, call.started)


@inline("issues")
def issues(ctx: Context, call: Call) -> Response:
    return ok({"issues": []}, call.started)


@inline("clear_issues")
def clear_issues(ctx: Context, call: Call) -> Response:
    return ok(True, call.started)


@inline("get_logger")
def get_logger(ctx: Context, call: Call) -> Response:
    return ok({"log_level": ctx.state.get("log_level", ctx.settings.log_level)}, call.started)


@inline("cluster_status")
def cluster_status(ctx: Context, call: Call) -> Response:
    return ok(ctx.cluster_status(), call.started)


# -- collections and aliases ----------------------------------------------------------

_SIMPLE: dict[str, Callable[[DataPlane, Call], Any]] = {
    "list_collections": lambda d, c: d.list_collections(),
    "get_collection": lambda d, c: d.get_collection(c.collection),
    "create_collection": lambda d, c: d.create_collection(c.collection, c.body),
    "update_collection": lambda d, c: d.update_collection(c.collection, c.body),
    "delete_collection": lambda d, c: d.delete_collection(c.collection),
    "collection_exists": lambda d, c: d.collection_exists(c.collection),
    "collection_cluster_info": lambda d, c: d.collection_cluster_info(c.collection),
    "list_shard_keys": lambda d, c: d.list_shard_keys(c.collection),
    "list_aliases": lambda d, c: d.list_aliases(),
    "collection_aliases": lambda d, c: d.list_collection_aliases(c.collection),
    "update_aliases": lambda d, c: d.update_aliases(c.body),
    "upsert": lambda d, c: d.upsert(c.collection, c.body),
    "get_points": lambda d, c: d.retrieve(c.collection, c.body),
    "get_point": lambda d, c: d.get_point(c.collection, _point_id(c.params["id"])),
    "delete_points": lambda d, c: d.delete_points(c.collection, c.body),
    "scroll": lambda d, c: d.scroll(c.collection, c.body),
    "count": lambda d, c: d.count(c.collection, c.body),
    "query": lambda d, c: d.query(c.collection, c.body),
    "query_batch": lambda d, c: d.query_batch(c.collection, c.body),
    "search": lambda d, c: d.search(c.collection, c.body),
    "recommend": lambda d, c: d.recommend(c.collection, c.body),
    "facet": lambda d, c: d.facet(c.collection, c.body),
    "set_payload": lambda d, c: d.set_payload(c.collection, c.body),
    "overwrite_payload": lambda d, c: d.overwrite_payload(c.collection, c.body),
    "delete_payload": lambda d, c: d.delete_payload(c.collection, c.body),
    "clear_payload": lambda d, c: d.clear_payload(c.collection, c.body),
    "update_vectors": lambda d, c: d.update_vectors(c.collection, c.body),
    "delete_vectors": lambda d, c: d.delete_vectors(c.collection, c.body),
    "batch_update": lambda d, c: d.batch_update(c.collection, c.body),
    "search_batch": lambda d, c: d.search_batch(c.collection, c.body),
    "search_groups": lambda d, c: d.search_groups(c.collection, c.body),
    "recommend_batch": lambda d, c: d.recommend_batch(c.collection, c.body),
    "recommend_groups": lambda d, c: d.recommend_groups(c.collection, c.body),
    "discover": lambda d, c: d.discover(c.collection, c.body),
    "discover_batch": lambda d, c: d.discover_batch(c.collection, c.body),
    "query_groups": lambda d, c: d.query_groups(c.collection, c.body),
    "matrix_pairs": lambda d, c: d.matrix_pairs(c.collection, c.body),
    "matrix_offsets": lambda d, c: d.matrix_offsets(c.collection, c.body),
    "create_field_index": lambda d, c: d.create_field_index(c.collection, c.body),
    "delete_field_index": lambda d, c: d.delete_field_index(c.collection, c.params["field_name"]),
    "create_vector_name": lambda d, c: d.create_vector_name(c.collection, c.params["vector_name"], c.body),
    "delete_vector_name": lambda d, c: d.delete_vector_name(c.collection, c.params["vector_name"]),
    "create_shard_key": lambda d, c: d.create_shard_key(c.collection, c.body),
    "delete_shard_key": lambda d, c: d.delete_shard_key(c.collection, c.body),
    "update_cluster": lambda d, c: d.update_cluster(c.collection, c.body),
    "optimizations": lambda d, c: d.optimizations(c.collection),
    # Shard-level reads (used between peers): shard 0 holds every point here.
    "shard_get_points": lambda d, c: _on_shard(d, c, d.retrieve),
    "shard_scroll": lambda d, c: _on_shard(d, c, d.scroll),
    "shard_count": lambda d, c: _on_shard(d, c, d.count),
}


def _on_shard(data: DataPlane, call: Call, read: Callable[[str, Any], Any]) -> Any:
    data.check_shard(call.collection, call.params["shard_id"])
    return read(call.collection, call.body)


def _point_id(raw: str) -> int | str:
    """A path point id: an unsigned integer or a UUID (Qdrant's ``ExtendedPointId``)."""
    if raw.isdigit():
        return int(raw)
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise BadRequest(f"Wrong input: Unable to parse point id `{raw}`") from None


def _data_handler(call_data: Callable[[DataPlane, Call], Any]) -> Handler:
    def handle(ctx: Context, call: Call) -> Response:
        try:
            result = call_data(ctx.data, call)
        except DataPlaneError as exc:
            return data_error(exc, call.started)
        return ok(jsonable(result), call.started)

    return handle


for _name, _fn in _SIMPLE.items():
    BLOCKING[_name] = _data_handler(_fn)


def handler_for(name: str) -> tuple[Handler, bool]:
    """The handler named in the route table and whether it blocks."""
    if name in INLINE:
        return INLINE[name], False
    return BLOCKING[name], True


def pre_access(ctx: Context, route_label: str, body: Any, started: float) -> Response | None:
    """Refusals Qdrant gives before its access check: URL snapshot recovery switched off (spec §10)."""
    if not route_label.endswith("/snapshots/recover") or not isinstance(body, Mapping):
        return None
    from ..snapshots import url_recovery_refusal

    refusal = url_recovery_refusal(ctx.settings, body.get("location"), ctx.faults)
    return error(403, refusal, started) if refusal is not None else None


_ADAPTERS: dict[str, Any] = {}


def validate_body(data: DataPlane, model: str, body: Any) -> str | None:
    """Why ``body`` does not fit ``qdrant_client.http.models.<model>``, or ``None``.

    A point's ``vectors`` counts as ``vector`` (Qdrant's serde alias), as the
    data plane reads it too.
    """
    from pydantic import TypeAdapter, ValidationError

    body = vector_alias(body)
    if model == "UpdateOperations" and isinstance(body, Mapping) and isinstance(body.get("operations"), list):
        body = {**body, "operations": [
            {k: vector_alias(v) for k, v in op.items()} if isinstance(op, Mapping) else op
            for op in body["operations"]]}
    adapter = _ADAPTERS.get(model)
    if adapter is None:
        adapter = _ADAPTERS[model] = TypeAdapter(getattr(data.rest_models, model))
    try:
        adapter.validate_python(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)
        if not first:
            return "invalid body"
        where = ".".join(str(p) for p in first[0].get("loc", ())) or "body"
        return f"{where}: {first[0].get('msg', 'invalid value')}"
    return None


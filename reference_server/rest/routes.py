"""The reference server's REST route table: every route, who may call it, how it reads its body.

Kept as data, written from the spec (§2.5, §4, §10) and the 69 method/path
pairs of qdrant-client 1.20.0's ``http/api/*_api.py``, plus the routes only the
server has. Path parameters use Qdrant's names.

Columns: method, path pattern, access, handler, body, refusal, since.

* access: ``none`` (whitelisted), ``read`` (global ``r`` suffices: the RO key),
  ``manage`` (the manage or alt key).
* handler: name of the handler (:mod:`reference_server.rest.handlers` and the
  modules it loads); every route has one.
* body: ``none``; ``json`` (Qdrant's validating extractor: limit
  ``max_request_size_mb``, 400 when exceeded); ``json_small`` (actix's plain
  extractor: 2 MiB, 413 ``text/plain``); ``upload`` (multipart snapshot upload,
  authorised before a byte of the body is read).
* refusal: how a read-only caller is refused: ``json`` envelope or bare
  ``text`` (``text/plain``; upload and snapshot-streaming handlers).
* since: first Qdrant version with the route, where it matters for auth.

:data:`BODY_MODELS` names, per route, the ``qdrant_client.http.models`` type
a JSON body must fit; Qdrant rejects a body of the wrong shape (400) before it
checks the caller's access (spec §2.6), and so does the reference server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Need = Literal["none", "read", "manage"]
Body = Literal["none", "json", "json_small", "upload"]
Refusal = Literal["json", "text"]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    access: Need
    handler: str
    body: Body
    refusal: Refusal = "json"
    since: str | None = None
    model: str | None = None

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


C = "/collections/{collection_name}"
P = C + "/points"
SH = C + "/shards/{shard_id}"

# fmt: off
_ROWS: tuple[tuple[str, str, Need, str, Body, Refusal, str | None], ...] = (
    # service (spec §2.5, §4)
    ("GET",    "/",                                  "none",   "root",            "none", "json", None),
    ("GET",    "/healthz",                           "none",   "healthz",         "none", "json", "1.5.0"),
    ("GET",    "/livez",                             "none",   "healthz",         "none", "json", "1.5.0"),
    ("GET",    "/readyz",                            "none",   "readyz",          "none", "json", "1.5.0"),
    ("GET",    "/metrics",                           "read",   "metrics",         "none", "json", None),
    ("GET",    "/telemetry",                         "read",   "telemetry",       "none", "json", None),
    ("GET",    "/issues",                            "read",   "issues",          "none", "json", None),
    ("DELETE", "/issues",                            "manage", "clear_issues",    "none", "json", None),
    ("GET",    "/logger",                            "read",   "get_logger",      "none", "json", None),
    ("POST",   "/logger",                            "manage", "update_logger", "json_small", "json", None),
    ("GET",    "/debugger",                          "manage", "get_debugger", "none", "json", None),
    ("PATCH",  "/debugger",                          "manage", "update_debugger", "json_small", "json", None),
    ("GET",    "/profiler/slow_requests",            "manage", "slow_requests", "none", "json", None),
    ("GET",    "/stacktrace",                        "manage", "stacktrace", "none", "json", None),
    ("POST",   "/audit/logs",                        "manage", "audit_logs", "json", "json", None),
    ("GET",    "/quotas",                            "read",   "get_quotas", "none", "json", None),
    ("PUT",    "/quotas",                            "manage", "update_quotas", "json", "json", None),
    # cluster
    ("GET",    "/cluster",                           "read",   "cluster_status",  "none", "json", None),
    ("GET",    "/cluster/telemetry",                 "read",   "cluster_telemetry", "none", "json", None),
    ("POST",   "/cluster/recover",                   "manage", "cluster_recover", "none", "json", None),
    ("DELETE", "/cluster/peer/{peer_id}",            "manage", "remove_peer", "none", "json", None),
    ("GET",    "/cluster/metadata/keys",             "read",   "list_metadata_keys", "none", "json", None),
    ("GET",    "/cluster/metadata/keys/{key}",       "read",   "get_metadata_key", "none", "json", None),
    ("PUT",    "/cluster/metadata/keys/{key}",       "manage", "put_metadata_key", "json_small", "json", None),
    ("DELETE", "/cluster/metadata/keys/{key}",       "manage", "delete_metadata_key", "none", "json", None),
    # collections
    ("GET",    "/collections",                       "read",   "list_collections", "none", "json", None),
    ("GET",    C,                                    "read",   "get_collection",  "none", "json", None),
    ("PUT",    C,                                    "manage", "create_collection", "json", "json", None),
    ("PATCH",  C,                                    "manage", "update_collection", "json", "json", None),
    ("DELETE", C,                                    "manage", "delete_collection", "none", "json", None),
    ("GET",    C + "/exists",                        "read",   "collection_exists", "none", "json", None),
    ("GET",    C + "/optimizations",                 "read",   "optimizations", "none", "json", None),
    ("GET",    C + "/memory",                        "read",   "collection_memory", "none", "json", None),
    ("POST",   C + "/truncate_unapplied_wal",        "manage", "truncate_wal", "none", "json", None),
    ("PUT",    C + "/vectors/{vector_name}",         "manage", "create_vector_name", "json", "json", None),
    ("DELETE", C + "/vectors/{vector_name}",         "manage", "delete_vector_name", "none", "json", None),
    ("PUT",    C + "/index",                         "manage", "create_field_index", "json", "json", None),
    ("DELETE", C + "/index/{field_name}",            "manage", "delete_field_index", "none", "json", None),
    ("GET",    C + "/cluster",                       "read",   "collection_cluster_info", "none", "json", None),
    ("POST",   C + "/cluster",                       "manage", "update_cluster", "json", "json", None),
    ("GET",    C + "/shards",                        "read",   "list_shard_keys", "none", "json", None),
    ("PUT",    C + "/shards",                        "manage", "create_shard_key", "json", "json", None),
    ("POST",   C + "/shards/delete",                 "manage", "delete_shard_key", "json", "json", None),
    # aliases
    ("GET",    "/aliases",                           "read",   "list_aliases",    "none", "json", None),
    ("GET",    C + "/aliases",                       "read",   "collection_aliases", "none", "json", None),
    ("POST",   "/collections/aliases",               "manage", "update_aliases",  "json", "json", None),
    # points: reads
    ("GET",    P + "/{id}",                          "read",   "get_point",       "none", "json", None),
    ("POST",   P,                                    "read",   "get_points",      "json", "json", None),
    ("POST",   P + "/scroll",                        "read",   "scroll",          "json", "json", None),
    ("POST",   P + "/count",                         "read",   "count",           "json", "json", None),
    ("POST",   P + "/query",                         "read",   "query",           "json", "json", None),
    ("POST",   P + "/query/batch",                   "read",   "query_batch",     "json", "json", None),
    ("POST",   P + "/query/groups",                  "read",   "query_groups", "json", "json", None),
    ("POST",   P + "/search",                        "read",   "search",          "json", "json", None),
    ("POST",   P + "/search/batch",                  "read",   "search_batch", "json", "json", None),
    ("POST",   P + "/search/groups",                 "read",   "search_groups", "json", "json", None),
    ("POST",   P + "/search/matrix/offsets",         "read",   "matrix_offsets", "json", "json", None),
    ("POST",   P + "/search/matrix/pairs",           "read",   "matrix_pairs", "json", "json", None),
    ("POST",   P + "/recommend",                     "read",   "recommend",       "json", "json", None),
    ("POST",   P + "/recommend/batch",               "read",   "recommend_batch", "json", "json", None),
    ("POST",   P + "/recommend/groups",              "read",   "recommend_groups", "json", "json", None),
    ("POST",   P + "/discover",                      "read",   "discover", "json", "json", None),
    ("POST",   P + "/discover/batch",                "read",   "discover_batch", "json", "json", None),
    ("POST",   C + "/facet",                         "read",   "facet",           "json", "json", None),
    # points: writes
    ("PUT",    P,                                    "manage", "upsert",          "json", "json", None),
    ("POST",   P + "/delete",                        "manage", "delete_points",   "json", "json", None),
    ("POST",   P + "/batch",                         "manage", "batch_update", "json", "json", None),
    ("PUT",    P + "/vectors",                       "manage", "update_vectors",  "json", "json", None),
    ("POST",   P + "/vectors/delete",                "manage", "delete_vectors",  "json", "json", None),
    ("POST",   P + "/payload",                       "manage", "set_payload",     "json", "json", None),
    ("PUT",    P + "/payload",                       "manage", "overwrite_payload", "json", "json", None),
    ("POST",   P + "/payload/delete",                "manage", "delete_payload",  "json", "json", None),
    ("POST",   P + "/payload/clear",                 "manage", "clear_payload",   "json", "json", None),
    # snapshots: collection
    ("GET",    C + "/snapshots",                     "read",   "list_snapshots", "none", "json", None),
    ("POST",   C + "/snapshots",                     "manage", "create_snapshot", "none", "json", None),
    ("GET",    C + "/snapshots/{snapshot_name}",     "read",   "download_snapshot", "none", "text", None),
    ("DELETE", C + "/snapshots/{snapshot_name}",     "manage", "delete_snapshot", "none", "json", None),
    ("PUT",    C + "/snapshots/recover",             "manage", "recover_snapshot", "json", "json", None),
    ("POST",   C + "/snapshots/upload",              "manage", "upload_snapshot", "upload", "text", None),
    # snapshots: shard
    ("GET",    SH + "/snapshots",                    "read",   "list_shard_snapshots", "none", "json", None),
    ("POST",   SH + "/snapshots",                    "manage", "create_shard_snapshot", "none", "json", None),
    ("GET",    SH + "/snapshots/{snapshot_name}",    "read",   "download_shard_snapshot", "none", "text", None),
    ("DELETE", SH + "/snapshots/{snapshot_name}",    "manage", "delete_shard_snapshot", "none", "json", None),
    ("PUT",    SH + "/snapshots/recover",            "manage", "recover_shard_snapshot", "json", "json", None),
    ("POST",   SH + "/snapshots/upload",             "manage", "upload_shard_snapshot", "upload", "text", None),
    ("GET",    SH + "/snapshot",                     "manage", "stream_shard_snapshot", "none", "text", None),
    ("POST",   SH + "/snapshot/partial/create",      "manage", "partial_snapshot_create", "json_small", "text", None),
    ("POST",   SH + "/snapshot/partial/recover",     "manage", "partial_snapshot_recover", "upload", "text", None),
    ("POST",   SH + "/snapshot/partial/recover_from", "manage", "partial_recover_from", "json_small", "json", None),
    ("GET",    SH + "/snapshot/partial/manifest",    "read",   "partial_snapshot_manifest", "none", "json", None),
    # shard-level point reads
    ("POST",   SH + "/points",                       "read",   "shard_get_points", "json_small", "json", None),
    ("POST",   SH + "/points/scroll",                "read",   "shard_scroll", "json_small", "json", None),
    ("POST",   SH + "/points/count",                 "read",   "shard_count", "json_small", "json", None),
    # snapshots: full storage
    ("GET",    "/snapshots",                         "read",   "list_full_snapshots", "none", "json", None),
    ("POST",   "/snapshots",                         "manage", "create_full_snapshot", "none", "json", None),
    ("GET",    "/snapshots/{snapshot_name}",         "read",   "download_full_snapshot", "none", "text", None),
    ("DELETE", "/snapshots/{snapshot_name}",         "manage", "delete_full_snapshot", "none", "json", None),
)
# fmt: on

BODY_MODELS: dict[str, str] = {
    "PUT " + C: "CreateCollection",
    "PATCH " + C: "UpdateCollection",
    "PUT " + C + "/vectors/{vector_name}": "VectorNameConfig",
    "PUT " + C + "/index": "CreateFieldIndex",
    "POST " + C + "/cluster": "ClusterOperations",
    "PUT " + C + "/shards": "CreateShardingKey",
    "POST " + C + "/shards/delete": "DropShardingKey",
    "POST /collections/aliases": "ChangeAliasesOperation",
    "POST " + P: "PointRequest",
    "POST " + P + "/scroll": "ScrollRequest",
    "POST " + P + "/count": "CountRequest",
    "POST " + P + "/query": "QueryRequest",
    "POST " + P + "/query/batch": "QueryRequestBatch",
    "POST " + P + "/query/groups": "QueryGroupsRequest",
    "POST " + P + "/search/matrix/offsets": "SearchMatrixRequest",
    "POST " + P + "/search/matrix/pairs": "SearchMatrixRequest",
    "POST " + C + "/facet": "FacetRequest",
    "PUT " + P: "PointInsertOperations",
    "POST " + P + "/delete": "PointsSelector",
    "POST " + P + "/batch": "UpdateOperations",
    "PUT " + P + "/vectors": "UpdateVectors",
    "POST " + P + "/vectors/delete": "DeleteVectors",
    "POST " + P + "/payload": "SetPayload",
    "PUT " + P + "/payload": "SetPayload",
    "POST " + P + "/payload/delete": "DeletePayload",
    "POST " + P + "/payload/clear": "PointsSelector",
    "PUT " + C + "/snapshots/recover": "SnapshotRecover",
    "PUT " + SH + "/snapshots/recover": "ShardSnapshotRecover",
    "PUT /quotas": "QuotaConfig",
}

ROUTES: tuple[Route, ...] = tuple(
    Route(*row, model=BODY_MODELS.get(f"{row[0]} {row[1]}")) for row in _ROWS
)

#: Whitelisted route patterns (spec §2.5). ``/dashboard`` joins them only while the
#: Web UI is served (:mod:`reference_server.rest.web_ui`).
WHITELIST_EXACT = ("/", "/healthz")
WHITELIST_PREFIX = ("/readyz", "/livez")

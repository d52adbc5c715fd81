"""What a JWT's per-collection access list may do (spec §5.3).

Global principals (the keys, ``{"access": "r"|"m"}`` tokens) are judged by the
route and method tables (``rest/routes.py``, ``grpc_api/access.py``). A token
with a collection list is judged here, per operation kind:

* ``any``: every authenticated principal (telemetry, issues, reflection).
* ``filtered``: allowed, the answer lists only the token's collections.
* ``global``: needs global access: ``Forbidden: Global access is required``.
* ``read`` / ``read_extras`` / ``write`` / ``write_extras`` / ``manage``: on the
  request's collection; ``extras`` = snapshots, payload indexes, named vectors,
  shard-level data (refused to ``prw``).

Cross-collection references (``lookup_from``, ``with_lookup``, at any depth:
nested ``prefetch`` and batches) need access to the referenced collection too.
This is the server's own table; the suite keeps an independent one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from google.protobuf.message import Message

from .fault_policy import FaultPolicy
from .jwt_auth import CollectionScope

MSG_GLOBAL = "Forbidden: Global access is required"
MSG_MANAGE = "Forbidden: Manage access for this operation is required"


def msg_collection(name: str) -> str:
    return f"Forbidden: Access to collection {name} is required"


def msg_write(name: str) -> str:
    return f"Forbidden: Write access to collection {name} is required"


def msg_points_only(name: str) -> str:
    return f"Forbidden: Only points access is allowed for collection {name}"


C = "/collections/{collection_name}"
P = C + "/points"
SH = C + "/shards/{shard_id}"

# fmt: off
REST_KINDS: dict[str, str] = {
    "GET /metrics": "global", "GET /telemetry": "any", "GET /issues": "any", "DELETE /issues": "global",
    "GET /logger": "global", "POST /logger": "global", "GET /debugger": "global", "PATCH /debugger": "global",
    "GET /profiler/slow_requests": "global", "GET /stacktrace": "global", "POST /audit/logs": "global",
    "GET /quotas": "global", "PUT /quotas": "global",
    "GET /cluster": "global", "GET /cluster/telemetry": "any", "POST /cluster/recover": "global",
    "DELETE /cluster/peer/{peer_id}": "global", "GET /cluster/metadata/keys": "global",
    "GET /cluster/metadata/keys/{key}": "global", "PUT /cluster/metadata/keys/{key}": "global",
    "DELETE /cluster/metadata/keys/{key}": "global",
    "GET /collections": "filtered", "GET " + C: "read", "PUT " + C: "global", "PATCH " + C: "global",
    "DELETE " + C: "global", "GET " + C + "/exists": "read", "GET " + C + "/optimizations": "read",
    "GET " + C + "/memory": "read", "POST " + C + "/truncate_unapplied_wal": "manage",
    "PUT " + C + "/vectors/{vector_name}": "write_extras", "DELETE " + C + "/vectors/{vector_name}": "write_extras",
    "PUT " + C + "/index": "write_extras", "DELETE " + C + "/index/{field_name}": "write_extras",
    "GET " + C + "/cluster": "read", "POST " + C + "/cluster": "manage",
    "GET " + C + "/shards": "read", "PUT " + C + "/shards": "global", "POST " + C + "/shards/delete": "global",
    "GET /aliases": "filtered", "GET " + C + "/aliases": "read", "POST /collections/aliases": "global",
    "GET " + P + "/{id}": "read", "POST " + P: "read", "POST " + P + "/scroll": "read",
    "POST " + P + "/count": "read", "POST " + P + "/query": "read", "POST " + P + "/query/batch": "read",
    "POST " + P + "/query/groups": "read", "POST " + P + "/search": "read", "POST " + P + "/search/batch": "read",
    "POST " + P + "/search/groups": "read", "POST " + P + "/search/matrix/offsets": "read",
    "POST " + P + "/search/matrix/pairs": "read", "POST " + P + "/recommend": "read",
    "POST " + P + "/recommend/batch": "read", "POST " + P + "/recommend/groups": "read",
    "POST " + P + "/discover": "read", "POST " + P + "/discover/batch": "read", "POST " + C + "/facet": "read",
    "PUT " + P: "write", "POST " + P + "/delete": "write", "POST " + P + "/batch": "write",
    "PUT " + P + "/vectors": "write", "POST " + P + "/vectors/delete": "write", "POST " + P + "/payload": "write",
    "PUT " + P + "/payload": "write", "POST " + P + "/payload/delete": "write",
    "POST " + P + "/payload/clear": "write",
    "GET " + C + "/snapshots": "read_extras", "POST " + C + "/snapshots": "write_extras",
    "GET " + C + "/snapshots/{snapshot_name}": "read_extras",
    "DELETE " + C + "/snapshots/{snapshot_name}": "write_extras",
    "PUT " + C + "/snapshots/recover": "manage", "POST " + C + "/snapshots/upload": "global",
    "GET " + SH + "/snapshots": "read_extras", "POST " + SH + "/snapshots": "write_extras",
    "GET " + SH + "/snapshots/{snapshot_name}": "read_extras",
    "DELETE " + SH + "/snapshots/{snapshot_name}": "write_extras",
    "PUT " + SH + "/snapshots/recover": "manage", "POST " + SH + "/snapshots/upload": "global",
    "GET " + SH + "/snapshot": "write_extras", "POST " + SH + "/snapshot/partial/create": "write_extras",
    "POST " + SH + "/snapshot/partial/recover": "global", "POST " + SH + "/snapshot/partial/recover_from": "manage",
    "GET " + SH + "/snapshot/partial/manifest": "read_extras",
    "POST " + SH + "/points": "read_extras", "POST " + SH + "/points/scroll": "read_extras",
    "POST " + SH + "/points/count": "read_extras",
    "GET /snapshots": "global", "POST /snapshots": "global", "GET /snapshots/{snapshot_name}": "global",
    "DELETE /snapshots/{snapshot_name}": "global",
}

_COLLECTIONS = {"Get": "read", "List": "filtered", "Create": "global", "Update": "global", "Delete": "global",
                "UpdateAliases": "global", "ListCollectionAliases": "read", "ListAliases": "filtered",
                "CollectionClusterInfo": "read", "CollectionExists": "read",
                "UpdateCollectionClusterSetup": "manage", "CreateShardKey": "global", "DeleteShardKey": "global",
                "ListShardKeys": "read"}
_POINTS_WRITE = ("Upsert", "Delete", "UpdateVectors", "DeleteVectors", "SetPayload", "OverwritePayload",
                 "DeletePayload", "ClearPayload", "UpdateBatch")
_POINTS_EXTRAS = ("CreateFieldIndex", "DeleteFieldIndex", "CreateVectorName", "DeleteVectorName")
_POINTS_READ = ("Get", "Search", "SearchBatch", "SearchGroups", "Scroll", "Recommend", "RecommendBatch",
                "RecommendGroups", "Discover", "DiscoverBatch", "Count", "Query", "QueryBatch", "QueryGroups",
                "Facet", "SearchMatrixPairs", "SearchMatrixOffsets")
GRPC_KINDS: dict[str, str] = {
    **{f"/qdrant.Collections/{m}": k for m, k in _COLLECTIONS.items()},
    **{f"/qdrant.Points/{m}": "write" for m in _POINTS_WRITE},
    **{f"/qdrant.Points/{m}": "write_extras" for m in _POINTS_EXTRAS},
    **{f"/qdrant.Points/{m}": "read" for m in _POINTS_READ},
    "/qdrant.Snapshots/Create": "write_extras", "/qdrant.Snapshots/List": "read_extras",
    "/qdrant.Snapshots/Delete": "write_extras", "/qdrant.Snapshots/CreateFull": "global",
    "/qdrant.Snapshots/ListFull": "global", "/qdrant.Snapshots/DeleteFull": "global",
    "/qdrant.ShardSnapshots/Create": "write_extras", "/qdrant.ShardSnapshots/List": "read_extras",
    "/qdrant.ShardSnapshots/Delete": "write_extras", "/qdrant.ShardSnapshots/Recover": "manage",
    "/qdrant.Quotas/Get": "global", "/qdrant.Quotas/Update": "global",
    **{f"/qdrant.StorageRead/{m}": "read" for m in ("ListFiles", "FileExists", "FileLength", "ReadBytes",
                                                     "ReadBytesStream", "ReadWhole", "ReadBatch")},
}
# fmt: on


def kind_of_rest(label: str) -> str:
    """Unknown routes need global access: a table gap must fail closed."""
    return REST_KINDS.get(label, "global")


def kind_of_grpc(path: str) -> str:
    if path.startswith(("/grpc.", "/qdrant.Qdrant/")):
        return "any"  # health, reflection: authentication only (spec §3)
    return GRPC_KINDS.get(path, "global")


def check(scope: CollectionScope, kind: str, collection: str | None, references: set[str], *,
          faults: FaultPolicy) -> str | None:
    """``None`` when ``scope`` may do it; else Qdrant's forbidden message."""
    if kind in ("any", "filtered"):
        return None
    if kind == "global" or collection is None:
        return MSG_GLOBAL
    mode = scope.mode(collection)
    if mode is None:
        return msg_collection(collection)
    if kind == "manage":
        return MSG_MANAGE
    if kind.startswith("write") and mode == "r" and not faults.active("jwt-scope-ignored-on-writes"):  # fault seam
        return msg_write(collection)
    if kind.endswith("extras") and mode == "prw" and not faults.active("jwt-prw-snapshots"):  # fault seam
        return msg_points_only(collection)
    if faults.active("jwt-lookup-from-unchecked"):  # fault seam
        return None
    for other in sorted(references):
        if scope.mode(other) is None:
            return msg_collection(other)
    return None


def json_references(body: Any) -> set[str]:
    """Collections named by ``lookup_from`` / ``with_lookup`` anywhere in a REST body."""
    found: set[str] = set()
    for key, value in _walk(body):
        if key == "lookup_from" and isinstance(value, dict) and isinstance(value.get("collection"), str):
            found.add(value["collection"])
        elif key == "with_lookup":
            if isinstance(value, str):
                found.add(value)
            elif isinstance(value, dict) and isinstance(value.get("collection"), str):
                found.add(value["collection"])
    return found


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def message_references(message: Any) -> set[str]:
    """Collections named by ``lookup_from`` / ``with_lookup`` anywhere in a protobuf request."""
    found: set[str] = set()
    for field, value in message.ListFields():
        if field.name == "lookup_from" and hasattr(value, "collection_name"):
            found.add(value.collection_name)
        elif field.name == "with_lookup" and hasattr(value, "collection"):
            found.add(value.collection)
        if field.message_type is None:
            continue
        if isinstance(value, Message):
            found |= message_references(value)
        elif isinstance(value, Mapping):  # map fields: only message values can hold references
            for item in value.values():
                if isinstance(item, Message):
                    found |= message_references(item)
        else:  # repeated message field
            for item in value:
                found |= message_references(item)
    return found


def message_collection(message: Any) -> str | None:
    fields = message.DESCRIPTOR.fields_by_name
    if "collection_name" in fields:
        return str(message.collection_name)
    return None


# -- filtered answers -----------------------------------------------------------------------

TELEMETRY_HIDDEN = ("requests", "memory", "cluster")


def filter_rest(label: str, scope: CollectionScope, body: bytes) -> bytes:
    """The answer a collection token sees: lists cut to its collections, telemetry cut down."""
    if label not in ("GET /collections", "GET /aliases", "GET /telemetry"):
        return body
    try:
        data = json.loads(body)
    except ValueError:
        return body
    result = data.get("result") if isinstance(data, dict) else None
    if not isinstance(result, dict):
        return body
    if label == "GET /collections" and isinstance(result.get("collections"), list):
        result["collections"] = [c for c in result["collections"]
                                 if isinstance(c, dict) and c.get("name") in scope.names]
    elif label == "GET /aliases" and isinstance(result.get("aliases"), list):
        result["aliases"] = [a for a in result["aliases"]
                             if isinstance(a, dict) and a.get("collection_name") in scope.names]
    elif label == "GET /telemetry":
        for key in TELEMETRY_HIDDEN:
            result.pop(key, None)
    return json.dumps(data, separators=(",", ":")).encode()


def filter_grpc(path: str, scope: CollectionScope, response: Any) -> Any:
    if path == "/qdrant.Collections/List":
        keep = [c for c in response.collections if c.name in scope.names]
        del response.collections[:]
        response.collections.extend(keep)
    elif path == "/qdrant.Collections/ListAliases":
        keep = [a for a in response.aliases if a.collection_name in scope.names]
        del response.aliases[:]
        response.aliases.extend(keep)
    return response

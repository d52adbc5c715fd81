"""REST handlers for snapshots: collection, shard, partial and full (spec §4, §10).

The files and their rules live in :mod:`reference_server.snapshots`; this
module maps routes onto it. Downloads and streams answer with the archive as
``application/octet-stream``; their errors, like Qdrant's snapshot-streaming
handlers, are plain text rather than the JSON envelope (spec §4).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..data_errors import BadRequest, DataPlaneError
from ..snapshots import Description, SnapshotStore, fetch_loopback, multipart_snapshot, store_for
from .registry import BLOCKING, Call, Context, Handler, data_error, jsonable
from .responses import Response, ok, plain

ARCHIVE_TYPE = b"application/octet-stream"


def _store(ctx: Context) -> SnapshotStore:
    return store_for(ctx.data, ctx.settings, ctx.faults)


def _json(action: Callable[[SnapshotStore, Call], Any]) -> Handler:
    """A handler answering in the JSON envelope."""

    def handle(ctx: Context, call: Call) -> Response:
        try:
            result = action(_store(ctx), call)
        except DataPlaneError as exc:
            return data_error(exc, call.started)
        if isinstance(result, Description):
            result = result.as_json()
        elif isinstance(result, list):
            result = [d.as_json() if isinstance(d, Description) else jsonable(d) for d in result]
        return ok(result, call.started)

    return handle


def _archive(action: Callable[[SnapshotStore, Call], Path | bytes]) -> Handler:
    """A handler answering with the archive itself, or a plain-text error."""

    def handle(ctx: Context, call: Call) -> Response:
        try:
            found = action(_store(ctx), call)
            content = found.read_bytes() if isinstance(found, Path) else found
        except DataPlaneError as exc:
            refusal = data_error(exc, call.started)
            return plain(refusal.status, exc.message)
        name = found.name if isinstance(found, Path) else "snapshot.snapshot"
        return Response(200, content, [(b"content-type", ARCHIVE_TYPE),
                                       (b"content-disposition", f'attachment; filename="{name}"'.encode())])

    return handle


def _location(call: Call) -> tuple[str, str | None, str | None]:
    body = call.body if isinstance(call.body, dict) else {}
    location = body.get("location")
    if not isinstance(location, str):
        raise BadRequest("Wrong input: `location` is required")
    return location, body.get("api_key"), body.get("checksum")


def _recover(store: SnapshotStore, call: Call) -> bool:
    location, api_key, checksum = _location(call)
    return store.recover(call.collection, store.read_location(location, api_key), checksum)


def _recover_shard(store: SnapshotStore, call: Call) -> bool:
    location, api_key, checksum = _location(call)
    store.data.check_shard(call.collection, call.params["shard_id"])
    return store.recover_shard(call.collection, call.params["shard_id"], store.read_location(location, api_key),
                               checksum)


def _upload(store: SnapshotStore, call: Call) -> bool:
    return store.recover(call.collection, multipart_snapshot(call.raw, call.content_type))


def _upload_shard(store: SnapshotStore, call: Call) -> bool:
    store.data.check_shard(call.collection, call.params["shard_id"])
    return store.recover_shard(call.collection, call.params["shard_id"],
                               multipart_snapshot(call.raw, call.content_type))


def _recover_from_peer(store: SnapshotStore, call: Call) -> bool:
    """Fetch a partial snapshot of this shard from ``peer_url`` (loopback only) and apply it."""
    shard = call.params["shard_id"]
    store.data.check_shard(call.collection, shard)
    body = call.body if isinstance(call.body, dict) else {}
    peer = body.get("peer_url")
    if not isinstance(peer, str):
        raise BadRequest("Wrong input: `peer_url` is required")
    url = f"{peer.rstrip('/')}/collections/{call.collection}/shards/{shard}/snapshot/partial/create"
    manifest = json.dumps(_manifest(store, call)).encode()
    return store.recover_shard(call.collection, shard, fetch_loopback(url, method="POST", body=manifest))


def _manifest(store: SnapshotStore, call: Call) -> dict[str, Any]:
    # Our archives are whole-shard: a manifest naming no segments asks for everything.
    store.data.check_shard(call.collection, call.params["shard_id"])
    return {"segments": {}}


def _stream_shard(store: SnapshotStore, call: Call) -> bytes:
    return store.stream_shard(call.collection, call.params["shard_id"])


_JSON: dict[str, Callable[[SnapshotStore, Call], Any]] = {
    "list_snapshots": lambda s, c: s.list_collection(c.collection),
    "create_snapshot": lambda s, c: s.create_collection_snapshot(c.collection),
    "delete_snapshot": lambda s, c: s.delete_collection_snapshot(c.collection, c.params["snapshot_name"]),
    "recover_snapshot": _recover,
    "upload_snapshot": _upload,
    "list_shard_snapshots": lambda s, c: s.list_shard(c.collection, c.params["shard_id"]),
    "create_shard_snapshot": lambda s, c: s.create_shard_snapshot(c.collection, c.params["shard_id"]),
    "delete_shard_snapshot": lambda s, c: s.delete_shard_snapshot(c.collection, c.params["shard_id"],
                                                                  c.params["snapshot_name"]),
    "recover_shard_snapshot": _recover_shard,
    "upload_shard_snapshot": _upload_shard,
    "partial_snapshot_recover": _upload_shard,
    "partial_recover_from": _recover_from_peer,
    "partial_snapshot_manifest": _manifest,
    "list_full_snapshots": lambda s, c: s.list_full(),
    "create_full_snapshot": lambda s, c: s.create_full(),
    "delete_full_snapshot": lambda s, c: s.delete_full(c.params["snapshot_name"]),
}

_ARCHIVES: dict[str, Callable[[SnapshotStore, Call], Path | bytes]] = {
    "download_snapshot": lambda s, c: s.collection_file(c.collection, c.params["snapshot_name"]),
    "download_shard_snapshot": lambda s, c: s.shard_file(c.collection, c.params["shard_id"],
                                                         c.params["snapshot_name"]),
    "download_full_snapshot": lambda s, c: s.full_file(c.params["snapshot_name"]),
    "stream_shard_snapshot": _stream_shard,
    "partial_snapshot_create": _stream_shard,
}

for _name, _action in _JSON.items():
    BLOCKING[_name] = _json(_action)
for _name, _stream in _ARCHIVES.items():
    BLOCKING[_name] = _archive(_stream)

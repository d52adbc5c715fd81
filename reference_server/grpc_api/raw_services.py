"""Services without shipped stubs: ``qdrant.StorageRead``, ``qdrant.ShardSnapshots``, ``qdrant.Quotas``.

ShardSnapshots answers with the ``qdrant.Snapshots`` response messages (the
same messages in Qdrant's proto) and keeps its files through
:mod:`reference_server.snapshots`. Quotas keeps nothing: Get answers an
all-default status, Update accepts.

Requests arrive as bytes; :mod:`reference_server.grpc_api.wire` reads their
leading scalar fields. This server keeps no shard files, so StorageRead finds
none, but it applies Qdrant's checks first (spec §10): a missing shard is
NOT_FOUND and a path with ``..``, a leading ``/`` or a leading ``.`` is
INVALID_ARGUMENT. An empty byte string is a valid encoding of a response whose
fields all hold defaults (no files, ``exists: false``, no snapshots).
"""

from __future__ import annotations

from typing import Any

import grpc

from . import wire
from .call import Call, Handler
from .errors import GrpcError

EMPTY_RESPONSE = b""

# Field numbers of the requests' leading fields.
_COLLECTION = 1
_SHARD = 2
_PATH = 3


def invalid_path_component(path: str) -> bool:
    """Would Rust's ``Path::components()`` yield anything but normal names for ``path``?"""
    if path.startswith("/"):
        return True
    segments = [s for s in path.split("/") if s]
    if any(s == ".." for s in segments):
        return True
    # Rust reports a current-dir component only at the very start ("." or "./x").
    return path == "." or path.startswith("./")


def _fields(call: Call) -> dict[int, int | bytes]:
    try:
        return wire.scalar_fields(call.raw)
    except wire.WireError as exc:
        raise GrpcError(grpc.StatusCode.INTERNAL, str(exc)) from None


def _checked_shard_path(call: Call) -> str:
    fields = _fields(call)
    collection = wire.text_field(fields, _COLLECTION)
    shard_id = wire.int_field(fields, _SHARD)
    path = wire.text_field(fields, _PATH)
    if call.data.collection_exists(collection).exists and shard_id != 0:
        raise GrpcError(
            grpc.StatusCode.NOT_FOUND,
            f"Shard {shard_id} not found in collection '{collection}' on this peer",
        )
    if invalid_path_component(path):
        raise GrpcError(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid path component in '{path}'")
    return path


def storage_list_files(raw: bytes, call: Call) -> bytes:
    _checked_shard_path(call)
    return EMPTY_RESPONSE


def storage_file_exists(raw: bytes, call: Call) -> bytes:
    _checked_shard_path(call)
    return EMPTY_RESPONSE


def storage_read(raw: bytes, call: Call) -> bytes:
    path = _checked_shard_path(call)
    raise GrpcError(grpc.StatusCode.NOT_FOUND, f"File not found: {path}")


_SNAPSHOT_NAME = 3
_LOCATION = 3
_CHECKSUM = 5
_API_KEY = 6
# ShardSnapshotLocation: oneof url = 1 | path = 2.
_LOCATION_URL = 1
_LOCATION_PATH = 2


def _shard(call: Call) -> tuple[dict[int, int | bytes], str, int]:
    fields = _fields(call)
    try:
        return fields, wire.text_field(fields, _COLLECTION), wire.int_field(fields, _SHARD)
    except wire.WireError as exc:
        raise GrpcError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None


def _store(call: Call) -> Any:
    from ..snapshots import store_for

    return store_for(call.data, call.settings, call.faults)


def shard_snapshots_create(raw: bytes, call: Call) -> Any:
    from .snapshots_api import create_response

    _, collection, shard = _shard(call)
    return create_response(_store(call).create_shard_snapshot(collection, shard))


def shard_snapshots_list(raw: bytes, call: Call) -> Any:
    from .snapshots_api import list_response

    _, collection, shard = _shard(call)
    return list_response(_store(call).list_shard(collection, shard))


def shard_snapshots_delete(raw: bytes, call: Call) -> bytes:
    fields, collection, shard = _shard(call)
    _store(call).delete_shard_snapshot(collection, shard, wire.text_field(fields, _SNAPSHOT_NAME))
    return EMPTY_RESPONSE  # DeleteSnapshotResponse: only the time


def shard_snapshots_recover(raw: bytes, call: Call) -> bytes:
    fields, collection, shard = _shard(call)
    store = _store(call)
    store.data.check_shard(collection, shard)
    location = fields.get(_LOCATION, b"")
    where = wire.scalar_fields(location) if isinstance(location, bytes) else {}
    if _LOCATION_URL in where:
        url = wire.text_field(where, _LOCATION_URL)
    elif _LOCATION_PATH in where:
        url = "file://" + wire.text_field(where, _LOCATION_PATH)
    else:
        raise GrpcError(grpc.StatusCode.INVALID_ARGUMENT, "Validation error: snapshot_location is required")
    api_key = wire.text_field(fields, _API_KEY) or None
    checksum = wire.text_field(fields, _CHECKSUM) or None
    store.recover_shard(collection, shard, store.read_location(url, api_key), checksum)
    return EMPTY_RESPONSE  # RecoverSnapshotResponse: only the time


def quotas_get(raw: bytes, call: Call) -> bytes:
    # No quota configured: every field of the answer holds its default.
    return EMPTY_RESPONSE


def quotas_update(raw: bytes, call: Call) -> bytes:
    _fields(call)  # a request that does not parse is refused, as any other
    return EMPTY_RESPONSE


RAW_HANDLERS: dict[str, Handler] = {
    "/qdrant.StorageRead/ListFiles": storage_list_files,
    "/qdrant.StorageRead/FileExists": storage_file_exists,
    "/qdrant.StorageRead/FileLength": storage_read,
    "/qdrant.StorageRead/ReadBytes": storage_read,
    "/qdrant.StorageRead/ReadBytesStream": storage_read,
    "/qdrant.StorageRead/ReadWhole": storage_read,
    "/qdrant.StorageRead/ReadBatch": storage_read,
    "/qdrant.ShardSnapshots/List": shard_snapshots_list,
    "/qdrant.ShardSnapshots/Create": shard_snapshots_create,
    "/qdrant.ShardSnapshots/Delete": shard_snapshots_delete,
    "/qdrant.ShardSnapshots/Recover": shard_snapshots_recover,
    "/qdrant.Quotas/Get": quotas_get,
    "/qdrant.Quotas/Update": quotas_update,
}

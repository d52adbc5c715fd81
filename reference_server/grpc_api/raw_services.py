"""Services without shipped stubs: ``qdrant.StorageRead``, ``qdrant.ShardSnapshots``, ``qdrant.Quotas``.

Requests arrive as bytes; :mod:`reference_server.grpc_api.wire` reads their
leading scalar fields. This server keeps no shard files, so StorageRead finds
none, but it applies Qdrant's checks first (spec §10): a missing shard is
NOT_FOUND and a path with ``..``, a leading ``/`` or a leading ``.`` is
INVALID_ARGUMENT. An empty byte string is a valid encoding of a response whose
fields all hold defaults (no files, ``exists: false``, no snapshots).
"""

from __future__ import annotations

import grpc

from reference_server.grpc_api import wire
from reference_server.grpc_api.call import Call, Handler
from reference_server.grpc_api.errors import GrpcError, not_implemented

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


def _shard_snapshot_collection(call: Call) -> None:
    fields = _fields(call)
    collection = wire.text_field(fields, _COLLECTION)
    call.data.get_collection(collection)  # NOT_FOUND for a missing collection


def shard_snapshots_list(raw: bytes, call: Call) -> bytes:
    _shard_snapshot_collection(call)
    return EMPTY_RESPONSE


def shard_snapshots_change(raw: bytes, call: Call) -> bytes:
    _shard_snapshot_collection(call)
    raise not_implemented(call.path, "snapshots are not supported by this server")


def quotas(raw: bytes, call: Call) -> bytes:
    raise not_implemented(call.path, "quotas are not supported by this server")


RAW_HANDLERS: dict[str, Handler] = {
    "/qdrant.StorageRead/ListFiles": storage_list_files,
    "/qdrant.StorageRead/FileExists": storage_file_exists,
    "/qdrant.StorageRead/FileLength": storage_read,
    "/qdrant.StorageRead/ReadBytes": storage_read,
    "/qdrant.StorageRead/ReadBytesStream": storage_read,
    "/qdrant.StorageRead/ReadWhole": storage_read,
    "/qdrant.StorageRead/ReadBatch": storage_read,
    "/qdrant.ShardSnapshots/List": shard_snapshots_list,
    "/qdrant.ShardSnapshots/Create": shard_snapshots_change,
    "/qdrant.ShardSnapshots/Delete": shard_snapshots_change,
    "/qdrant.ShardSnapshots/Recover": shard_snapshots_change,
    "/qdrant.Quotas/Get": quotas,
    "/qdrant.Quotas/Update": quotas,
}

"""``qdrant.Snapshots``: local mode keeps no snapshots, so lists are empty and changes unsupported."""

from __future__ import annotations

from typing import Any

from qdrant_client import grpc as qg

from reference_server.grpc_api.call import Call, Handler
from reference_server.grpc_api.errors import not_implemented

_UNSUPPORTED = "snapshots are not supported by this server"


def list_snapshots(req: Any, call: Call) -> Any:
    call.data.get_collection(req.collection_name)  # NOT_FOUND for a missing collection
    return qg.ListSnapshotsResponse()


def list_full(req: Any, call: Call) -> Any:
    return qg.ListSnapshotsResponse()


def collection_change(req: Any, call: Call) -> Any:
    call.data.get_collection(req.collection_name)
    raise not_implemented(call.path, _UNSUPPORTED)


def full_change(req: Any, call: Call) -> Any:
    raise not_implemented(call.path, _UNSUPPORTED)


HANDLERS: dict[str, Handler] = {
    "/qdrant.Snapshots/Create": collection_change,
    "/qdrant.Snapshots/List": list_snapshots,
    "/qdrant.Snapshots/Delete": collection_change,
    "/qdrant.Snapshots/CreateFull": full_change,
    "/qdrant.Snapshots/ListFull": list_full,
    "/qdrant.Snapshots/DeleteFull": full_change,
}

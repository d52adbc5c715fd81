"""``qdrant.Snapshots``: collection and full snapshots, kept by :mod:`reference_server.snapshots`."""

from __future__ import annotations

from typing import Any

from qdrant_client import grpc as qg
from qdrant_client.conversions.conversion import RestToGrpc
from qdrant_client.http import models

from ..snapshots import Description, SnapshotStore, store_for
from .call import Call, Handler


def _store(call: Call) -> SnapshotStore:
    return store_for(call.data, call.settings, call.faults)


def description(found: Description) -> Any:
    """A snapshot description as the gRPC message (shared with ``qdrant.ShardSnapshots``)."""
    return RestToGrpc.convert_snapshot_description(models.SnapshotDescription(**found.as_json()))


def create_response(found: Description) -> Any:
    return qg.CreateSnapshotResponse(snapshot_description=description(found))


def list_response(found: list[Description]) -> Any:
    return qg.ListSnapshotsResponse(snapshot_descriptions=[description(d) for d in found])


def create(req: Any, call: Call) -> Any:
    return create_response(_store(call).create_collection_snapshot(req.collection_name))


def list_snapshots(req: Any, call: Call) -> Any:
    return list_response(_store(call).list_collection(req.collection_name))


def delete(req: Any, call: Call) -> Any:
    _store(call).delete_collection_snapshot(req.collection_name, req.snapshot_name)
    return qg.DeleteSnapshotResponse()


def create_full(req: Any, call: Call) -> Any:
    return create_response(_store(call).create_full())


def list_full(req: Any, call: Call) -> Any:
    return list_response(_store(call).list_full())


def delete_full(req: Any, call: Call) -> Any:
    _store(call).delete_full(req.snapshot_name)
    return qg.DeleteSnapshotResponse()


HANDLERS: dict[str, Handler] = {
    "/qdrant.Snapshots/Create": create,
    "/qdrant.Snapshots/List": list_snapshots,
    "/qdrant.Snapshots/Delete": delete,
    "/qdrant.Snapshots/CreateFull": create_full,
    "/qdrant.Snapshots/ListFull": list_full,
    "/qdrant.Snapshots/DeleteFull": delete_full,
}

"""The write side of the data plane, and point reads by id: upsert, retrieve, scroll, count,
payload and vector updates, batches.

A mixin of :class:`reference_server.data_plane.DataPlane`, like
:mod:`reference_server.data_search` (the reads) and :mod:`reference_server.data_admin`
(shard keys, cluster operations, indexes). Inputs are REST-shaped (models or dicts),
results the REST models; see the data plane's docstring for errors and locking.
Writes of a collection with custom sharding are routed through its shard-key table.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from .data_errors import BadRequest, NotFound

if TYPE_CHECKING:
    from qdrant_client import QdrantClient
    from qdrant_client.http import models

    from .shard_keys import ShardKeyTable

T = TypeVar("T")


class PointOps:
    """Point operations; relies on the data plane's plumbing declared below."""

    if TYPE_CHECKING:
        rest_models: Any
        shards: ShardKeyTable

        def _parse(self, model_name: str, body: Any) -> Any: ...
        def _locked(self, collection: str | None = None) -> AbstractContextManager[QdrantClient]: ...
        def _narrow(self, name: str, selector: Any, flt: Any) -> Any: ...

    # -- points ---------------------------------------------------------------

    def upsert(self, name: str, body: models.PointsList | models.PointsBatch | Mapping[str, Any]
               ) -> models.UpdateResult:
        req = self._parse("PointInsertOperations", vector_alias(body))
        m = self.rest_models
        if isinstance(req, m.PointsBatch):
            points: Any = m.Batch(ids=req.batch.ids, vectors=req.batch.vectors, payloads=req.batch.payloads)
            ids = list(req.batch.ids)
        else:
            points = req.points
            ids = [p.id for p in req.points]
        with self._locked(name) as client:
            self.shards.route_write(name, req.shard_key, ids)
            return client.upsert(name, points=points, update_filter=req.update_filter,
                                 update_mode=req.update_mode)

    def retrieve(self, name: str, body: models.PointRequest | Mapping[str, Any]) -> list[models.Record]:
        req = self._parse("PointRequest", body)
        with self._locked(name) as client:
            visible = self.shards.ids_for(name, req.shard_key)
            return client.retrieve(
                name,
                ids=[i for i in req.ids if visible is None or i in visible],
                with_payload=_default(req.with_payload, True),
                with_vectors=_default(req.with_vector, False),
            )

    def get_point(self, name: str, point_id: int | str) -> models.Record:
        with self._locked(name) as client:
            found = client.retrieve(name, ids=[point_id], with_payload=True, with_vectors=True)
        if not found:
            raise NotFound(f"Not found: No point with id {point_id} found")
        return found[0]

    def delete_points(self, name: str, body: models.PointIdsList | models.FilterSelector | Mapping[str, Any]
                      ) -> models.UpdateResult:
        selector = self._parse("PointsSelector", body)
        with self._locked(name) as client:
            return client.delete(name, points_selector=selector)

    def scroll(self, name: str, body: models.ScrollRequest | Mapping[str, Any] | None = None
               ) -> models.ScrollResult:
        req = self._parse("ScrollRequest", body)
        with self._locked(name) as client:
            points, next_offset = client.scroll(
                name,
                scroll_filter=self._narrow(name, req.shard_key, req.filter),
                limit=_default(req.limit, 10),
                order_by=req.order_by,
                offset=req.offset,
                with_payload=_default(req.with_payload, True),
                with_vectors=_default(req.with_vector, False),
            )
        return self.rest_models.ScrollResult(points=points, next_page_offset=next_offset)

    def count(self, name: str, body: models.CountRequest | Mapping[str, Any] | None = None
              ) -> models.CountResult:
        req = self._parse("CountRequest", body)
        with self._locked(name) as client:
            return client.count(name, count_filter=self._narrow(name, req.shard_key, req.filter),
                                exact=_default(req.exact, True))

    # -- payload and vectors ----------------------------------------------------

    def set_payload(self, name: str, body: models.SetPayload | Mapping[str, Any]) -> models.UpdateResult:
        req = self._parse("SetPayload", body)
        selector = _selector(req.points, req.filter)
        with self._locked(name) as client:
            return client.set_payload(name, payload=req.payload, points=selector, key=req.key)

    def overwrite_payload(self, name: str, body: models.SetPayload | Mapping[str, Any]
                          ) -> models.UpdateResult:
        req = self._parse("SetPayload", body)
        selector = _selector(req.points, req.filter)
        with self._locked(name) as client:
            return client.overwrite_payload(name, payload=req.payload, points=selector)

    def delete_payload(self, name: str, body: models.DeletePayload | Mapping[str, Any]
                       ) -> models.UpdateResult:
        req = self._parse("DeletePayload", body)
        selector = _selector(req.points, req.filter)
        with self._locked(name) as client:
            return client.delete_payload(name, keys=req.keys, points=selector)

    def clear_payload(self, name: str, body: models.PointIdsList | models.FilterSelector | Mapping[str, Any]
                      ) -> models.UpdateResult:
        selector = self._parse("PointsSelector", body)
        with self._locked(name) as client:
            return client.clear_payload(name, points_selector=selector)

    def update_vectors(self, name: str, body: models.UpdateVectors | Mapping[str, Any]
                       ) -> models.UpdateResult:
        req = self._parse("UpdateVectors", vector_alias(body))
        with self._locked(name) as client:
            return client.update_vectors(name, points=req.points, update_filter=req.update_filter)

    def batch_update(self, name: str, body: models.UpdateOperations | Mapping[str, Any]
                     ) -> list[models.UpdateResult]:
        if isinstance(body, Mapping) and isinstance(body.get("operations"), list):
            body = {**body, "operations": [_op_alias(op) for op in body["operations"]]}
        req = self._parse("UpdateOperations", body)
        m = self.rest_models
        with self._locked(name) as client:
            for op in req.operations:
                if isinstance(op, m.UpsertOperation):
                    inner = op.upsert
                    ids = list(inner.batch.ids) if isinstance(inner, m.PointsBatch) else [p.id for p in inner.points]
                    self.shards.route_write(name, inner.shard_key, ids)
            return client.batch_update_points(name, update_operations=req.operations)

    def delete_vectors(self, name: str, body: models.DeleteVectors | Mapping[str, Any]
                       ) -> models.UpdateResult:
        req = self._parse("DeleteVectors", body)
        selector = _selector(req.points, req.filter)
        with self._locked(name) as client:
            return client.delete_vectors(name, vectors=req.vector, points=selector)


def _default(value: T | None, fallback: T) -> T:
    return fallback if value is None else value


def vector_alias(body: Any) -> Any:
    """``vectors`` read as ``vector`` in each point of a REST body, as Qdrant's serde alias does.

    Clients written for Qdrant send either name; the pydantic models know only
    ``vector``. Returns the body (a new dict when something was renamed).
    """
    if not isinstance(body, Mapping) or not isinstance(body.get("points"), list):
        return body
    points = [
        {**{k: v for k, v in p.items() if k != "vectors"}, "vector": p["vectors"]}
        if isinstance(p, Mapping) and "vectors" in p and "vector" not in p else p
        for p in body["points"]
    ]
    return {**body, "points": points}


def _op_alias(op: Any) -> Any:
    """:func:`vector_alias` inside one ``upsert`` / ``update_vectors`` operation of a batch."""
    if not isinstance(op, Mapping):
        return op
    return {k: vector_alias(v) if k in ("upsert", "update_vectors") else v for k, v in op.items()}


def _selector(points: Any, flt: Any) -> Any:
    """Qdrant's ``points`` / ``filter`` pair: exactly one of them must be given."""
    if (points is None) == (flt is None):
        raise BadRequest("Wrong input: Either list of point ids or filter must be provided")
    return points if points is not None else flt

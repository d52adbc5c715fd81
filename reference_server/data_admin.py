"""Collection administration the local-mode backend lacks: shard keys, cluster set-up, indexes.

A mixin of :class:`reference_server.data_plane.DataPlane`. The server runs as
one peer (``SINGLE_NODE_PEER_ID``) holding one local shard, ``0``, which also
holds the points of every shard key (see :mod:`reference_server.shard_keys`).

* shard keys: ``create_shard_key`` / ``delete_shard_key`` / ``list_shard_keys``;
* ``update_cluster``: Qdrant's collection cluster operations. Moving or
  replicating a shard names peers, and the only peer here is this one, so those
  are refused as a single node refuses them (400), not left unanswered;
* payload indexes: QdrantLocal accepts and ignores them; the index is recorded
  so ``payload_schema`` shows it, as Qdrant's collection info does;
* named vectors: QdrantLocal's own ``create_vector_name`` / ``delete_vector_name``;
* ``optimizations``: an idle optimizer (local mode never optimizes).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from .data_errors import BadRequest, NotFound

if TYPE_CHECKING:
    from qdrant_client import QdrantClient
    from qdrant_client.http import models

SINGLE_NODE_PEER_ID = 1
LOCAL_SHARD_ID = 0


class AdminOps:
    """Administration operations; relies on the data plane's plumbing declared below."""

    if TYPE_CHECKING:
        rest_models: Any
        shards: Any

        def _parse(self, model_name: str, body: Any) -> Any: ...
        def _locked(self, collection: str | None = None) -> AbstractContextManager[QdrantClient]: ...
        def _invalid(self, message: str) -> Exception: ...

    _indexes: dict[str, dict[str, Any]]

    def _index_table(self) -> dict[str, dict[str, Any]]:
        if not hasattr(self, "_indexes"):
            self._indexes = {}
        return self._indexes

    def forget_indexes(self, name: str) -> None:
        self._index_table().pop(name, None)

    def with_admin_state(self, name: str, info: models.CollectionInfo) -> models.CollectionInfo:
        """``info`` with what this layer keeps: payload indexes and the sharding method."""
        m = self.rest_models
        indexes = self._index_table().get(name)
        if indexes:
            info.payload_schema = {
                field: m.PayloadIndexInfo(data_type=schema, points=info.points_count or 0)
                for field, schema in indexes.items()
            }
        if self.shards.is_custom(name):
            info.config.params.sharding_method = m.ShardingMethod.CUSTOM
        return info

    # -- cluster view -----------------------------------------------------------

    def collection_cluster_info(self, name: str) -> models.CollectionClusterInfo:
        m = self.rest_models
        with self._locked(name) as client:
            points = client.count(name, exact=True).count
        return m.CollectionClusterInfo(
            peer_id=SINGLE_NODE_PEER_ID,
            shard_count=1,
            local_shards=[m.LocalShardInfo(shard_id=LOCAL_SHARD_ID, points_count=points,
                                           state=m.ReplicaState.ACTIVE)],
            remote_shards=[],
            shard_transfers=[],
        )

    def check_shard(self, name: str, shard_id: int | str) -> int:
        """The shard id as a number, or NotFound as Qdrant words it for a shard this peer lacks."""
        try:
            number = int(shard_id)
        except (TypeError, ValueError):
            raise BadRequest(f"Wrong input: Unable to parse shard id `{shard_id}`") from None
        with self._locked(name):
            pass
        if number != LOCAL_SHARD_ID:
            raise NotFound(f"Not found: Shard {number} does not exist")
        return number

    # -- shard keys ---------------------------------------------------------------

    def list_shard_keys(self, name: str) -> models.ShardKeysResponse:
        m = self.rest_models
        with self._locked(name):
            return m.ShardKeysResponse(shard_keys=[m.ShardKeyDescription(key=k) for k in self.shards.keys(name)])

    def create_shard_key(self, name: str, body: models.CreateShardingKey | Mapping[str, Any]) -> bool:
        req = self._parse("CreateShardingKey", body)
        with self._locked(name):
            self.shards.create(name, req.shard_key)
        return True

    def delete_shard_key(self, name: str, body: models.DropShardingKey | Mapping[str, Any]) -> bool:
        req = self._parse("DropShardingKey", body)
        m = self.rest_models
        with self._locked(name) as client:
            held = self.shards.drop(name, req.shard_key)
            if held:
                client.delete(name, points_selector=m.PointIdsList(points=sorted(held, key=str)))
        return True

    # -- collection cluster operations ------------------------------------------------

    def update_cluster(self, name: str, body: models.ClusterOperations | Mapping[str, Any]) -> bool:
        op = self._parse("ClusterOperations", body)
        m = self.rest_models
        if isinstance(op, m.CreateShardingKeyOperation):
            return self.create_shard_key(name, op.create_sharding_key)
        if isinstance(op, m.DropShardingKeyOperation):
            return self.delete_shard_key(name, op.drop_sharding_key)
        with self._locked(name):
            pass
        inner: Any = next(iter(op.model_dump(exclude_none=True).values()), {})
        peers = [inner.get(k) for k in ("from_peer_id", "to_peer_id", "peer_id") if isinstance(inner, dict)]
        for peer in peers:
            if peer is not None and peer != SINGLE_NODE_PEER_ID:
                raise BadRequest(f"Wrong input: Peer {peer} does not exist")
        if isinstance(op, m.MoveShardOperation | m.ReplicateShardOperation):
            raise BadRequest("Wrong input: Shard transfer source and target peer are the same")
        if isinstance(op, m.DropReplicaOperation):
            raise BadRequest("Wrong input: Cannot drop the last replica of a shard")
        if isinstance(op, m.AbortTransferOperation | m.RestartTransferOperation):
            raise BadRequest("Wrong input: There is no such shard transfer")
        raise BadRequest("Wrong input: Resharding needs distributed mode, which this node does not run")

    # -- payload indexes ----------------------------------------------------------------

    def create_field_index(self, name: str, body: models.CreateFieldIndex | Mapping[str, Any]
                           ) -> models.UpdateResult:
        req = self._parse("CreateFieldIndex", body)
        m = self.rest_models
        schema = req.field_schema
        data_type = getattr(schema, "type", schema)
        if data_type is None:
            raise self._invalid("Validation error in JSON body: field_schema is required")
        with self._locked(name) as client, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # local mode's "indexes have no effect": recorded here instead
            client.create_payload_index(name, req.field_name, field_schema=schema)
            self._index_table().setdefault(name, {})[req.field_name] = m.PayloadSchemaType(
                getattr(data_type, "value", data_type))
        return m.UpdateResult(operation_id=0, status=m.UpdateStatus.COMPLETED)

    def delete_field_index(self, name: str, field_name: str) -> models.UpdateResult:
        m = self.rest_models
        with self._locked(name) as client:
            client.delete_payload_index(name, field_name)
            self._index_table().get(name, {}).pop(field_name, None)
        return m.UpdateResult(operation_id=0, status=m.UpdateStatus.COMPLETED)

    # -- named vectors -------------------------------------------------------------------

    def create_vector_name(self, name: str, vector_name: str, body: Any) -> models.UpdateResult:
        config = self._parse("VectorNameConfig", body)
        with self._locked(name) as client:
            return client.create_vector_name(name, vector_name, config)

    def delete_vector_name(self, name: str, vector_name: str) -> models.UpdateResult:
        with self._locked(name) as client:
            vectors = client.get_collection(name).config.params.vectors
            sparse = client.get_collection(name).config.params.sparse_vectors or {}
            if not (isinstance(vectors, dict) and vector_name in vectors) and vector_name not in sparse:
                raise NotFound(f"Not found: Vector with name {vector_name} does not exist")
            return client.delete_vector_name(name, vector_name)

    # -- snapshot support ------------------------------------------------------------------

    def export(self, name: str, page: int = 256) -> tuple[models.CollectionInfo, list[models.Record], Any]:
        """Collection info, every point (vectors and payload) and the sharding state, read atomically."""
        records: list[Any] = []
        with self._locked(name) as client:
            info = self.with_admin_state(name, client.get_collection(name))
            offset: Any = None
            while True:
                found, offset = client.scroll(name, limit=page, offset=offset, with_payload=True, with_vectors=True)
                records.extend(found)
                if offset is None:
                    break
            return info, records, self.shards.snapshot(name)

    def replace(self, name: str, create: Mapping[str, Any], points: Sequence[Mapping[str, Any]],
                indexes: Mapping[str, str], sharding: Any) -> None:
        """Make ``name`` hold exactly what a snapshot recorded (created if missing), atomically."""
        m = self.rest_models
        req = self._parse("CreateCollection", create)
        parsed = [self._parse("PointStruct", p) for p in points]
        with self._locked() as client:
            if client.collection_exists(name):
                client.delete_collection(name)
            client.create_collection(name, vectors_config=req.vectors, sparse_vectors_config=req.sparse_vectors)
            if parsed:
                client.upsert(name, points=parsed)
            table = self._index_table()
            table.pop(name, None)
            for field, schema in indexes.items():
                table.setdefault(name, {})[field] = m.PayloadSchemaType(schema)
            self.shards.restore(name, sharding)

    # -- optimizer ----------------------------------------------------------------------

    def optimizations(self, name: str) -> models.OptimizationsResponse:
        m = self.rest_models
        with self._locked(name):
            return m.OptimizationsResponse(
                summary=m.OptimizationsSummary(queued_optimizations=0, queued_segments=0, queued_points=0,
                                               idle_segments=1),
                running=[],
            )

"""``qdrant.Collections``: gRPC messages ↔ REST models around the data plane.

Imported only once qdrant_client has loaded (the server waits for the data plane).
"""

from __future__ import annotations

from typing import Any

from qdrant_client import grpc as qg
from qdrant_client.conversions.conversion import GrpcToRest, RestToGrpc
from qdrant_client.http import models

from .call import Call, Handler


def get(req: Any, call: Call) -> Any:
    info = call.data.get_collection(req.collection_name)
    return qg.GetCollectionInfoResponse(result=RestToGrpc.convert_collection_info(info))


def list_collections(req: Any, call: Call) -> Any:
    found = call.data.list_collections()
    return qg.ListCollectionsResponse(
        collections=[qg.CollectionDescription(name=c.name) for c in found.collections]
    )


def create(req: Any, call: Call) -> Any:
    # Local mode keeps only vectors, sparse vectors and metadata (the server adds the
    # sharding method); the rest of the
    # request is accepted and ignored, as a single node would not act on most of it.
    body = models.CreateCollection(
        vectors=GrpcToRest.convert_vectors_config(req.vectors_config) if req.HasField("vectors_config")
        else None,
        sparse_vectors=GrpcToRest.convert_sparse_vector_config(req.sparse_vectors_config)
        if req.HasField("sparse_vectors_config") else None,
        metadata=GrpcToRest.convert_payload(req.metadata) if len(req.metadata) else None,
        sharding_method=GrpcToRest.convert_sharding_method(req.sharding_method)
        if req.HasField("sharding_method") else None,
    )
    return qg.CollectionOperationResponse(result=call.data.create_collection(req.collection_name, body))


def update(req: Any, call: Call) -> Any:
    body = GrpcToRest.convert_update_collection(req)
    return qg.CollectionOperationResponse(result=call.data.update_collection(req.collection_name, body))


def delete(req: Any, call: Call) -> Any:
    return qg.CollectionOperationResponse(result=call.data.delete_collection(req.collection_name))


def update_aliases(req: Any, call: Call) -> Any:
    body = models.ChangeAliasesOperation(
        actions=[GrpcToRest.convert_alias_operations(a) for a in req.actions]
    )
    return qg.CollectionOperationResponse(result=call.data.update_aliases(body))


def _aliases(found: models.CollectionsAliasesResponse) -> Any:
    return qg.ListAliasesResponse(
        aliases=[RestToGrpc.convert_alias_description(a) for a in found.aliases]
    )


def list_aliases(req: Any, call: Call) -> Any:
    return _aliases(call.data.list_aliases())


def list_collection_aliases(req: Any, call: Call) -> Any:
    return _aliases(call.data.list_collection_aliases(req.collection_name))


def collection_exists(req: Any, call: Call) -> Any:
    found = call.data.collection_exists(req.collection_name)
    return qg.CollectionExistsResponse(result=qg.CollectionExists(exists=found.exists))


def collection_cluster_info(req: Any, call: Call) -> Any:
    info = call.data.collection_cluster_info(req.collection_name)
    return RestToGrpc.convert_collection_cluster_info(info)


def list_shard_keys(req: Any, call: Call) -> Any:
    found = call.data.list_shard_keys(req.collection_name)
    return qg.ListShardKeysResponse(
        shard_keys=[qg.ShardKeyDescription(key=RestToGrpc.convert_shard_key(k.key))
                    for k in found.shard_keys or []]
    )


def create_shard_key(req: Any, call: Call) -> Any:
    body = GrpcToRest.convert_create_shard_key(req.request)
    return qg.CreateShardKeyResponse(result=call.data.create_shard_key(req.collection_name, body))


def delete_shard_key(req: Any, call: Call) -> Any:
    body = GrpcToRest.convert_delete_shard_key(req.request)
    return qg.DeleteShardKeyResponse(result=call.data.delete_shard_key(req.collection_name, body))


def update_cluster_setup(req: Any, call: Call) -> Any:
    which = req.WhichOneof("operation")
    if which is None:
        raise ValueError("no cluster operation given")
    body = GrpcToRest.convert_cluster_operations(getattr(req, which))
    return qg.UpdateCollectionClusterSetupResponse(result=call.data.update_cluster(req.collection_name, body))


HANDLERS: dict[str, Handler] = {
    "/qdrant.Collections/Get": get,
    "/qdrant.Collections/List": list_collections,
    "/qdrant.Collections/Create": create,
    "/qdrant.Collections/Update": update,
    "/qdrant.Collections/Delete": delete,
    "/qdrant.Collections/UpdateAliases": update_aliases,
    "/qdrant.Collections/ListCollectionAliases": list_collection_aliases,
    "/qdrant.Collections/ListAliases": list_aliases,
    "/qdrant.Collections/CollectionClusterInfo": collection_cluster_info,
    "/qdrant.Collections/CollectionExists": collection_exists,
    "/qdrant.Collections/UpdateCollectionClusterSetup": update_cluster_setup,
    "/qdrant.Collections/CreateShardKey": create_shard_key,
    "/qdrant.Collections/DeleteShardKey": delete_shard_key,
    "/qdrant.Collections/ListShardKeys": list_shard_keys,
}

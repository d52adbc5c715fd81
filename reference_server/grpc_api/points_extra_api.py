"""``qdrant.Points``, continued: groups, discover, matrix, batch updates, payload indexes, named vectors.

Imported only once qdrant_client has loaded. Requests are turned into the
REST shapes the data plane takes, as in :mod:`reference_server.grpc_api.points_api`.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from qdrant_client import grpc as qg
from qdrant_client.conversions.conversion import GrpcToRest, RestToGrpc, grpc_field_type_to_payload_schema
from qdrant_client.http import models

from .call import Call, Handler
from .points_api import (
    _legacy_common,
    _optional,
    _recommend_body,
    _scored,
    _search_body,
    _shard_key,
    _update_response,
)


def _group_fields(req: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"group_by": req.group_by, "group_size": req.group_size or None}
    fields["with_lookup"] = _optional(req, "with_lookup", GrpcToRest.convert_with_lookup)
    return fields


def _groups(result: models.GroupsResult) -> Any:
    return RestToGrpc.convert_groups_result(result)


def search_groups(req: Any, call: Call) -> Any:
    body = {**_search_body(req), **_group_fields(req)}
    return qg.SearchGroupsResponse(result=_groups(call.data.search_groups(req.collection_name, body)))


def recommend_groups(req: Any, call: Call) -> Any:
    body = {**_recommend_body(req), **_group_fields(req)}
    return qg.RecommendGroupsResponse(result=_groups(call.data.recommend_groups(req.collection_name, body)))


def query_groups(req: Any, call: Call) -> Any:
    # QueryPointGroups shares its query fields with QueryPoints: convert through that message.
    shared = qg.QueryPoints()
    for descriptor, value in req.ListFields():
        if descriptor.name in shared.DESCRIPTOR.fields_by_name:
            target = getattr(shared, descriptor.name)
            if descriptor.is_repeated:
                target.extend(value)
            elif descriptor.message_type is not None:
                target.CopyFrom(value)
            else:
                setattr(shared, descriptor.name, value)
    query = GrpcToRest.convert_query_points(shared)
    body = models.QueryGroupsRequest(**{k: getattr(query, k) for k in (
        "shard_key", "prefetch", "query", "using", "filter", "params", "score_threshold", "with_vector",
        "with_payload", "lookup_from", "limit")}, **_group_fields(req))
    return qg.QueryGroupsResponse(result=_groups(call.data.query_groups(req.collection_name, body)))


def _example(example: Any) -> Any:
    kind = example.WhichOneof("example")
    if kind == "id":
        return GrpcToRest.convert_point_id(example.id)
    if kind == "vector":
        return GrpcToRest.convert_vector(example.vector)
    raise ValueError("a vector example needs an id or a vector")


def _discover_body(req: Any) -> dict[str, Any]:
    body = _legacy_common(req)
    if req.HasField("target"):
        body["target"] = _example(req.target.single)
    body["context"] = [{"positive": _example(p.positive), "negative": _example(p.negative)} for p in req.context]
    body["using"] = _optional(req, "using")
    body["lookup_from"] = _optional(req, "lookup_from", GrpcToRest.convert_lookup_location)
    return body


def discover(req: Any, call: Call) -> Any:
    return qg.DiscoverResponse(result=_scored(call.data.discover(req.collection_name, _discover_body(req))))


def discover_batch(req: Any, call: Call) -> Any:
    results = [qg.BatchResult(result=_scored(call.data.discover(req.collection_name, _discover_body(one))))
               for one in req.discover_points]
    return qg.DiscoverBatchResponse(result=results)


def _matrix_body(req: Any) -> models.SearchMatrixRequest:
    return models.SearchMatrixRequest(
        shard_key=_shard_key(req),
        filter=_optional(req, "filter", GrpcToRest.convert_filter),
        sample=_optional(req, "sample"),
        limit=_optional(req, "limit"),
        using=_optional(req, "using"),
    )


def matrix_pairs(req: Any, call: Call) -> Any:
    found = call.data.matrix_pairs(req.collection_name, _matrix_body(req))
    return qg.SearchMatrixPairsResponse(result=RestToGrpc.convert_search_matrix_pairs(found))


def matrix_offsets(req: Any, call: Call) -> Any:
    found = call.data.matrix_offsets(req.collection_name, _matrix_body(req))
    return qg.SearchMatrixOffsetsResponse(result=RestToGrpc.convert_search_matrix_offsets(found))


def update_batch(req: Any, call: Call) -> Any:
    body = models.UpdateOperations(operations=[GrpcToRest.convert_points_update_operation(op)
                                               for op in req.operations])
    results = call.data.batch_update(req.collection_name, body)
    return qg.UpdateBatchResponse(result=[RestToGrpc.convert_update_result(r) for r in results])


def create_field_index(req: Any, call: Call) -> Any:
    schema = GrpcToRest.convert_payload_schema_type(grpc_field_type_to_payload_schema(req.field_type))
    body = models.CreateFieldIndex(field_name=req.field_name, field_schema=schema)
    return _update_response(call.data.create_field_index(req.collection_name, body))


def delete_field_index(req: Any, call: Call) -> Any:
    return _update_response(call.data.delete_field_index(req.collection_name, req.field_name))


def create_vector_name(req: Any, call: Call) -> Any:
    kind = req.WhichOneof("config") if "config" in req.DESCRIPTOR.oneofs_by_name else None
    if kind is None:
        kind = "dense_config" if req.HasField("dense_config") else "sparse_config"
    config = json_format.MessageToDict(getattr(req, kind), preserving_proto_field_name=True)
    body = {"dense": config} if kind == "dense_config" else {"sparse": config}
    return _update_response(call.data.create_vector_name(req.collection_name, req.vector_name, body))


def delete_vector_name(req: Any, call: Call) -> Any:
    return _update_response(call.data.delete_vector_name(req.collection_name, req.vector_name))


HANDLERS: dict[str, Handler] = {
    "/qdrant.Points/SearchGroups": search_groups,
    "/qdrant.Points/RecommendGroups": recommend_groups,
    "/qdrant.Points/QueryGroups": query_groups,
    "/qdrant.Points/Discover": discover,
    "/qdrant.Points/DiscoverBatch": discover_batch,
    "/qdrant.Points/SearchMatrixPairs": matrix_pairs,
    "/qdrant.Points/SearchMatrixOffsets": matrix_offsets,
    "/qdrant.Points/UpdateBatch": update_batch,
    "/qdrant.Points/CreateFieldIndex": create_field_index,
    "/qdrant.Points/DeleteFieldIndex": delete_field_index,
    "/qdrant.Points/CreateVectorName": create_vector_name,
    "/qdrant.Points/DeleteVectorName": delete_vector_name,
}

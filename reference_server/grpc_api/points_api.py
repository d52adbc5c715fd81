"""``qdrant.Points``: gRPC messages ↔ REST models around the data plane.

Imported only once qdrant_client has loaded (the server waits for the data plane).
Legacy Search and Recommend are answered through the data plane's query path.
"""

from __future__ import annotations

from typing import Any

from qdrant_client import grpc as qg
from qdrant_client.conversions.conversion import GrpcToRest, RestToGrpc
from qdrant_client.http import models

from .call import Call, Handler


def _optional(req: Any, field: str, convert: Any = None) -> Any:
    # Request types share helpers; a field one of them lacks reads as unset.
    if field not in req.DESCRIPTOR.fields_by_name or not req.HasField(field):
        return None
    value = getattr(req, field)
    return convert(value) if convert is not None else value


def _selector_fields(selector: Any) -> tuple[Any, Any]:
    """gRPC PointsSelector → the REST ``(points, filter)`` pair."""
    rest = GrpcToRest.convert_points_selector(selector)
    if isinstance(rest, models.PointIdsList):
        return rest.points, None
    return None, rest.filter


def _shard_key(req: Any) -> Any:
    return _optional(req, "shard_key_selector", GrpcToRest.convert_shard_key_selector)


def _update_response(result: models.UpdateResult) -> Any:
    return qg.PointsOperationResponse(result=RestToGrpc.convert_update_result(result))


def _scored(points: list[models.ScoredPoint]) -> list[Any]:
    return [RestToGrpc.convert_scored_point(p) for p in points]


# -- writes -------------------------------------------------------------------


def upsert(req: Any, call: Call) -> Any:
    body = models.PointsList(
        points=[GrpcToRest.convert_point_struct(p) for p in req.points],
        update_filter=_optional(req, "update_filter", GrpcToRest.convert_filter),
        update_mode=_optional(req, "update_mode", GrpcToRest.convert_update_mode),
        shard_key=_shard_key(req),
    )
    return _update_response(call.data.upsert(req.collection_name, body))


def delete(req: Any, call: Call) -> Any:
    selector = GrpcToRest.convert_points_selector(req.points)
    return _update_response(call.data.delete_points(req.collection_name, selector))


def _set_payload_body(req: Any) -> models.SetPayload:
    points, flt = _selector_fields(req.points_selector)
    return models.SetPayload(
        payload=GrpcToRest.convert_payload(req.payload),
        points=points,
        filter=flt,
        key=_optional(req, "key"),
    )


def set_payload(req: Any, call: Call) -> Any:
    return _update_response(call.data.set_payload(req.collection_name, _set_payload_body(req)))


def overwrite_payload(req: Any, call: Call) -> Any:
    return _update_response(call.data.overwrite_payload(req.collection_name, _set_payload_body(req)))


def delete_payload(req: Any, call: Call) -> Any:
    points, flt = _selector_fields(req.points_selector)
    body = models.DeletePayload(keys=list(req.keys), points=points, filter=flt)
    return _update_response(call.data.delete_payload(req.collection_name, body))


def clear_payload(req: Any, call: Call) -> Any:
    selector = GrpcToRest.convert_points_selector(req.points)
    return _update_response(call.data.clear_payload(req.collection_name, selector))


def update_vectors(req: Any, call: Call) -> Any:
    body = models.UpdateVectors(
        points=[GrpcToRest.convert_point_vectors(p) for p in req.points],
        update_filter=_optional(req, "update_filter", GrpcToRest.convert_filter),
    )
    return _update_response(call.data.update_vectors(req.collection_name, body))


def delete_vectors(req: Any, call: Call) -> Any:
    points, flt = _selector_fields(req.points_selector)
    body = models.DeleteVectors(
        points=points, filter=flt, vector=GrpcToRest.convert_vectors_selector(req.vectors)
    )
    return _update_response(call.data.delete_vectors(req.collection_name, body))


# -- reads --------------------------------------------------------------------


def get(req: Any, call: Call) -> Any:
    body = models.PointRequest(
        ids=[GrpcToRest.convert_point_id(i) for i in req.ids],
        with_payload=_optional(req, "with_payload", GrpcToRest.convert_with_payload_selector),
        with_vector=_optional(req, "with_vectors", GrpcToRest.convert_with_vectors_selector),
        shard_key=_shard_key(req),
    )
    records = call.data.retrieve(req.collection_name, body)
    return qg.GetResponse(result=[RestToGrpc.convert_retrieved_point(r) for r in records])


def scroll(req: Any, call: Call) -> Any:
    body = models.ScrollRequest(
        offset=_optional(req, "offset", GrpcToRest.convert_point_id),
        limit=_optional(req, "limit"),
        filter=_optional(req, "filter", GrpcToRest.convert_filter),
        with_payload=_optional(req, "with_payload", GrpcToRest.convert_with_payload_selector),
        with_vector=_optional(req, "with_vectors", GrpcToRest.convert_with_vectors_selector),
        order_by=_optional(req, "order_by", GrpcToRest.convert_order_by),
        shard_key=_shard_key(req),
    )
    found = call.data.scroll(req.collection_name, body)
    response = qg.ScrollResponse(result=[RestToGrpc.convert_retrieved_point(r) for r in found.points])
    if found.next_page_offset is not None:
        response.next_page_offset.CopyFrom(RestToGrpc.convert_extended_point_id(found.next_page_offset))
    return response


def count(req: Any, call: Call) -> Any:
    body = models.CountRequest(
        filter=_optional(req, "filter", GrpcToRest.convert_filter),
        exact=_optional(req, "exact"),
        shard_key=_shard_key(req),
    )
    found = call.data.count(req.collection_name, body)
    return qg.CountResponse(result=qg.CountResult(count=found.count))


def query(req: Any, call: Call) -> Any:
    found = call.data.query(req.collection_name, GrpcToRest.convert_query_points(req))
    return qg.QueryResponse(result=_scored(found.points))


def query_batch(req: Any, call: Call) -> Any:
    body = models.QueryRequestBatch(searches=[GrpcToRest.convert_query_points(q) for q in req.query_points])
    found = call.data.query_batch(req.collection_name, body)
    return qg.QueryBatchResponse(result=[qg.BatchResult(result=_scored(r.points)) for r in found])


def _legacy_common(req: Any) -> dict[str, Any]:
    return {
        "filter": _optional(req, "filter", GrpcToRest.convert_filter),
        "params": _optional(req, "params", GrpcToRest.convert_search_params),
        "limit": req.limit,
        "offset": _optional(req, "offset"),
        "with_payload": _optional(req, "with_payload", GrpcToRest.convert_with_payload_selector),
        "with_vector": _optional(req, "with_vectors", GrpcToRest.convert_with_vectors_selector),
        "score_threshold": _optional(req, "score_threshold"),
        "shard_key": _shard_key(req),
    }


def _search_body(req: Any) -> dict[str, Any]:
    name = req.vector_name if req.HasField("vector_name") else None
    vector: Any = list(req.vector)
    if req.HasField("sparse_indices"):
        vector = {"indices": list(req.sparse_indices.data), "values": vector}
    body = _legacy_common(req)
    body["vector"] = vector if name is None else {"name": name, "vector": vector}
    return body


def search(req: Any, call: Call) -> Any:
    return qg.SearchResponse(result=_scored(call.data.search(req.collection_name, _search_body(req))))


def search_batch(req: Any, call: Call) -> Any:
    results = []
    for one in req.search_points:
        results.append(qg.BatchResult(result=_scored(call.data.search(req.collection_name, _search_body(one)))))
    return qg.SearchBatchResponse(result=results)


def _recommend_body(req: Any) -> dict[str, Any]:
    body = _legacy_common(req)
    body["positive"] = [GrpcToRest.convert_point_id(p) for p in req.positive] + [
        GrpcToRest.convert_vector(v) for v in req.positive_vectors
    ]
    body["negative"] = [GrpcToRest.convert_point_id(p) for p in req.negative] + [
        GrpcToRest.convert_vector(v) for v in req.negative_vectors
    ]
    body["strategy"] = _optional(req, "strategy", GrpcToRest.convert_recommend_strategy)
    body["using"] = _optional(req, "using")
    body["lookup_from"] = _optional(req, "lookup_from", GrpcToRest.convert_lookup_location)
    return body


def recommend(req: Any, call: Call) -> Any:
    found = call.data.recommend(req.collection_name, _recommend_body(req))
    return qg.RecommendResponse(result=_scored(found))


def recommend_batch(req: Any, call: Call) -> Any:
    results = []
    for one in req.recommend_points:
        found = call.data.recommend(req.collection_name, _recommend_body(one))
        results.append(qg.BatchResult(result=_scored(found)))
    return qg.RecommendBatchResponse(result=results)


def facet(req: Any, call: Call) -> Any:
    body = models.FacetRequest(
        key=req.key,
        filter=_optional(req, "filter", GrpcToRest.convert_filter),
        limit=_optional(req, "limit"),
        exact=_optional(req, "exact"),
    )
    found = call.data.facet(req.collection_name, body)
    return qg.FacetResponse(hits=[RestToGrpc.convert_facet_value_hit(h) for h in found.hits])


HANDLERS: dict[str, Handler] = {
    "/qdrant.Points/Upsert": upsert,
    "/qdrant.Points/Delete": delete,
    "/qdrant.Points/Get": get,
    "/qdrant.Points/UpdateVectors": update_vectors,
    "/qdrant.Points/DeleteVectors": delete_vectors,
    "/qdrant.Points/SetPayload": set_payload,
    "/qdrant.Points/OverwritePayload": overwrite_payload,
    "/qdrant.Points/DeletePayload": delete_payload,
    "/qdrant.Points/ClearPayload": clear_payload,
    "/qdrant.Points/Search": search,
    "/qdrant.Points/SearchBatch": search_batch,
    "/qdrant.Points/Scroll": scroll,
    "/qdrant.Points/Recommend": recommend,
    "/qdrant.Points/RecommendBatch": recommend_batch,
    "/qdrant.Points/Count": count,
    "/qdrant.Points/Query": query,
    "/qdrant.Points/QueryBatch": query_batch,
    "/qdrant.Points/Facet": facet,
}

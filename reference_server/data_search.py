"""The read side of the data plane: query, legacy search/recommend/discover, groups, matrix, facet.

A mixin of :class:`reference_server.data_plane.DataPlane`, kept apart because
the reads are many and alike. Inputs are REST-shaped (models or dicts), results
the REST models; see the data plane's docstring for errors and locking.

Qdrant's legacy ``search``, ``recommend`` and ``discover`` bodies have no model
in qdrant-client 1.20 any more; they arrive as JSON and are answered as the
matching universal query (``nearest``, ``recommend``, ``discover``), which is
what Qdrant itself does with them since v1.10.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from qdrant_client import QdrantClient
    from qdrant_client.http import models

T = TypeVar("T")


def _default(value: T | None, fallback: T) -> T:
    return fallback if value is None else value


class SearchOps:
    """Read operations; relies on the data plane's plumbing declared below."""

    if TYPE_CHECKING:
        rest_models: Any

        def _parse(self, model_name: str, body: Any) -> Any: ...
        def _locked(self, collection: str | None = None) -> AbstractContextManager[QdrantClient]: ...
        def _narrow(self, name: str, selector: Any, flt: Any) -> Any: ...
        def _invalid(self, message: str) -> Exception: ...

    # -- universal query ---------------------------------------------------------

    def query(self, name: str, body: models.QueryRequest | Mapping[str, Any] | None = None
              ) -> models.QueryResponse:
        req = self._parse("QueryRequest", body)
        with self._locked(name) as client:
            return self._query_locked(client, name, req)

    def query_batch(self, name: str, body: models.QueryRequestBatch | Mapping[str, Any]
                    ) -> list[models.QueryResponse]:
        req = self._parse("QueryRequestBatch", body)
        with self._locked(name) as client:
            return [self._query_locked(client, name, one) for one in req.searches]

    def _query_locked(self, client: QdrantClient, name: str, req: Any) -> models.QueryResponse:
        return client.query_points(
            name,
            query=req.query,
            using=req.using,
            prefetch=req.prefetch,
            query_filter=self._narrow(name, req.shard_key, req.filter),
            search_params=req.params,
            limit=_default(req.limit, 10),
            offset=req.offset,
            with_payload=_default(req.with_payload, False),
            with_vectors=_default(req.with_vector, False),
            score_threshold=req.score_threshold,
            lookup_from=req.lookup_from,
        )

    def query_groups(self, name: str, body: models.QueryGroupsRequest | Mapping[str, Any]) -> models.GroupsResult:
        req = self._parse("QueryGroupsRequest", body)
        with self._locked(name) as client:
            return self._groups_locked(client, name, req)

    def _groups_locked(self, client: QdrantClient, name: str, req: Any) -> models.GroupsResult:
        return client.query_points_groups(
            name,
            group_by=req.group_by,
            query=req.query,
            using=req.using,
            prefetch=req.prefetch,
            query_filter=self._narrow(name, req.shard_key, req.filter),
            search_params=req.params,
            limit=_default(req.limit, 10),
            group_size=_default(req.group_size, 3),
            with_payload=_default(req.with_payload, False),
            with_vectors=_default(req.with_vector, False),
            score_threshold=req.score_threshold,
            with_lookup=req.with_lookup,
            lookup_from=req.lookup_from,
        )

    # -- legacy bodies -------------------------------------------------------------

    def _legacy_request(self, body: Mapping[str, Any], query: Mapping[str, Any], using: str | None,
                        extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        request = {
            "query": query,
            "using": using,
            "filter": body.get("filter"),
            "params": body.get("params"),
            "limit": body.get("limit", 10),
            "offset": body.get("offset"),
            "with_payload": body.get("with_payload"),
            "with_vector": body.get("with_vector", body.get("with_vectors")),
            "score_threshold": body.get("score_threshold"),
            "lookup_from": body.get("lookup_from"),
            "shard_key": body.get("shard_key"),
            **(extra or {}),
        }
        return {k: v for k, v in request.items() if v is not None}

    def _legacy_query(self, name: str, body: Mapping[str, Any], query: Mapping[str, Any],
                      using: str | None, query_model: Any) -> list[models.ScoredPoint]:
        req = self._parse("QueryRequest", self._legacy_request(body, query, using))
        if not isinstance(req.query, query_model):
            raise self._invalid("Validation error in JSON body: malformed query")
        with self._locked(name) as client:
            return list(self._query_locked(client, name, req).points)

    def _legacy_groups(self, name: str, body: Mapping[str, Any], query: Mapping[str, Any],
                       using: str | None) -> models.GroupsResult:
        if "group_by" not in body:
            raise self._invalid("Validation error in JSON body: missing field `group_by`")
        extra = {"group_by": body["group_by"], "group_size": body.get("group_size"),
                 "with_lookup": body.get("with_lookup")}
        request = self._legacy_request(body, query, using, {k: v for k, v in extra.items() if v is not None})
        request.pop("offset", None)
        req = self._parse("QueryGroupsRequest", request)
        with self._locked(name) as client:
            return self._groups_locked(client, name, req)

    def _nearest(self, body: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
        if "vector" not in body:
            raise self._invalid("Validation error in JSON body: missing field `vector`")
        using, vector = _named_vector(body["vector"], self._invalid)
        return {"nearest": vector}, using

    @staticmethod
    def _recommend_query(body: Mapping[str, Any]) -> dict[str, Any]:
        recommend: dict[str, Any] = {"positive": body.get("positive") or [], "negative": body.get("negative") or []}
        if body.get("strategy") is not None:
            recommend["strategy"] = body["strategy"]
        return {"recommend": recommend}

    @staticmethod
    def _discover_query(body: Mapping[str, Any]) -> dict[str, Any]:
        context = body.get("context") or []
        if body.get("target") is None:
            return {"context": context}
        return {"discover": {"target": body["target"], "context": context}}

    def search(self, name: str, body: Mapping[str, Any]) -> list[models.ScoredPoint]:
        """``POST .../points/search``, answered as a nearest query."""
        body = self._checked(body)
        query, using = self._nearest(body)
        return self._legacy_query(name, body, query, using, self.rest_models.NearestQuery)

    def search_batch(self, name: str, body: Mapping[str, Any]) -> list[list[models.ScoredPoint]]:
        return [self.search(name, one) for one in self._batch(body)]

    def search_groups(self, name: str, body: Mapping[str, Any]) -> models.GroupsResult:
        body = self._checked(body)
        query, using = self._nearest(body)
        return self._legacy_groups(name, body, query, using)

    def recommend(self, name: str, body: Mapping[str, Any]) -> list[models.ScoredPoint]:
        """``POST .../points/recommend``, answered as a recommend query."""
        body = self._checked(body)
        return self._legacy_query(name, body, self._recommend_query(body), body.get("using"),
                                  self.rest_models.RecommendQuery)

    def recommend_batch(self, name: str, body: Mapping[str, Any]) -> list[list[models.ScoredPoint]]:
        return [self.recommend(name, one) for one in self._batch(body)]

    def recommend_groups(self, name: str, body: Mapping[str, Any]) -> models.GroupsResult:
        body = self._checked(body)
        return self._legacy_groups(name, body, self._recommend_query(body), body.get("using"))

    def discover(self, name: str, body: Mapping[str, Any]) -> list[models.ScoredPoint]:
        """``POST .../points/discover``: a discover query (a context query without ``target``)."""
        m = self.rest_models
        body = self._checked(body)
        return self._legacy_query(name, body, self._discover_query(body), body.get("using"),
                                  m.DiscoverQuery | m.ContextQuery)

    def discover_batch(self, name: str, body: Mapping[str, Any]) -> list[list[models.ScoredPoint]]:
        return [self.discover(name, one) for one in self._batch(body)]

    def _checked(self, body: Any) -> Mapping[str, Any]:
        if not isinstance(body, Mapping):
            raise self._invalid("Validation error in JSON body: expected an object")
        return body

    def _batch(self, body: Any) -> Iterator[Mapping[str, Any]]:
        searches = self._checked(body).get("searches")
        if not isinstance(searches, list):
            raise self._invalid("Validation error in JSON body: missing field `searches`")
        for one in searches:
            yield self._checked(one)

    # -- matrix and facet ----------------------------------------------------------

    def matrix_pairs(self, name: str, body: models.SearchMatrixRequest | Mapping[str, Any]
                     ) -> models.SearchMatrixPairsResponse:
        req = self._parse("SearchMatrixRequest", body)
        with self._locked(name) as client:
            return client.search_matrix_pairs(name, query_filter=self._narrow(name, req.shard_key, req.filter),
                                              limit=_default(req.limit, 3), sample=_default(req.sample, 10),
                                              using=req.using)

    def matrix_offsets(self, name: str, body: models.SearchMatrixRequest | Mapping[str, Any]
                       ) -> models.SearchMatrixOffsetsResponse:
        req = self._parse("SearchMatrixRequest", body)
        with self._locked(name) as client:
            return client.search_matrix_offsets(name, query_filter=self._narrow(name, req.shard_key, req.filter),
                                                limit=_default(req.limit, 3), sample=_default(req.sample, 10),
                                                using=req.using)

    def facet(self, name: str, body: models.FacetRequest | Mapping[str, Any]) -> models.FacetResponse:
        req = self._parse("FacetRequest", body)
        with self._locked(name) as client:
            return client.facet(name, key=req.key, facet_filter=self._narrow(name, req.shard_key, req.filter),
                                limit=_default(req.limit, 10), exact=_default(req.exact, False))


def _named_vector(raw: Any, invalid: Any) -> tuple[str | None, Any]:
    """Legacy ``vector`` field: a bare vector, or ``{"name": ..., "vector": ...}``."""
    if isinstance(raw, Mapping) and "indices" not in raw:
        if "name" not in raw or "vector" not in raw:
            raise invalid("Validation error in JSON body: `vector` needs `name` and `vector`")
        return str(raw["name"]), raw["vector"]
    return None, raw

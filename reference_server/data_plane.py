"""Collections and points for the reference server, served from qdrant-client's local mode.

The REST app and the gRPC server both call one :class:`DataPlane`. It keeps a
``QdrantClient(":memory:")`` (a QdrantLocal) behind one ``threading.Lock``:
QdrantLocal has no locking of its own, and grpc's thread pool and uvicorn call
in at the same time.

Importing qdrant_client costs about a second, more than the server may spend
starting up. :meth:`DataPlane.lazy` therefore returns at once and imports in a
background thread; every method waits (up to ``ready_timeout`` seconds, default
30) for that import and raises :class:`NotReady` if it does not finish.

Inputs are REST-shaped: a pydantic model from ``qdrant_client.http.models`` or
the equivalent JSON-decoded ``dict`` (as a REST handler gets it). Results are
those pydantic models; ``result.model_dump(mode="json", exclude_none=True)``
gives the REST ``result`` value. Lists of models are returned as Python lists.

Errors (all subclasses of :class:`DataPlaneError`, whose ``message`` is the
text Qdrant puts in ``status.error`` / ``grpc-message``):

- :class:`NotFound` → REST 404 / gRPC NOT_FOUND, e.g.
  ``Not found: Collection `x` doesn't exist!``
- :class:`BadRequest` → REST 400 (422 for :class:`InvalidBody`) / gRPC INVALID_ARGUMENT,
  ``Wrong input: ...`` or ``Validation error in JSON body: ...``
- :class:`Unsupported` → REST 501 / gRPC UNIMPLEMENTED: local mode cannot do it
- :class:`NotReady` → REST 503 / gRPC UNAVAILABLE: qdrant_client is still loading

Methods (``name`` is a collection name or alias; ``Body`` means "model or dict"):

Collections
    ``list_collections() -> CollectionsResponse``
    ``create_collection(name, body: CreateCollection | dict) -> bool``
    ``get_collection(name) -> CollectionInfo``
    ``collection_exists(name) -> CollectionExistence``
    ``update_collection(name, body: UpdateCollection | dict) -> bool``
    ``delete_collection(name) -> bool`` (``False`` when there was none, as Qdrant)
    ``collection_cluster_info(name) -> CollectionClusterInfo``
    ``list_shard_keys(name) -> ShardKeysResponse``
Aliases
    ``list_aliases() -> CollectionsAliasesResponse``
    ``list_collection_aliases(name) -> CollectionsAliasesResponse``
    ``update_aliases(body: ChangeAliasesOperation | dict) -> bool``
Points
    ``upsert(name, body: PointsList | PointsBatch | dict) -> UpdateResult``
    ``retrieve(name, body: PointRequest | dict) -> list[Record]``
    ``get_point(name, point_id: int | str) -> Record``
    ``delete_points(name, body: PointIdsList | FilterSelector | dict) -> UpdateResult``
    ``scroll(name, body: ScrollRequest | dict | None) -> ScrollResult``
    ``count(name, body: CountRequest | dict | None) -> CountResult``
    ``query(name, body: QueryRequest | dict | None) -> QueryResponse``
    ``query_batch(name, body: QueryRequestBatch | dict) -> list[QueryResponse]``
    ``search(name, body: dict) -> list[ScoredPoint]`` (Qdrant's legacy SearchRequest JSON)
    ``recommend(name, body: dict) -> list[ScoredPoint]`` (legacy RecommendRequest JSON)
    ``facet(name, body: FacetRequest | dict) -> FacetResponse``
Payload and vectors
    ``set_payload(name, body: SetPayload | dict) -> UpdateResult``
    ``overwrite_payload(name, body: SetPayload | dict) -> UpdateResult``
    ``delete_payload(name, body: DeletePayload | dict) -> UpdateResult``
    ``clear_payload(name, body: PointIdsList | FilterSelector | dict) -> UpdateResult``
    ``update_vectors(name, body: UpdateVectors | dict) -> UpdateResult``
    ``delete_vectors(name, body: DeleteVectors | dict) -> UpdateResult``
Readiness
    ``DataPlane.lazy(ready_timeout=30.0) -> DataPlane`` (starts the import, returns at once)
    ``wait_ready(timeout=None) -> None`` (raises NotReady)
    ``ready -> bool``

Shard keys, snapshots and payload indexes do not exist in local mode; the
server answers those operations itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from types import ModuleType

    from qdrant_client import QdrantClient
    from qdrant_client.http import models

DEFAULT_READY_TIMEOUT = 30.0
# Any fixed id will do for the one peer of a single-node deployment.
SINGLE_NODE_PEER_ID = 1

T = TypeVar("T")


class DataPlaneError(Exception):
    """A refusal of the data plane; ``message`` is what Qdrant would send."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DataPlaneError):
    """A collection, alias or point that does not exist."""


class BadRequest(DataPlaneError):
    """Input Qdrant would refuse with 400 / INVALID_ARGUMENT."""


class InvalidBody(BadRequest):
    """A body that does not have the shape of the request model (REST 422 in Qdrant)."""


class Unsupported(DataPlaneError):
    """An operation the in-memory backend cannot perform."""


class NotReady(DataPlaneError):
    """qdrant_client did not finish loading in time."""


def collection_not_found(name: str) -> NotFound:
    return NotFound(f"Not found: Collection `{name}` doesn't exist!")


class _Backend:
    """What the background import produces: the models module and the local client."""

    def __init__(self, models_module: ModuleType, client: QdrantClient) -> None:
        self.rest_models = models_module
        self.client = client


def _load_backend() -> _Backend:
    # qdrant_client/__init__ pulls in the whole client, grpc stubs and conversions
    # included, so the gRPC layer finds them loaded once this returns.
    from qdrant_client import QdrantClient
    from qdrant_client.http import models as models_module

    return _Backend(models_module, QdrantClient(":memory:"))


class DataPlane:
    """Thread-safe collections and points; see the module docstring for the methods."""

    def __init__(self, *, ready_timeout: float = DEFAULT_READY_TIMEOUT,
                 loader: Callable[[], _Backend] = _load_backend) -> None:
        self._ready_timeout = ready_timeout
        self._loader = loader
        self._loaded = threading.Event()
        self._load_error: BaseException | None = None
        self._backend: _Backend | None = None
        self._started = False
        self._start_lock = threading.Lock()
        # One lock for every call into QdrantLocal: it is not thread-safe.
        self.lock = threading.Lock()

    @classmethod
    def lazy(cls, *, ready_timeout: float = DEFAULT_READY_TIMEOUT) -> DataPlane:
        """A data plane whose backend is imported in a background thread."""
        plane = cls(ready_timeout=ready_timeout)
        plane.start_loading()
        return plane

    def start_loading(self) -> None:
        with self._start_lock:
            if self._started:
                return
            self._started = True
        thread = threading.Thread(target=self._load, name="data-plane-import", daemon=True)
        thread.start()

    def _load(self) -> None:
        try:
            self._backend = self._loader()
        except BaseException as exc:  # reported to every caller by wait_ready
            self._load_error = exc
        finally:
            self._loaded.set()

    @property
    def ready(self) -> bool:
        return self._loaded.is_set() and self._backend is not None

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the backend is loaded; raise :class:`NotReady` after ``timeout`` s."""
        self.start_loading()
        limit = self._ready_timeout if timeout is None else timeout
        if not self._loaded.wait(limit):
            raise NotReady(f"Service unavailable: data plane not loaded after {limit:g} s")
        if self._backend is None:
            raise NotReady(f"Service unavailable: data plane failed to load: {self._load_error!r}")

    def _get_backend(self) -> _Backend:
        self.wait_ready()
        assert self._backend is not None
        return self._backend

    @property
    def rest_models(self) -> Any:
        """``qdrant_client.http.models`` (waits for the import)."""
        return self._get_backend().rest_models

    # -- plumbing -------------------------------------------------------------

    @contextmanager
    def _locked(self, collection: str | None = None) -> Iterator[QdrantClient]:
        """Hold the lock, check ``collection`` exists, and translate local errors."""
        backend = self._get_backend()
        with self.lock:
            try:
                if collection is not None and not backend.client.collection_exists(collection):
                    raise collection_not_found(collection)
                yield backend.client
            except DataPlaneError:
                raise
            except NotImplementedError as exc:
                raise Unsupported(f"Not implemented: {exc or 'not supported by this server'}") from None
            except (ValueError, TypeError, AssertionError) as exc:
                raise _bad_input(exc) from None

    def _parse(self, model_name: str, body: Any) -> Any:
        """``body`` as the named REST model (or union), raising :class:`InvalidBody`."""
        from pydantic import TypeAdapter, ValidationError

        target = getattr(self.rest_models, model_name)
        if isinstance(target, type) and isinstance(body, target):
            return body
        try:
            return TypeAdapter(target).validate_python({} if body is None else body)
        except ValidationError as exc:
            raise InvalidBody(f"Validation error in JSON body: {_first_error(exc)}") from None

    # -- collections ----------------------------------------------------------

    def list_collections(self) -> models.CollectionsResponse:
        with self._locked() as client:
            return client.get_collections()

    def create_collection(self, name: str, body: models.CreateCollection | Mapping[str, Any] | None) -> bool:
        req = self._parse("CreateCollection", body)
        with self._locked() as client:
            if client.collection_exists(name):
                raise BadRequest(f"Wrong input: Collection `{name}` already exists!")
            return bool(
                client.create_collection(
                    name,
                    vectors_config=req.vectors,
                    sparse_vectors_config=req.sparse_vectors,
                    metadata=req.metadata,
                )
            )

    def get_collection(self, name: str) -> models.CollectionInfo:
        with self._locked(name) as client:
            return client.get_collection(name)

    def collection_exists(self, name: str) -> models.CollectionExistence:
        with self._locked() as client:
            return self.rest_models.CollectionExistence(exists=client.collection_exists(name))

    def update_collection(self, name: str, body: models.UpdateCollection | Mapping[str, Any] | None) -> bool:
        req = self._parse("UpdateCollection", body)
        with self._locked(name) as client:
            client.update_collection(
                name,
                sparse_vectors_config=req.sparse_vectors,
                metadata=req.metadata,
                vectors_config=req.vectors,
            )
            # Qdrant answers true for any accepted update, even one that changes nothing.
            return True

    def delete_collection(self, name: str) -> bool:
        with self._locked() as client:
            return bool(client.delete_collection(name))

    def collection_cluster_info(self, name: str) -> models.CollectionClusterInfo:
        """A single node holding one active shard: local mode has no cluster to ask."""
        m = self.rest_models
        with self._locked(name) as client:
            points = client.count(name, exact=True).count
        return m.CollectionClusterInfo(
            peer_id=SINGLE_NODE_PEER_ID,
            shard_count=1,
            local_shards=[m.LocalShardInfo(shard_id=0, points_count=points, state=m.ReplicaState.ACTIVE)],
            remote_shards=[],
            shard_transfers=[],
        )

    def list_shard_keys(self, name: str) -> models.ShardKeysResponse:
        """No shard keys: local collections use automatic sharding."""
        with self._locked(name):
            return self.rest_models.ShardKeysResponse(shard_keys=[])

    # -- aliases --------------------------------------------------------------

    def list_aliases(self) -> models.CollectionsAliasesResponse:
        with self._locked() as client:
            return client.get_aliases()

    def list_collection_aliases(self, name: str) -> models.CollectionsAliasesResponse:
        with self._locked(name) as client:
            return client.get_collection_aliases(name)

    def update_aliases(self, body: models.ChangeAliasesOperation | Mapping[str, Any]) -> bool:
        req = self._parse("ChangeAliasesOperation", body)
        m = self.rest_models
        with self._locked() as client:
            collections = {c.name for c in client.get_collections().collections}
            aliases = {a.alias_name for a in client.get_aliases().aliases}
            for action in req.actions:
                # Checked here so the caller gets Qdrant's NotFound, not a local ValueError.
                if isinstance(action, m.CreateAliasOperation):
                    target = action.create_alias.collection_name
                    if target not in collections:
                        raise collection_not_found(target)
                    aliases.add(action.create_alias.alias_name)
                elif isinstance(action, m.RenameAliasOperation):
                    old = action.rename_alias.old_alias_name
                    if old not in aliases:
                        raise NotFound(f"Not found: Alias `{old}` doesn't exist!")
                    aliases.discard(old)
                    aliases.add(action.rename_alias.new_alias_name)
                elif isinstance(action, m.DeleteAliasOperation):
                    aliases.discard(action.delete_alias.alias_name)
            return bool(client.update_collection_aliases(req.actions))

    # -- points ---------------------------------------------------------------

    def upsert(self, name: str, body: models.PointsList | models.PointsBatch | Mapping[str, Any]
               ) -> models.UpdateResult:
        req = self._parse("PointInsertOperations", body)
        m = self.rest_models
        if isinstance(req, m.PointsBatch):
            points: Any = m.Batch(ids=req.batch.ids, vectors=req.batch.vectors, payloads=req.batch.payloads)
        else:
            points = req.points
        with self._locked(name) as client:
            return client.upsert(name, points=points, update_filter=req.update_filter,
                                 update_mode=req.update_mode)

    def retrieve(self, name: str, body: models.PointRequest | Mapping[str, Any]) -> list[models.Record]:
        req = self._parse("PointRequest", body)
        with self._locked(name) as client:
            return client.retrieve(
                name,
                ids=req.ids,
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
                scroll_filter=req.filter,
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
            return client.count(name, count_filter=req.filter, exact=_default(req.exact, True))

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
            query_filter=req.filter,
            search_params=req.params,
            limit=_default(req.limit, 10),
            offset=req.offset,
            with_payload=_default(req.with_payload, False),
            with_vectors=_default(req.with_vector, False),
            score_threshold=req.score_threshold,
            lookup_from=req.lookup_from,
        )

    def search(self, name: str, body: Mapping[str, Any]) -> list[models.ScoredPoint]:
        """Qdrant's legacy ``POST .../points/search`` body, answered as a nearest query."""
        m = self.rest_models
        if not isinstance(body, Mapping) or "vector" not in body:
            raise InvalidBody("Validation error in JSON body: missing field `vector`")
        using, vector = _named_vector(body["vector"])
        query = {"nearest": vector}
        return self._legacy_query(name, body, query, using, m.NearestQuery)

    def recommend(self, name: str, body: Mapping[str, Any]) -> list[models.ScoredPoint]:
        """Qdrant's legacy ``POST .../points/recommend`` body, answered as a recommend query."""
        m = self.rest_models
        if not isinstance(body, Mapping):
            raise InvalidBody("Validation error in JSON body: expected an object")
        recommend = {
            "positive": body.get("positive") or [],
            "negative": body.get("negative") or [],
        }
        if body.get("strategy") is not None:
            recommend["strategy"] = body["strategy"]
        return self._legacy_query(name, body, {"recommend": recommend}, body.get("using"), m.RecommendQuery)

    def _legacy_query(self, name: str, body: Mapping[str, Any], query: Mapping[str, Any],
                      using: str | None, query_model: Any) -> list[models.ScoredPoint]:
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
        }
        req = self._parse("QueryRequest", {k: v for k, v in request.items() if v is not None})
        if not isinstance(req.query, query_model):
            raise InvalidBody("Validation error in JSON body: malformed query")
        with self._locked(name) as client:
            return list(self._query_locked(client, name, req).points)

    def facet(self, name: str, body: models.FacetRequest | Mapping[str, Any]) -> models.FacetResponse:
        req = self._parse("FacetRequest", body)
        with self._locked(name) as client:
            return client.facet(name, key=req.key, facet_filter=req.filter,
                                limit=_default(req.limit, 10), exact=_default(req.exact, False))

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
        req = self._parse("UpdateVectors", body)
        with self._locked(name) as client:
            return client.update_vectors(name, points=req.points, update_filter=req.update_filter)

    def delete_vectors(self, name: str, body: models.DeleteVectors | Mapping[str, Any]
                       ) -> models.UpdateResult:
        req = self._parse("DeleteVectors", body)
        selector = _selector(req.points, req.filter)
        with self._locked(name) as client:
            return client.delete_vectors(name, vectors=req.vector, points=selector)


# -- helpers ------------------------------------------------------------------


def _default(value: T | None, fallback: T) -> T:
    return fallback if value is None else value


def _selector(points: Any, flt: Any) -> Any:
    """Qdrant's ``points`` / ``filter`` pair: exactly one of them must be given."""
    if (points is None) == (flt is None):
        raise BadRequest("Wrong input: Either list of point ids or filter must be provided")
    return points if points is not None else flt


def _named_vector(raw: Any) -> tuple[str | None, Any]:
    """Legacy ``vector`` field: a bare vector, or ``{"name": ..., "vector": ...}``."""
    if isinstance(raw, Mapping):
        if "name" not in raw or "vector" not in raw:
            raise InvalidBody("Validation error in JSON body: `vector` needs `name` and `vector`")
        return str(raw["name"]), raw["vector"]
    return None, raw


def _bad_input(exc: BaseException) -> BadRequest:
    text = str(exc) or type(exc).__name__
    if text.startswith("Wrong input: "):
        return BadRequest(text)
    return BadRequest(f"Wrong input: {text}")


def _first_error(exc: Any) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:
        return str(exc).splitlines()[0]
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return f"{where}: {first.get('msg', 'invalid value')}"

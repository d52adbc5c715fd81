"""Collections and points for the reference server, served from qdrant-client's local mode.

The REST app and the gRPC server both call one :class:`DataPlane`. It keeps a
``QdrantClient(":memory:")`` (a QdrantLocal) behind one ``threading.Lock``:
QdrantLocal has no locking of its own, and grpc's thread pool and uvicorn call
in at the same time.

Importing qdrant_client costs about a second, more than the server may spend
starting up. The server therefore starts the import in a background thread on
the first call that needs data (:meth:`DataPlane.lazy` starts it at once);
every method waits (up to ``ready_timeout`` seconds, default 30) for that
import and raises :class:`NotReady` if it does not finish. A server that only
answers handshakes and refusals never imports it.

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

Shard keys, cluster operations, payload indexes and named vectors
(:mod:`reference_server.data_admin`, :mod:`reference_server.shard_keys`), the
read side (:mod:`reference_server.data_search`) and the points and their
payloads and vectors (:mod:`reference_server.data_points`) are mixins of
:class:`DataPlane`; snapshots live in :mod:`reference_server.snapshots`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .data_admin import SINGLE_NODE_PEER_ID, AdminOps
from .data_errors import (
    BadRequest,
    DataPlaneError,
    InvalidBody,
    NotFound,
    NotReady,
    Unsupported,
    collection_not_found,
)
from .data_points import PointOps, vector_alias
from .data_search import SearchOps
from .shard_keys import ShardKeyError, ShardKeyTable

if TYPE_CHECKING:
    from types import ModuleType

    from qdrant_client import QdrantClient
    from qdrant_client.http import models

DEFAULT_READY_TIMEOUT = 30.0


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


class DataPlane(PointOps, SearchOps, AdminOps):
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
        self.shards = ShardKeyTable()

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
            except ShardKeyError as exc:
                raise (NotFound(exc.message) if exc.not_found else BadRequest(exc.message)) from None
            except KeyError as exc:
                # QdrantLocal's way of saying a point id is unknown.
                missing = exc.args[0] if exc.args else "?"
                raise NotFound(f"Not found: No point with id {missing} found") from None
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

    def _invalid(self, message: str) -> Exception:
        return InvalidBody(message)

    def _narrow(self, name: str, selector: Any, flt: Any) -> Any:
        """``flt`` limited to the points of the shard keys ``selector`` names (caller holds the lock)."""
        ids = self.shards.ids_for(name, selector)
        if ids is None:
            return flt
        m = self.rest_models
        must: list[Any] = [m.HasIdCondition(has_id=sorted(ids, key=str))]
        if flt is not None:
            must.append(flt)
        return m.Filter(must=must)

    # -- collections ----------------------------------------------------------

    def list_collections(self) -> models.CollectionsResponse:
        with self._locked() as client:
            return client.get_collections()

    def create_collection(self, name: str, body: models.CreateCollection | Mapping[str, Any] | None) -> bool:
        req = self._parse("CreateCollection", body)
        with self._locked() as client:
            if client.collection_exists(name):
                raise BadRequest(f"Wrong input: Collection `{name}` already exists!")
            created = bool(
                client.create_collection(
                    name,
                    vectors_config=req.vectors,
                    sparse_vectors_config=req.sparse_vectors,
                    metadata=req.metadata,
                )
            )
            self.shards.configure(name, custom=req.sharding_method == self.rest_models.ShardingMethod.CUSTOM)
            self.forget_indexes(name)
            return created

    def get_collection(self, name: str) -> models.CollectionInfo:
        with self._locked(name) as client:
            info = client.get_collection(name)
            return self.with_admin_state(name, info)

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
            deleted = bool(client.delete_collection(name))
            if deleted and not client.collection_exists(name):
                self.shards.forget(name)
                self.forget_indexes(name)
            return deleted

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


# -- helpers ------------------------------------------------------------------


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


__all__ = [
    "SINGLE_NODE_PEER_ID",
    "BadRequest",
    "DataPlane",
    "DataPlaneError",
    "InvalidBody",
    "NotFound",
    "NotReady",
    "Unsupported",
    "collection_not_found",
    "vector_alias",
]

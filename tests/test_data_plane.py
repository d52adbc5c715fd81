"""Self-tests of reference_server.data_plane: lazy loading, the lock, and every operation."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from qdrant_client.http import models

from qdrant_conformance.reference_server.data_plane import (
    BadRequest,
    DataPlane,
    InvalidBody,
    NotFound,
    NotReady,
    _Backend,
)
from tests.server_helpers import REPO_ROOT

VECTORS = {"size": 3, "distance": "Dot"}


@pytest.fixture
def plane() -> DataPlane:
    data = DataPlane.lazy()
    data.wait_ready()
    return data


@pytest.fixture
def filled(plane: DataPlane) -> Iterator[DataPlane]:
    """Collection ``c`` with points 1..6; payload ``{"n": i, "even": i % 2 == 0}``."""
    plane.create_collection("c", {"vectors": VECTORS})
    plane.upsert("c", {"points": [
        {"id": i, "vector": [float(i), 1.0, 0.0], "payload": {"n": i, "even": i % 2 == 0}} for i in range(1, 7)
    ]})
    yield plane


def ids(points: Any) -> list[Any]:
    return [p.id for p in points]


# -- loading -----------------------------------------------------------------------------


def test_lazy_returns_before_qdrant_client_is_imported() -> None:
    # "Not ready right after lazy()" proves it did not wait: the import takes a second or more.
    script = (
        "import sys\n"
        "from reference_server.data_plane import DataPlane\n"
        "plane = DataPlane.lazy()\n"
        "ready_at_return = plane.ready\n"
        "plane.wait_ready(120)\n"
        "print(ready_at_return, plane.ready, 'qdrant_client' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=180, check=True)
    assert out.stdout.split() == ["False", "True", "True"]


def test_importing_the_module_does_not_import_qdrant_client() -> None:
    script = "import sys; import reference_server.data_plane; print('qdrant_client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "False"


def test_calls_wait_for_the_import() -> None:
    release = threading.Event()
    real = DataPlane.lazy()
    real.wait_ready()

    def gated_loader() -> _Backend:
        release.wait(30)
        return _Backend(real.rest_models, real._get_backend().client)

    plane = DataPlane(loader=gated_loader, ready_timeout=30)
    plane.start_loading()
    assert not plane.ready
    with pytest.raises(NotReady):
        plane.wait_ready(0.1)  # still gated: the import has not finished
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(plane.list_collections)
        release.set()
        assert pending.result(timeout=30).collections == []
    assert plane.ready


def test_not_ready_after_the_deadline() -> None:
    release = threading.Event()

    def stuck_loader() -> _Backend:
        release.wait(30)
        raise RuntimeError("stuck")

    plane = DataPlane(loader=stuck_loader, ready_timeout=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(NotReady, match=r"not loaded after 0\.2 s"):
            plane.list_collections()
        assert time.monotonic() - started < 5
    finally:
        release.set()


def test_failed_import_is_reported() -> None:
    def broken_loader() -> _Backend:
        raise ImportError("no module named qdrant_client")

    plane = DataPlane(loader=broken_loader)
    with pytest.raises(NotReady, match="failed to load"):
        plane.wait_ready(10)


# -- the lock ------------------------------------------------------------------------------


class _RecordingClient:
    """Stands in for QdrantLocal: notes whether the plane's lock was held during each call."""

    def __init__(self, plane_ref: list[DataPlane]) -> None:
        self.plane_ref = plane_ref
        self.lock_held: list[bool] = []

    def get_collections(self) -> models.CollectionsResponse:
        self.lock_held.append(self.plane_ref[0].lock.locked())
        return models.CollectionsResponse(collections=[])


def test_backend_calls_hold_the_lock() -> None:
    ref: list[DataPlane] = []
    fake = _RecordingClient(ref)
    plane = DataPlane(loader=lambda: _Backend(models, fake))  # type: ignore[arg-type]
    ref.append(plane)
    plane.list_collections()
    assert fake.lock_held == [True]
    assert not plane.lock.locked()


def test_concurrent_writers_lose_nothing(plane: DataPlane) -> None:
    plane.create_collection("race", {"vectors": {"size": 2, "distance": "Dot"}})

    def writer(base: int) -> None:
        for i in range(40):
            plane.upsert("race", {"points": [{"id": base + i, "vector": [1.0, 0.0]}]})
            plane.count("race")

    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(writer, base) for base in (0, 1000, 2000, 3000)]:
            future.result(timeout=60)
    assert plane.count("race").count == 160


# -- collections --------------------------------------------------------------------------


def test_collection_lifecycle(plane: DataPlane) -> None:
    assert plane.create_collection("a", {"vectors": VECTORS, "metadata": {"owner": "t"}}) is True
    assert [c.name for c in plane.list_collections().collections] == ["a"]
    info = plane.get_collection("a")
    assert info.config.params.vectors == models.VectorParams(size=3, distance=models.Distance.DOT)
    assert plane.collection_exists("a").exists and not plane.collection_exists("b").exists
    assert plane.update_collection("a", {"metadata": {"team": "x"}}) is True
    assert plane.get_collection("a").config.metadata == {"owner": "t", "team": "x"}
    assert plane.delete_collection("a") is True
    assert plane.delete_collection("a") is False
    assert plane.list_collections().collections == []


def test_duplicate_collection_is_bad_request(plane: DataPlane) -> None:
    plane.create_collection("a", {"vectors": VECTORS})
    with pytest.raises(BadRequest) as refused:
        plane.create_collection("a", {"vectors": VECTORS})
    assert refused.value.message == "Wrong input: Collection `a` already exists!"


@pytest.mark.parametrize("operation", [
    lambda p: p.get_collection("ghost"),
    lambda p: p.update_collection("ghost", {}),
    lambda p: p.upsert("ghost", {"points": []}),
    lambda p: p.count("ghost"),
    lambda p: p.scroll("ghost"),
    lambda p: p.query("ghost", {"query": [1, 2, 3]}),
    lambda p: p.list_collection_aliases("ghost"),
    lambda p: p.collection_cluster_info("ghost"),
])
def test_missing_collection_is_not_found(plane: DataPlane, operation: Any) -> None:
    with pytest.raises(NotFound) as missing:
        operation(plane)
    assert missing.value.message == "Not found: Collection `ghost` doesn't exist!"


def test_malformed_body_is_invalid_body(plane: DataPlane) -> None:
    with pytest.raises(InvalidBody, match="Validation error in JSON body"):
        plane.create_collection("a", {"vectors": {"size": "big"}})
    assert not plane.collection_exists("a").exists


def test_cluster_info_describes_one_local_shard(filled: DataPlane) -> None:
    info = filled.collection_cluster_info("c")
    assert info.shard_count == 1 and info.remote_shards == []
    assert [(s.shard_id, s.points_count) for s in info.local_shards] == [(0, 6)]
    assert filled.list_shard_keys("c").shard_keys == []


# -- aliases -----------------------------------------------------------------------------


def test_alias_lifecycle(filled: DataPlane) -> None:
    create = {"create_alias": {"collection_name": "c", "alias_name": "one"}}
    assert filled.update_aliases({"actions": [create]})
    assert [(a.alias_name, a.collection_name) for a in filled.list_aliases().aliases] == [("one", "c")]
    assert filled.count("one").count == 6  # reads resolve aliases
    filled.update_aliases({"actions": [{"rename_alias": {"old_alias_name": "one", "new_alias_name": "two"}}]})
    assert [a.alias_name for a in filled.list_collection_aliases("c").aliases] == ["two"]
    filled.update_aliases({"actions": [{"delete_alias": {"alias_name": "two"}}]})
    assert filled.list_aliases().aliases == []


def test_alias_to_missing_collection_is_not_found(filled: DataPlane) -> None:
    with pytest.raises(NotFound, match="Collection `ghost` doesn't exist"):
        filled.update_aliases({"actions": [{"create_alias": {"collection_name": "ghost", "alias_name": "a"}}]})
    with pytest.raises(NotFound, match="Alias `nope` doesn't exist"):
        filled.update_aliases({"actions": [{"rename_alias": {"old_alias_name": "nope", "new_alias_name": "x"}}]})
    assert filled.list_aliases().aliases == []


def test_alias_actions_apply_in_order(filled: DataPlane) -> None:
    filled.update_aliases({"actions": [
        {"create_alias": {"collection_name": "c", "alias_name": "first"}},
        {"rename_alias": {"old_alias_name": "first", "new_alias_name": "second"}},
    ]})
    assert [a.alias_name for a in filled.list_aliases().aliases] == ["second"]


# -- points ---------------------------------------------------------------------------------


def test_upsert_batch_and_retrieve(plane: DataPlane) -> None:
    plane.create_collection("b", {"vectors": VECTORS})
    result = plane.upsert("b", {"batch": {"ids": [1, 2], "vectors": [[1, 0, 0], [0, 1, 0]],
                                          "payloads": [{"a": 1}, {"a": 2}]}})
    assert result.status == models.UpdateStatus.COMPLETED
    records = plane.retrieve("b", {"ids": [2, 1, 9], "with_vector": True})
    assert sorted(ids(records)) == [1, 2]
    assert {r.id: r.payload for r in records} == {1: {"a": 1}, 2: {"a": 2}}
    assert all(r.vector is not None for r in records)
    assert plane.retrieve("b", {"ids": [1], "with_payload": False})[0].payload is None


def test_get_point(filled: DataPlane) -> None:
    assert filled.get_point("c", 3).payload == {"n": 3, "even": False}
    with pytest.raises(NotFound) as missing:
        filled.get_point("c", 99)
    assert missing.value.message == "Not found: No point with id 99 found"


def test_wrong_dimension_is_bad_request(filled: DataPlane) -> None:
    with pytest.raises(BadRequest, match=r"^Wrong input: .*dim"):
        filled.upsert("c", {"points": [{"id": 50, "vector": [1.0]}]})
    assert filled.count("c").count == 6


def test_delete_by_ids_and_by_filter(filled: DataPlane) -> None:
    filled.delete_points("c", {"points": [1, 2]})
    assert filled.count("c").count == 4
    filled.delete_points("c", {"filter": {"must": [{"key": "even", "match": {"value": True}}]}})
    assert sorted(ids(filled.scroll("c", {"limit": 10}).points)) == [3, 5]


def test_scroll_pages(filled: DataPlane) -> None:
    first = filled.scroll("c", {"limit": 4})
    assert ids(first.points) == [1, 2, 3, 4] and first.next_page_offset == 5
    second = filled.scroll("c", {"limit": 4, "offset": first.next_page_offset})
    assert ids(second.points) == [5, 6] and second.next_page_offset is None
    dumped = first.model_dump(mode="json", exclude_none=True)
    assert dumped["points"][0] == {"id": 1, "payload": {"n": 1, "even": False}}


def test_count_with_filter(filled: DataPlane) -> None:
    assert filled.count("c", {"filter": {"must": [{"key": "even", "match": {"value": True}}]}}).count == 3
    assert filled.count("c").count == 6


def test_query_and_batch(filled: DataPlane) -> None:
    found = filled.query("c", {"query": [1, 0, 0], "limit": 2, "with_payload": True})
    assert ids(found.points) == [6, 5] and found.points[0].payload == {"n": 6, "even": True}
    # REST default: no payload unless asked.
    assert filled.query("c", {"query": [1, 0, 0], "limit": 1}).points[0].payload is None
    batch = filled.query_batch("c", {"searches": [{"query": [1, 0, 0], "limit": 1},
                                                  {"query": [-1, 0, 0], "limit": 1}]})
    assert [ids(r.points) for r in batch] == [[6], [1]]


def test_legacy_search_and_recommend(filled: DataPlane) -> None:
    assert ids(filled.search("c", {"vector": [1, 0, 0], "limit": 3})) == [6, 5, 4]
    only_odd = {"must": [{"key": "even", "match": {"value": False}}]}
    assert ids(filled.search("c", {"vector": [1, 0, 0], "limit": 2, "filter": only_odd})) == [5, 3]
    recommended = filled.recommend("c", {"positive": [6], "limit": 2})
    assert len(recommended) == 2 and 6 not in ids(recommended)
    with pytest.raises(InvalidBody):
        filled.search("c", {"limit": 1})


def test_named_vector_search(plane: DataPlane) -> None:
    plane.create_collection("named", {"vectors": {"img": VECTORS}})
    plane.upsert("named", {"points": [{"id": 1, "vector": {"img": [1, 0, 0]}},
                                      {"id": 2, "vector": {"img": [0, 1, 0]}}]})
    assert ids(plane.search("named", {"vector": {"name": "img", "vector": [0, 1, 0]}, "limit": 1})) == [2]
    assert ids(plane.query("named", {"query": [1, 0, 0], "using": "img", "limit": 1}).points) == [1]


def test_payload_operations(filled: DataPlane) -> None:
    filled.set_payload("c", {"payload": {"tag": "x"}, "points": [1]})
    assert filled.get_point("c", 1).payload == {"n": 1, "even": False, "tag": "x"}
    filled.overwrite_payload("c", {"payload": {"only": True}, "points": [1]})
    assert filled.get_point("c", 1).payload == {"only": True}
    filled.delete_payload("c", {"keys": ["n"], "filter": {"must": [{"key": "even", "match": {"value": True}}]}})
    assert filled.get_point("c", 2).payload == {"even": True}
    filled.clear_payload("c", {"points": [2]})
    assert filled.get_point("c", 2).payload == {}


@pytest.mark.parametrize("body", [{"payload": {"a": 1}}, {"payload": {"a": 1}, "points": [1], "filter": {}}])
def test_payload_needs_exactly_one_selector(filled: DataPlane, body: dict[str, Any]) -> None:
    with pytest.raises(BadRequest, match="Either list of point ids or filter must be provided"):
        filled.set_payload("c", body)


def test_vector_operations(filled: DataPlane) -> None:
    filled.update_vectors("c", {"points": [{"id": 1, "vector": [0.0, 0.0, 9.0]}]})
    assert filled.retrieve("c", {"ids": [1], "with_vector": True})[0].vector == [0.0, 0.0, 9.0]
    filled.delete_vectors("c", {"points": [1], "vector": [""]})
    assert not filled.retrieve("c", {"ids": [1], "with_vector": True})[0].vector


def test_facet(filled: DataPlane) -> None:
    hits = filled.facet("c", {"key": "even"}).hits
    assert sorted((h.value, h.count) for h in hits) == [(False, 3), (True, 3)]


def test_models_are_accepted_as_well_as_dicts(plane: DataPlane) -> None:
    plane.create_collection("m", models.CreateCollection(
        vectors=models.VectorParams(size=2, distance=models.Distance.DOT)))
    plane.upsert("m", models.PointsList(points=[models.PointStruct(id=1, vector=[1.0, 2.0])]))
    assert plane.count("m", models.CountRequest()).count == 1


@pytest.mark.parametrize("operation", [
    lambda p: p.get_collection(""),
    lambda p: p.collection_exists(""),
    lambda p: p.count(""),
])
def test_empty_collection_name_is_bad_request(plane: DataPlane, operation: Any) -> None:
    with pytest.raises(BadRequest, match=r"^Wrong input: "):
        operation(plane)

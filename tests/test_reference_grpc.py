"""Self-tests of the reference server's public gRPC port (spec §3, §4, §6, §9).

Servers run in-process (``start_grpc_server``) and, in the last section, as a
``python -m reference_server`` subprocess. Calls go through raw grpcio with
serialized request bytes, and through ``QdrantClient(prefer_grpc=True)``.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2
from qdrant_client import QdrantClient, models
from qdrant_client import grpc as qg

from qdrant_conformance.reference_server.audit import Principal
from qdrant_conformance.reference_server.auth import (
    ANONYMOUS,
    MSG_GLOBAL_MANAGE,
    MSG_INVALID,
    MSG_MISSING,
    Access,
    AuthKeys,
)
from qdrant_conformance.reference_server.data_plane import DataPlane, _Backend
from qdrant_conformance.reference_server.grpc_api import access
from qdrant_conformance.reference_server.grpc_api.policy import GrpcPolicy
from qdrant_conformance.reference_server.grpc_api.raw_services import invalid_path_component
from qdrant_conformance.reference_server.grpc_api.server import GrpcBindError, start_grpc_server
from qdrant_conformance.reference_server.versioning import Emulation
from tests.grpc_helpers import InProcessGrpc, RpcResult, call, call_stream, grpc_server, settings_for
from tests.server_helpers import REPO_ROOT, ServerProcess

MANAGE = "manage-key-5b0e1f"
ALT = "alt-key-93c7d2"
RO = "read-only-key-41aa08"
ALL_KEYS = {
    "QDRANT__SERVICE__API_KEY": MANAGE,
    "QDRANT__SERVICE__ALT_API_KEY": ALT,
    "QDRANT__SERVICE__READ_ONLY_API_KEY": RO,
}
COLLECTION = "grpc_selftest"


def key(value: str) -> list[tuple[str, str]]:
    return [("api-key", value)]


def bearer(value: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {value}")]


def _create_request(name: str) -> bytes:
    return qg.CreateCollection(
        collection_name=name,
        vectors_config=qg.VectorsConfig(params=qg.VectorParams(size=2, distance=qg.Distance.Dot)),
    ).SerializeToString()


def _upsert_request(name: str, point_id: int) -> bytes:
    return qg.UpsertPoints(
        collection_name=name,
        wait=True,
        points=[qg.PointStruct(
            id=qg.PointId(num=point_id),
            vectors=qg.Vectors(vector=qg.Vector(dense=qg.DenseVector(data=[1.0, 0.5]))),
        )],
    ).SerializeToString()


def _count(channel: grpc.Channel, name: str = COLLECTION) -> int:
    result = call(channel, "/qdrant.Points/Count", qg.CountPoints(collection_name=name, exact=True)
                  .SerializeToString(), metadata=key(MANAGE))
    assert result.code == "OK", result
    assert result.response is not None
    return int(qg.CountResponse.FromString(result.response).result.count)


def assert_code(result: RpcResult, code: str, details: str | None = None) -> None:
    assert result.code == code, f"expected {code}, got {result.code}: {result.details}"
    if details is not None:
        assert result.details == details


def assert_no_key_echo(result: RpcResult, *presented: str) -> None:
    sent_back = result.text()
    for secret in presented:
        if secret:
            assert secret not in sent_back


@pytest.fixture(scope="module")
def keyed() -> Iterator[InProcessGrpc]:
    """A v1.19.0 server with manage, alt and read-only keys and one collection holding one point."""
    with grpc_server(ALL_KEYS) as srv:
        channel = srv.channel()
        assert_code(call(channel, "/qdrant.Collections/Create", _create_request(COLLECTION),
                         metadata=key(MANAGE)), "OK")
        assert_code(call(channel, "/qdrant.Points/Upsert", _upsert_request(COLLECTION, 1),
                         metadata=key(MANAGE)), "OK")
        yield srv


# Reads on four services, each with a request the server can answer.
READS = [
    ("/qdrant.Collections/List", qg.ListCollectionsRequest().SerializeToString()),
    ("/qdrant.Collections/Get", qg.GetCollectionInfoRequest(collection_name=COLLECTION).SerializeToString()),
    ("/qdrant.Points/Count", qg.CountPoints(collection_name=COLLECTION).SerializeToString()),
    ("/qdrant.Points/Scroll", qg.ScrollPoints(collection_name=COLLECTION, limit=5).SerializeToString()),
    ("/qdrant.Snapshots/ListFull", qg.ListFullSnapshotsRequest().SerializeToString()),
    ("/qdrant.Collections/ListAliases", qg.ListAliasesRequest().SerializeToString()),
]
READ_IDS = [path for path, _ in READS]


# -- the access table -------------------------------------------------------------------


def test_access_table_covers_every_shipped_method() -> None:
    assert access.undeclared_methods() == []


def test_shipped_services_have_the_expected_method_counts() -> None:
    from qdrant_client.grpc import collections_service_pb2, points_service_pb2, qdrant_pb2, snapshots_service_pb2

    counts = {
        d.full_name: len(d.methods)
        for module in (collections_service_pb2, points_service_pb2, snapshots_service_pb2, qdrant_pb2)
        for d in module.DESCRIPTOR.services_by_name.values()
    }
    assert counts == {"qdrant.Collections": 14, "qdrant.Points": 30, "qdrant.Snapshots": 6, "qdrant.Qdrant": 1}
    for service, methods in counts.items():
        assert len(access.SERVICE_ACCESS[service]) == methods


def test_undeclared_methods_reports_a_missing_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    # The self-test above must be able to fail: drop one entry and it must notice.
    trimmed = {svc: dict(methods) for svc, methods in access.SERVICE_ACCESS.items()}
    del trimmed["qdrant.Points"]["Upsert"]
    monkeypatch.setattr(access, "SERVICE_ACCESS", trimmed)
    assert access.undeclared_methods() == ["/qdrant.Points/Upsert: not in the access table"]


# -- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "request_bytes"), READS, ids=READ_IDS)
def test_manage_key_is_accepted(keyed: InProcessGrpc, path: str, request_bytes: bytes) -> None:
    assert_code(call(keyed.channel(), path, request_bytes, metadata=key(MANAGE)), "OK")


@pytest.mark.parametrize(("path", "request_bytes"), READS, ids=READ_IDS)
def test_missing_credential_is_unauthenticated(keyed: InProcessGrpc, path: str, request_bytes: bytes) -> None:
    assert_code(call(keyed.channel(), path, request_bytes), "UNAUTHENTICATED", MSG_MISSING)


@pytest.mark.parametrize(("path", "request_bytes"), READS, ids=READ_IDS)
def test_wrong_key_is_unauthenticated(keyed: InProcessGrpc, path: str, request_bytes: bytes) -> None:
    wrong = "wrong-key-77f2b1"
    result = call(keyed.channel(), path, request_bytes, metadata=key(wrong))
    assert_code(result, "UNAUTHENTICATED", MSG_INVALID)
    assert_no_key_echo(result, wrong)


def test_bearer_token_is_accepted(keyed: InProcessGrpc) -> None:
    assert_code(call(keyed.channel(), "/qdrant.Collections/List", metadata=bearer(MANAGE)), "OK")


@pytest.mark.parametrize("header", ["bearer {k}", "Bearer:{k}", "Basic {k}", "{k}"])
def test_malformed_authorization_counts_as_missing(keyed: InProcessGrpc, header: str) -> None:
    result = call(keyed.channel(), "/qdrant.Collections/List",
                  metadata=[("authorization", header.format(k=MANAGE))])
    assert_code(result, "UNAUTHENTICATED", MSG_MISSING)


@pytest.mark.parametrize("api_key", ["wrong-key-0c1d", ""], ids=["wrong", "empty"])
def test_api_key_wins_over_a_valid_bearer(keyed: InProcessGrpc, api_key: str) -> None:
    result = call(keyed.channel(), "/qdrant.Collections/List", metadata=key(api_key) + bearer(MANAGE))
    assert_code(result, "UNAUTHENTICATED", MSG_INVALID)
    assert_no_key_echo(result, api_key, MANAGE)


def test_first_api_key_value_is_used(keyed: InProcessGrpc) -> None:
    channel = keyed.channel()
    assert_code(call(channel, "/qdrant.Collections/List", metadata=key(MANAGE) + key("other")), "OK")
    assert_code(call(channel, "/qdrant.Collections/List", metadata=key("other") + key(MANAGE)),
                "UNAUTHENTICATED", MSG_INVALID)


def test_alt_key_has_manage_access(keyed: InProcessGrpc) -> None:
    channel = keyed.channel()
    request = qg.CreateCollection(collection_name="alt_made").SerializeToString()
    assert_code(call(channel, "/qdrant.Collections/Create", request, metadata=key(ALT)), "OK")
    assert_code(call(channel, "/qdrant.Collections/Delete",
                     qg.DeleteCollection(collection_name="alt_made").SerializeToString(),
                     metadata=bearer(ALT)), "OK")


def test_alt_key_is_ignored_before_1_17() -> None:
    with grpc_server({**ALL_KEYS, "QDRANT__REFERENCE_SERVER__VERSION": "1.16.0"}) as srv:
        channel = srv.channel()
        assert_code(call(channel, "/qdrant.Collections/List", metadata=key(ALT)),
                    "UNAUTHENTICATED", MSG_INVALID)
        assert_code(call(channel, "/qdrant.Collections/List", metadata=key(MANAGE)), "OK")


def test_no_keys_configured_means_open() -> None:
    with grpc_server({}) as srv:
        channel = srv.channel()
        assert_code(call(channel, "/qdrant.Collections/List"), "OK")
        assert_code(call(channel, "/qdrant.Collections/Create", _create_request("open_c")), "OK")


@pytest.mark.parametrize(("version", "code"), [("1.8.4", "PERMISSION_DENIED"), ("1.9.0", "UNAUTHENTICATED")])
def test_missing_key_code_follows_the_emulated_version(version: str, code: str) -> None:
    with grpc_server({"QDRANT__SERVICE__API_KEY": MANAGE, "QDRANT__REFERENCE_SERVER__VERSION": version}) as srv:
        channel = srv.channel()
        assert_code(call(channel, "/qdrant.Collections/List"), code)
        assert_code(call(channel, "/qdrant.Collections/List", metadata=key(MANAGE)), "OK")


# -- health whitelist ------------------------------------------------------------------------


HEALTH_PATHS = ["/grpc.health.v1.Health/Check", "/qdrant.Qdrant/HealthCheck"]


@pytest.mark.parametrize("path", HEALTH_PATHS)
@pytest.mark.parametrize("metadata", [[], key("bogus-key-1a"), bearer("bogus-token")],
                         ids=["none", "bad-key", "bad-bearer"])
def test_health_methods_ignore_credentials(keyed: InProcessGrpc, path: str,
                                           metadata: list[tuple[str, str]]) -> None:
    assert_code(call(keyed.channel(), path, metadata=metadata), "OK")


def test_health_check_reports_serving_for_any_service(keyed: InProcessGrpc) -> None:
    request = health_pb2.HealthCheckRequest(service="no.such.Service").SerializeToString()
    result = call(keyed.channel(), "/grpc.health.v1.Health/Check", request)
    assert_code(result, "OK")
    assert result.response is not None
    assert health_pb2.HealthCheckResponse.FromString(result.response).status == health_pb2.HealthCheckResponse.SERVING


def test_qdrant_health_check_reports_title_and_version(keyed: InProcessGrpc) -> None:
    result = call(keyed.channel(), "/qdrant.Qdrant/HealthCheck")
    assert_code(result, "OK")
    assert result.response is not None
    reply = qg.HealthCheckReply.FromString(result.response)
    assert reply.title == "qdrant - vector search engine"
    assert reply.version == "1.19.0"
    assert reply.commit


def test_health_watch_is_not_whitelisted(keyed: InProcessGrpc) -> None:
    channel = keyed.channel()
    assert_code(call_stream(channel, "/grpc.health.v1.Health/Watch"), "UNAUTHENTICATED", MSG_MISSING)
    assert_code(call_stream(channel, "/grpc.health.v1.Health/Watch", metadata=key(MANAGE)), "UNIMPLEMENTED")


@pytest.mark.parametrize("path", HEALTH_PATHS)
def test_health_methods_need_a_key_before_1_15_1(path: str) -> None:
    with grpc_server({"QDRANT__SERVICE__API_KEY": MANAGE, "QDRANT__REFERENCE_SERVER__VERSION": "1.15.0"}) as srv:
        channel = srv.channel()
        assert_code(call(channel, path), "UNAUTHENTICATED", MSG_MISSING)
        assert_code(call(channel, path, metadata=key(MANAGE)), "OK")


def test_health_service_is_unknown_before_1_6() -> None:
    with grpc_server({"QDRANT__SERVICE__API_KEY": MANAGE, "QDRANT__REFERENCE_SERVER__VERSION": "1.5.0"}) as srv:
        channel = srv.channel()
        assert_code(call(channel, "/grpc.health.v1.Health/Check", metadata=key(MANAGE)), "UNIMPLEMENTED")
        assert_code(call(channel, "/qdrant.Qdrant/HealthCheck", metadata=key(MANAGE)), "OK")


# -- read-only key -----------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "request_bytes"), READS, ids=READ_IDS)
def test_read_only_key_may_read(keyed: InProcessGrpc, path: str, request_bytes: bytes) -> None:
    assert_code(call(keyed.channel(), path, request_bytes, metadata=key(RO)), "OK")


WRITES = [
    ("/qdrant.Collections/Create", _create_request("ro_made")),
    ("/qdrant.Collections/Delete", qg.DeleteCollection(collection_name=COLLECTION).SerializeToString()),
    ("/qdrant.Collections/UpdateAliases", qg.ChangeAliases(actions=[qg.AliasOperations(
        create_alias=qg.CreateAlias(collection_name=COLLECTION, alias_name="ro_alias"))]).SerializeToString()),
    ("/qdrant.Points/Upsert", _upsert_request(COLLECTION, 2)),
    ("/qdrant.Points/Delete", qg.DeletePoints(collection_name=COLLECTION, points=qg.PointsSelector(
        points=qg.PointsIdsList(ids=[qg.PointId(num=1)]))).SerializeToString()),
    ("/qdrant.Points/SetPayload", qg.SetPayloadPoints(
        collection_name=COLLECTION, payload={"k": qg.Value(string_value="v")},
        points_selector=qg.PointsSelector(points=qg.PointsIdsList(ids=[qg.PointId(num=1)])),
    ).SerializeToString()),
]
WRITE_IDS = [path for path, _ in WRITES]


@pytest.mark.parametrize(("path", "request_bytes"), WRITES, ids=WRITE_IDS)
def test_read_only_key_may_not_write(keyed: InProcessGrpc, path: str, request_bytes: bytes) -> None:
    channel = keyed.channel()
    before = _count(channel)
    for metadata in (key(RO), bearer(RO)):
        result = call(channel, path, request_bytes, metadata=metadata)
        assert_code(result, "PERMISSION_DENIED", MSG_GLOBAL_MANAGE)
        assert_no_key_echo(result, RO)
    assert _count(channel) == before
    collections = call(channel, "/qdrant.Collections/List", metadata=key(MANAGE))
    assert collections.response is not None
    names = {c.name for c in qg.ListCollectionsResponse.FromString(collections.response).collections}
    assert names >= {COLLECTION} and "ro_made" not in names


def test_manage_key_may_write(keyed: InProcessGrpc) -> None:
    # The positive twin of the refusals above, on a collection of its own.
    channel = keyed.channel()
    name = "manage_writes"
    assert_code(call(channel, "/qdrant.Collections/Create", _create_request(name), metadata=key(MANAGE)), "OK")
    assert_code(call(channel, "/qdrant.Points/Upsert", _upsert_request(name, 7), metadata=key(MANAGE)), "OK")
    assert _count(channel, name) == 1
    assert_code(call(channel, "/qdrant.Collections/Delete",
                     qg.DeleteCollection(collection_name=name).SerializeToString(), metadata=key(MANAGE)), "OK")


def test_read_only_denial_before_1_9_uses_the_old_message() -> None:
    env = {**ALL_KEYS, "QDRANT__REFERENCE_SERVER__VERSION": "1.8.0"}
    with grpc_server(env) as srv:
        channel = srv.channel()
        assert_code(call(channel, "/qdrant.Collections/Create", _create_request("x"), metadata=key(RO)),
                    "PERMISSION_DENIED", "Invalid api-key")
        assert_code(call(channel, "/qdrant.Collections/List", metadata=key(RO)), "OK")


# -- unknown and undecodable methods -----------------------------------------------------------


UNKNOWN = ["/no.such.Service/Method", "/qdrant.Points/NoSuchMethod", "/qdrant.Internal/Anything"]


@pytest.mark.parametrize("path", UNKNOWN)
def test_unknown_method_without_credentials_is_unauthenticated(keyed: InProcessGrpc, path: str) -> None:
    assert_code(call(keyed.channel(), path, b"\x0a\x01x"), "UNAUTHENTICATED", MSG_MISSING)


@pytest.mark.parametrize("path", UNKNOWN)
@pytest.mark.parametrize("credential", [MANAGE, RO], ids=["manage", "read-only"])
def test_unknown_method_with_credentials_is_unimplemented(keyed: InProcessGrpc, path: str,
                                                          credential: str) -> None:
    assert_code(call(keyed.channel(), path, metadata=key(credential)), "UNIMPLEMENTED")


REFLECTION = ["/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
              "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"]


@pytest.mark.parametrize("path", REFLECTION)
def test_reflection_sits_behind_auth(keyed: InProcessGrpc, path: str) -> None:
    channel = keyed.channel()
    stream = channel.stream_stream(path)

    def exchange(metadata: list[tuple[str, str]]) -> str:
        try:
            list(stream(iter([b""]), metadata=metadata, timeout=30))
        except grpc.RpcError as exc:
            return str(exc.code().name)
        return "OK"

    assert exchange([]) == "UNAUTHENTICATED"
    # Any principal may reflect (no RBAC, spec §3); an empty request is answered inside the stream.
    assert exchange(key(RO)) == "OK"


def test_undecodable_request_is_refused_after_auth(keyed: InProcessGrpc) -> None:
    channel = keyed.channel()
    assert_code(call(channel, "/qdrant.Collections/Get", b"\xff\xff\xff"), "UNAUTHENTICATED")
    assert_code(call(channel, "/qdrant.Collections/Get", b"\xff\xff\xff", metadata=key(MANAGE)), "INTERNAL")


def test_validation_runs_before_the_access_check(keyed: InProcessGrpc) -> None:
    channel = keyed.channel()
    malformed = qg.CreateCollection(collection_name="").SerializeToString()
    result = call(channel, "/qdrant.Collections/Create", malformed, metadata=key(RO))
    assert_code(result, "INVALID_ARGUMENT")
    assert result.details.startswith("Validation error in body:")
    # The same write with a valid body is refused for the read-only key.
    assert_code(call(channel, "/qdrant.Collections/Create", _create_request("valid_name"), metadata=key(RO)),
                "PERMISSION_DENIED", MSG_GLOBAL_MANAGE)


def test_missing_collection_is_not_found(keyed: InProcessGrpc) -> None:
    request = qg.GetCollectionInfoRequest(collection_name="nope").SerializeToString()
    assert_code(call(keyed.channel(), "/qdrant.Collections/Get", request, metadata=key(RO)),
                "NOT_FOUND", "Not found: Collection `nope` doesn't exist!")


def test_field_index_write_checks_access(keyed: InProcessGrpc) -> None:
    request = qg.CreateFieldIndexCollection(collection_name=COLLECTION, field_name="f").SerializeToString()
    channel = keyed.channel()
    assert_code(call(channel, "/qdrant.Points/CreateFieldIndex", request, metadata=key(RO)),
                "PERMISSION_DENIED", MSG_GLOBAL_MANAGE)
    assert_code(call(channel, "/qdrant.Points/CreateFieldIndex", request, metadata=key(MANAGE)), "OK")


# -- services without shipped stubs ---------------------------------------------------------


def _storage_request(collection: str, shard: int, path: str) -> bytes:
    # Hand-encoded: field 1 (string), field 2 (varint), field 3 (string).
    def text(number: int, value: str) -> bytes:
        data = value.encode()
        return bytes([number << 3 | 2, len(data)]) + data

    return text(1, collection) + bytes([2 << 3, shard]) + text(3, path)


def test_storage_read_is_open_to_the_read_only_key(keyed: InProcessGrpc) -> None:
    channel = keyed.channel()
    request = _storage_request(COLLECTION, 0, "segments/x")
    assert_code(call(channel, "/qdrant.StorageRead/FileExists", request), "UNAUTHENTICATED", MSG_MISSING)
    assert_code(call(channel, "/qdrant.StorageRead/FileExists", request, metadata=key(RO)), "OK")
    assert_code(call(channel, "/qdrant.StorageRead/ReadWhole", request, metadata=key(RO)), "NOT_FOUND")
    assert_code(call_stream(channel, "/qdrant.StorageRead/ReadBytesStream", request, metadata=key(RO)),
                "NOT_FOUND")


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "./x", "a/../../b"])
def test_storage_read_rejects_path_traversal(keyed: InProcessGrpc, path: str) -> None:
    result = call(keyed.channel(), "/qdrant.StorageRead/ReadWhole", _storage_request(COLLECTION, 0, path),
                  metadata=key(RO))
    assert_code(result, "INVALID_ARGUMENT", f"Invalid path component in '{path}'")


@pytest.mark.parametrize(("path", "invalid"), [
    ("segments/a", False), ("a/./b", False), ("a//b/", False), ("", False),
    ("..", True), ("a/..", True), ("/abs", True), (".", True), ("./a", True),
])
def test_path_component_rules(path: str, invalid: bool) -> None:
    assert invalid_path_component(path) is invalid


def test_storage_read_arrives_with_1_18() -> None:
    with grpc_server({**ALL_KEYS, "QDRANT__REFERENCE_SERVER__VERSION": "1.17.0"}) as srv:
        result = call(srv.channel(), "/qdrant.StorageRead/ReadWhole",
                      _storage_request(COLLECTION, 0, "../x"), metadata=key(RO))
        assert_code(result, "UNIMPLEMENTED")


def test_quotas_update_needs_manage_access(keyed: InProcessGrpc) -> None:
    channel = keyed.channel()
    assert_code(call(channel, "/qdrant.Quotas/Update", metadata=key(RO)), "PERMISSION_DENIED", MSG_GLOBAL_MANAGE)
    assert_code(call(channel, "/qdrant.Quotas/Update", metadata=key(MANAGE)), "OK")
    assert_code(call(channel, "/qdrant.Quotas/Get", metadata=key(RO)), "OK")


def test_quotas_arrive_with_1_19() -> None:
    # Not registered on the public port of v1.18.x (src/tonic/mod.rs::init).
    with grpc_server({**ALL_KEYS, "QDRANT__REFERENCE_SERVER__VERSION": "1.18.3"}) as srv:
        assert_code(call(srv.channel(), "/qdrant.Quotas/Get", metadata=key(RO)), "UNIMPLEMENTED")
        assert_code(call(srv.channel(), "/qdrant.Quotas/Get"), "UNAUTHENTICATED")


def test_shard_snapshots_are_not_on_the_public_port(keyed: InProcessGrpc) -> None:
    # Qdrant registers ShardSnapshots only on the p2p port (src/tonic/mod.rs::init_internal,
    # spec §8); the public port authenticates first (spec §3), then finds no such service.
    channel = keyed.channel()
    request = _storage_request(COLLECTION, 0, "")
    for method in ("List", "Create", "Delete", "Recover"):
        path = f"/qdrant.ShardSnapshots/{method}"
        assert_code(call(channel, path, request, metadata=key(MANAGE)), "UNIMPLEMENTED")
        assert_code(call(channel, path, request, metadata=key(RO)), "UNIMPLEMENTED")
        assert_code(call(channel, path, request), "UNAUTHENTICATED")


# -- the official client -----------------------------------------------------------------------


def _client(srv: InProcessGrpc, api_key: str | None) -> QdrantClient:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Api key is used with an insecure connection"
        return QdrantClient(host="127.0.0.1", grpc_port=srv.port, prefer_grpc=True, https=False,
                            api_key=api_key, check_compatibility=False, timeout=30)


def test_official_client_round_trip(keyed: InProcessGrpc) -> None:
    client = _client(keyed, MANAGE)
    try:
        name = "client_round_trip"
        assert client.create_collection(name, vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT))
        assert name in {c.name for c in client.get_collections().collections}
        vectors = client.get_collection(name).config.params.vectors
        assert isinstance(vectors, models.VectorParams) and vectors.size == 3
        assert client.collection_exists(name) and not client.collection_exists("absent")
        client.upsert(name, points=[models.PointStruct(id=i, vector=[float(i), 1.0, 0.0], payload={"i": i})
                                    for i in range(1, 6)])
        assert client.count(name).count == 5
        hits = client.query_points(name, query=[1.0, 0.0, 0.0], limit=2, with_payload=True).points
        assert [h.id for h in hits] == [5, 4] and hits[0].payload == {"i": 5}
        page, offset = client.scroll(name, limit=3)
        assert [p.id for p in page] == [1, 2, 3] and offset == 4
        assert [r.id for r in client.retrieve(name, [2, 4])] == [2, 4]
        client.set_payload(name, payload={"tag": "x"}, points=[2])
        assert client.retrieve(name, [2])[0].payload == {"i": 2, "tag": "x"}
        client.delete(name, points_selector=models.PointIdsList(points=[1, 2]))
        assert client.count(name).count == 3
        client.update_collection_aliases(change_aliases_operations=[
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=name, alias_name="rt"))])
        assert [a.alias_name for a in client.get_collection_aliases(name).aliases] == ["rt"]
        assert "rt" in {a.alias_name for a in client.get_aliases().aliases}
        assert client.count("rt").count == 3
        assert client.info().version == "1.19.0"
        assert client.delete_collection(name)
        assert not client.collection_exists(name)
    finally:
        client.close()


def test_official_client_read_only_key(keyed: InProcessGrpc) -> None:
    client = _client(keyed, RO)
    try:
        assert client.count(COLLECTION).count >= 1
        with pytest.raises(grpc.RpcError) as denied:
            client.upsert(COLLECTION, points=[models.PointStruct(id=99, vector=[1.0, 1.0])])
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
    finally:
        client.close()


def test_official_client_without_key_is_refused(keyed: InProcessGrpc) -> None:
    client = _client(keyed, None)
    try:
        with pytest.raises(grpc.RpcError) as refused:
            client.get_collections()
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    finally:
        client.close()


# -- TLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server() -> Iterator[InProcessGrpc]:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    credentials = grpc.ssl_server_credentials(
        [(leaf.private_key_pem.bytes(), b"".join(b.bytes() for b in leaf.cert_chain_pems))]
    )
    with grpc_server(ALL_KEYS, credentials=credentials, tls_root=ca.cert_pem.bytes()) as srv:
        yield srv


def test_tls_channel_with_key_succeeds(tls_server: InProcessGrpc) -> None:
    channel = tls_server.secure_channel()
    assert_code(call(channel, "/qdrant.Collections/List", metadata=key(MANAGE)), "OK")
    # Without a client certificate: the public gRPC port never asks for one (spec §6).
    assert_code(call(channel, "/qdrant.Collections/List"), "UNAUTHENTICATED", MSG_MISSING)


def test_plaintext_channel_to_tls_port_fails(tls_server: InProcessGrpc) -> None:
    result = call(tls_server.channel(), "/qdrant.Collections/List", metadata=key(MANAGE))
    assert result.code == "UNAVAILABLE"


def test_official_client_over_tls(tls_server: InProcessGrpc) -> None:
    assert tls_server.tls_root is not None
    client = QdrantClient(host="127.0.0.1", grpc_port=tls_server.port, prefer_grpc=True, https=True,
                          api_key=RO, check_compatibility=False, timeout=30,
                          grpc_options={"root_certificates": tls_server.tls_root})
    try:
        assert isinstance(client.get_collections().collections, list)
    finally:
        client.close()


def test_tls_channel_trusting_another_ca_fails(tls_server: InProcessGrpc) -> None:
    channel = tls_server.secure_channel(trustme.CA().cert_pem.bytes())
    result = call(channel, "/qdrant.Collections/List", metadata=key(MANAGE))
    assert result.code == "UNAVAILABLE"


# -- start-up --------------------------------------------------------------------------------


def test_bind_conflict_raises_a_clear_error(keyed: InProcessGrpc) -> None:
    settings = settings_for(ALL_KEYS, port=keyed.port)
    with pytest.raises(GrpcBindError, match=f"cannot bind 127.0.0.1:{keyed.port}"):
        start_grpc_server(settings, None, keyed.data, None)
    # The server already on that port is unaffected.
    assert_code(call(keyed.channel(), "/qdrant.Collections/List", metadata=key(MANAGE)), "OK")


def test_starting_does_not_import_qdrant_client() -> None:
    script = (
        "import sys\n"
        "from reference_server.data_plane import DataPlane\n"
        "from reference_server.grpc_api.server import start_grpc_server\n"
        "from tests.grpc_helpers import settings_for\n"
        "s = settings_for({})\n"
        "srv = start_grpc_server(s, None, DataPlane(), None)\n"
        "print('qdrant_client' in sys.modules)\n"
        "srv.stop(None).wait(5)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "False"


def test_health_answers_while_the_data_plane_loads() -> None:
    release = threading.Event()

    def slow_loader() -> _Backend:
        release.wait(30)
        raise RuntimeError("never loads in this test")

    plane = DataPlane(ready_timeout=0.3, loader=slow_loader)
    plane.start_loading()
    try:
        with grpc_server(ALL_KEYS, data=plane) as srv:
            channel = srv.channel()
            assert_code(call(channel, "/grpc.health.v1.Health/Check"), "OK")
            assert_code(call(channel, "/qdrant.Collections/List", metadata=key(MANAGE)), "UNAVAILABLE")
            # Authentication does not wait for the data plane either.
            assert_code(call(channel, "/qdrant.Collections/List"), "UNAUTHENTICATED")
    finally:
        release.set()


# -- the fault seam -----------------------------------------------------------------------


class _AnyoneIsManager(GrpcPolicy):
    """What a "gRPC without auth" fault would do: skip the credential check.

    Overrides identify(): since JWT and audit logging, that is the one authentication
    seam the server calls (it returns the audit identity with the grant); authenticate()
    is a final convenience wrapper around it.
    """

    def identify(self, path: str, metadata: Iterable[tuple[str, str | bytes]], *,
                 lookup: object = None) -> tuple[Access, Principal | None]:
        return Access.MANAGE, ANONYMOUS


def test_a_replacement_policy_changes_the_decision() -> None:
    settings = settings_for(ALL_KEYS)
    faulty = _AnyoneIsManager(AuthKeys.from_settings(settings), Emulation.of(settings.version))
    with grpc_server(ALL_KEYS, policy=faulty) as srv:
        assert_code(call(srv.channel(), "/qdrant.Collections/List"), "OK")


# -- as a process --------------------------------------------------------------------------


def test_subprocess_server_grpc_auth(reference_server: Callable[..., ServerProcess]) -> None:
    srv = reference_server({"service": {"api_key": MANAGE, "read_only_api_key": RO}}, ready_timeout=60)
    with grpc.insecure_channel(srv.grpc_target) as channel:
        assert_code(call(channel, "/qdrant.Collections/List"), "UNAUTHENTICATED", MSG_MISSING)
        assert_code(call(channel, "/qdrant.Collections/List", metadata=key(MANAGE)), "OK")
        assert_code(call(channel, "/grpc.health.v1.Health/Check"), "OK")
        assert_code(call(channel, "/qdrant.Collections/Create", _create_request("p"), metadata=key(RO)),
                    "PERMISSION_DENIED", MSG_GLOBAL_MANAGE)
        assert_code(call(channel, "/qdrant.Collections/Create", _create_request("p"), metadata=key(MANAGE)), "OK")
        assert_code(call(channel, "/no.Such/Method", metadata=key(MANAGE)), "UNIMPLEMENTED")
    assert MANAGE not in srv.logs() and RO not in srv.logs()


def test_subprocess_grpc_tls_never_asks_for_a_client_certificate(
    reference_server: Callable[..., ServerProcess],
) -> None:
    # verify_https_client_certificate guards REST only; public gRPC takes any TLS client (spec §6).
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    files = {
        "tls/cert.pem": b"".join(blob.bytes() for blob in leaf.cert_chain_pems),
        "tls/key.pem": leaf.private_key_pem.bytes(),
        "tls/cacert.pem": ca.cert_pem.bytes(),
    }
    srv = reference_server({"service": {"api_key": MANAGE, "enable_tls": True,
                                        "verify_https_client_certificate": True}}, files=files,
                           ready_timeout=60)
    creds = grpc.ssl_channel_credentials(root_certificates=ca.cert_pem.bytes())
    with grpc.secure_channel(srv.grpc_target, creds) as channel:
        assert_code(call(channel, "/qdrant.Collections/List", metadata=key(MANAGE)), "OK")
        assert_code(call(channel, "/qdrant.Collections/List"), "UNAUTHENTICATED", MSG_MISSING)
    with grpc.insecure_channel(srv.grpc_target) as plaintext:
        assert call(plaintext, "/qdrant.Collections/List", metadata=key(MANAGE)).code == "UNAVAILABLE"

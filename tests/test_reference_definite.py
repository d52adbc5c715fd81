"""The reference server answers every route and method it claims (issue 16).

Two views:

* the authorization sweep's own requests (the access table's sample rows, sent
  with the suite's clients, in the sweep's order and with all three manage-class
  credentials): the manage key never gets 5xx, UNIMPLEMENTED, UNAVAILABLE or
  INTERNAL, so every row's positive twin is conclusive;
* an outside Qdrant client (qdrant-client over REST and gRPC) using features a
  local-mode backend lacks: custom sharding with shard keys, snapshots, and
  gRPC server reflection.
"""

from __future__ import annotations

import json
import secrets
import warnings
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from qdrant_conformance.fixtures.catalog.access import AccessRow, load_access_table
from qdrant_conformance.fixtures.catalog.access_requests import (
    Names,
    grpc_request_bytes,
    multipart_upload,
    rest_body,
    rest_path,
)
from qdrant_conformance.fixtures.clients.grpc import GrpcClient
from qdrant_conformance.fixtures.clients.rest import RestClient
from qdrant_conformance.fixtures.outcomes import Outcome
from tests.server_helpers import ServerProcess, T, running_server

MANAGE = "manage-" + secrets.token_hex(12)
ALT = "alt-" + secrets.token_hex(12)
RO = "ro-" + secrets.token_hex(12)
KEYED = {"service": {"api_key": MANAGE, "alt_api_key": ALT, "read_only_api_key": RO}}

#: gRPC codes that say something about the request, not about the server's ability to serve it.
DEFINITE_GRPC = {"OK", "INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION", "ALREADY_EXISTS"}
MANAGE_CLASSES = (("manage", [("api-key", MANAGE)]), ("manage_bearer", [("authorization", f"Bearer {MANAGE}")]),
                  ("alt", [("api-key", ALT)]))


def _definite(outcome: Outcome) -> bool:
    if outcome.refused is not None:
        return False
    if outcome.protocol == "rest":
        return outcome.status is not None and outcome.status < 500 and outcome.status not in (401, 403)
    return outcome.code in DEFINITE_GRPC


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with running_server(KEYED) as srv:
        yield srv


def _setup(rest: RestClient, names: Names) -> None:
    headers = [("api-key", MANAGE)]
    created = rest.request("PUT", f"/collections/{names.main}", headers=headers,
                           json={"vectors": {"size": 4, "distance": "Cosine"}})
    assert created.succeeded, created.summary()
    points = [
        {"id": 1, "vector": [0.1, 0.2, 0.3, 0.4], "payload": {"color": "red"}},
        {"id": 2, "vector": [0.2, 0.1, 0.4, 0.3], "payload": {"color": "green"}},
        {"id": 3, "vector": [0.4, 0.3, 0.1, 0.2], "payload": {"color": "red"}},
    ]
    upserted = rest.request("PUT", f"/collections/{names.main}/points?wait=true", headers=headers,
                            json={"points": points})
    assert upserted.succeeded, upserted.summary()


def _send(row: AccessRow, protocol: str, headers: list[tuple[str, str]], names: Names,
          rest: RestClient, grpc_client: GrpcClient) -> Outcome:
    if protocol == "grpc":
        assert row.grpc is not None
        return grpc_client.call(row.grpc, grpc_request_bytes(row, names), metadata=headers)
    assert row.rest is not None
    path = rest_path(row, names)
    if row.multipart:
        content, ctype = multipart_upload()
        return rest.request(row.rest.method, path, headers=[*headers, ("content-type", ctype)], content=content)
    return rest.request(row.rest.method, path, headers=headers, json=rest_body(row, names))


def test_manage_key_gets_a_definite_answer_on_every_row(server: ServerProcess) -> None:
    names = Names.unique("definite")
    problems: list[str] = []
    counted = 0
    with RestClient(server.base_url, timeout=T) as rest, GrpcClient(server.grpc_target, timeout=T) as grpc_client:
        _setup(rest, names)
        for row in load_access_table():
            if row.access == "none":
                continue
            for protocol, present in (("rest", row.rest is not None), ("grpc", row.grpc is not None)):
                if not present:
                    continue
                for cls, headers in MANAGE_CLASSES:
                    outcome = _send(row, protocol, headers, names, rest, grpc_client)
                    counted += 1
                    # Rows where Qdrant itself answers past authentication with a code the sweep
                    # would call inconclusive (the table's past_auth_* fields): the reference
                    # server must answer exactly that (Health/Watch, ShardSnapshots on the
                    # public port, cluster-only routes on a single node).
                    marked = row.past_auth_code if protocol == "grpc" else row.past_auth_status
                    if marked is not None:
                        if not row.answered_past_auth(outcome):
                            problems.append(f"{row.id} {protocol} {cls}: {outcome.summary()} "
                                            f"(Qdrant answers {marked} past authentication: {row.note})")
                    elif not _definite(outcome):
                        problems.append(f"{row.id} {protocol} {cls}: {outcome.summary()}")
    assert counted > 300
    assert not problems, f"{len(problems)} inconclusive answer(s) to a manage key:\n" + "\n".join(problems)


# -- as an outside Qdrant client would use it -------------------------------------------------


def _client(server: ServerProcess, *, grpc_port: bool) -> Any:
    from qdrant_client import QdrantClient

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "api key used with an insecure connection"
        return QdrantClient(host=server.host, port=server.http_port, grpc_port=server.grpc_port or 0,
                            prefer_grpc=grpc_port, api_key=MANAGE, https=False, timeout=int(T))


@pytest.mark.parametrize("prefer_grpc", [False, True], ids=["rest", "grpc"])
def test_qdrant_client_custom_sharding(server: ServerProcess, prefer_grpc: bool) -> None:
    from qdrant_client import models

    client = _client(server, grpc_port=prefer_grpc)
    name = f"sharded_{'grpc' if prefer_grpc else 'rest'}_{secrets.token_hex(4)}"
    try:
        assert client.create_collection(
            name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT),
            sharding_method=models.ShardingMethod.CUSTOM)
        client.create_shard_key(name, "eu")
        client.create_shard_key(name, "us")
        client.upsert(name, [models.PointStruct(id=1, vector=[1.0, 0.0], payload={"r": "eu"})],
                      shard_key_selector="eu")
        client.upsert(name, [models.PointStruct(id=2, vector=[0.0, 1.0], payload={"r": "us"})],
                      shard_key_selector="us")
        assert client.count(name, exact=True).count == 2
        assert client.count(name, exact=True, shard_key_selector="eu").count == 1
        eu, _ = client.scroll(name, shard_key_selector="eu", with_payload=True)
        assert [p.payload for p in eu] == [{"r": "eu"}]
        keys = sorted(str(k.key) for k in client.list_shard_keys(name).shard_keys or [])
        assert keys == ["eu", "us"]
        # Data of a dropped shard key goes with it.
        client.delete_shard_key(name, "us")
        assert client.count(name, exact=True).count == 1
        # A custom-sharded collection refuses an upsert to an unknown key.
        with pytest.raises(Exception, match=r"(?i)shard key"):
            client.upsert(name, [models.PointStruct(id=3, vector=[1.0, 1.0])], shard_key_selector="nowhere")
    finally:
        client.delete_collection(name)
        client.close()


def test_qdrant_client_snapshots_round_trip(server: ServerProcess) -> None:
    from qdrant_client import models

    client = _client(server, grpc_port=False)
    name = f"snap_{secrets.token_hex(4)}"
    restored = name + "_restored"
    try:
        client.create_collection(name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
        client.upsert(name, [models.PointStruct(id=7, vector=[0.5, 0.5], payload={"k": "v"})])
        snap = client.create_snapshot(name)
        assert snap is not None and snap.name.endswith(".snapshot") and snap.size > 0 and snap.checksum
        assert [s.name for s in client.list_snapshots(name)] == [snap.name]
        downloaded = httpx.get(server.url(f"/collections/{name}/snapshots/{snap.name}"),
                               headers={"api-key": RO}, timeout=T)
        assert downloaded.status_code == 200 and len(downloaded.content) == snap.size
        upload = httpx.post(server.url(f"/collections/{restored}/snapshots/upload?wait=true"),
                            headers={"api-key": MANAGE}, timeout=T,
                            files={"snapshot": (snap.name, downloaded.content, "application/octet-stream")})
        assert upload.status_code == 200, upload.text
        assert client.retrieve(restored, [7])[0].payload == {"k": "v"}
        assert client.delete_snapshot(name, snap.name)
        assert client.list_snapshots(name) == []
    finally:
        client.delete_collection(name)
        client.delete_collection(restored)
        client.close()


def _reflect(server: ServerProcess, service: str, metadata: list[tuple[str, str]]) -> Any:
    from grpc_reflection.v1alpha import reflection_pb2 as v1alpha_pb2

    module: Any = v1alpha_pb2
    if service == "grpc.reflection.v1.ServerReflection":
        from grpc_reflection.v1alpha import reflection_pb2 as v1_pb2  # same messages as v1

        module = v1_pb2
    with grpc.insecure_channel(server.grpc_target) as channel:
        stream = channel.stream_stream(
            f"/{service}/ServerReflectionInfo",
            request_serializer=module.ServerReflectionRequest.SerializeToString,
            response_deserializer=module.ServerReflectionResponse.FromString,
        )
        answers = stream(iter([module.ServerReflectionRequest(list_services="")]), metadata=metadata, timeout=T)
        return [a.list_services_response for a in answers]


@pytest.mark.parametrize("service", ["grpc.reflection.v1.ServerReflection",
                                     "grpc.reflection.v1alpha.ServerReflection"])
def test_reflection_lists_services_behind_a_credential(server: ServerProcess, service: str) -> None:
    (listed,) = _reflect(server, service, [("api-key", RO)])  # any principal: no RBAC on reflection
    names = sorted(s.name for s in listed.service)
    assert names == sorted(["qdrant.Collections", "qdrant.Points", "qdrant.Snapshots", "qdrant.Qdrant",
                            "grpc.health.v1.Health", "qdrant.StorageRead"])
    with pytest.raises(grpc.RpcError) as refused:
        _reflect(server, service, [])
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_qdrant_client_lists_reflection_services(server: ServerProcess) -> None:
    """grpcio's own reflection client, as a tool like grpcurl would use it."""
    from google.protobuf.descriptor_pool import DescriptorPool
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    with grpc.insecure_channel(server.grpc_target,
                               options=[]) as channel:
        intercepted = grpc.intercept_channel(channel, _KeyInterceptor(MANAGE))
        database = ProtoReflectionDescriptorDatabase(intercepted)
        services = database.get_services()
        assert "qdrant.Points" in services
        pool = DescriptorPool(database)
        assert pool.FindServiceByName("qdrant.Points").FindMethodByName("Upsert") is not None


class _KeyInterceptor(grpc.StreamStreamClientInterceptor):  # type: ignore[misc]
    def __init__(self, key: str) -> None:
        self._key = key

    def intercept_stream_stream(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        metadata = [*(details.metadata or []), ("api-key", self._key)]
        new = details._replace(metadata=metadata) if hasattr(details, "_replace") else details
        return continuation(new, request_iterator)


def test_data_plane_shapes_of_qdrant_clients(server: ServerProcess) -> None:
    """``vectors`` is the alias of ``vector`` in a point; a missing point is 404, not 5xx."""
    name = f"shapes_{secrets.token_hex(4)}"
    headers = {"api-key": MANAGE}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=T) as http:
        assert http.put(f"/collections/{name}", json={"vectors": {"size": 2, "distance": "Dot"}}).status_code == 200
        try:
            put = http.put(f"/collections/{name}/points?wait=true",
                           json={"points": [{"id": 5, "vectors": [0.1, 0.2]}]})
            assert put.status_code == 200, put.text
            got = http.get(f"/collections/{name}/points/5").json()["result"]
            assert got["vector"] == pytest.approx([0.1, 0.2], rel=1e-3) or got["vector"]
            missing = http.post(f"/collections/{name}/points/vectors/delete?wait=true",
                                json={"points": [404404], "vector": [""]})
            assert missing.status_code == 404, missing.text
            assert "404404" in json.loads(missing.text)["status"]["error"]
        finally:
            http.delete(f"/collections/{name}")


def test_recovery_locations_follow_qdrant_rules(server: ServerProcess) -> None:
    """file:// confined to the snapshots dir (v1.17.1+); remote URLs fetched from loopback only (spec §10)."""
    name = f"recover_{secrets.token_hex(4)}"
    with httpx.Client(base_url=server.base_url, headers={"api-key": MANAGE}, timeout=T) as http:
        outside = http.put(f"/collections/{name}/snapshots/recover", json={"location": "file:///etc/passwd"})
        assert outside.status_code == 403
        assert outside.json()["status"]["error"].startswith(
            "Forbidden: Snapshot file path must be inside the snapshots directory")
        missing = http.put(f"/collections/{name}/snapshots/recover",
                           json={"location": f"file://{server.workdir}/snapshots/none.snapshot"})
        assert missing.status_code == 400
        remote = http.put(f"/collections/{name}/snapshots/recover",
                          json={"location": "http://192.0.2.1/x.snapshot"})  # TEST-NET: never contacted
        assert remote.status_code == 400 and "loopback" in remote.text


def test_url_recovery_switched_off_refuses_before_rbac() -> None:
    config = {"service": {**KEYED["service"], "enable_snapshot_url_recovery": False}}
    with running_server(config, grpc=False) as srv, httpx.Client(base_url=srv.base_url, timeout=T) as http:
        for key in (RO, MANAGE):
            answer = http.put("/collections/c/snapshots/recover", headers={"api-key": key},
                              json={"location": "http://127.0.0.1:9/x.snapshot"})
            assert answer.status_code == 403
            assert answer.json()["status"]["error"] == (
                "Forbidden: Snapshot recovery from remote URLs is disabled in the configuration")

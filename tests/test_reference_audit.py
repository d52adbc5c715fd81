"""The reference server's audit log (spec §10): what is written, when, and what POST /audit/logs returns."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from qdrant_conformance.fixtures.jwt_tokens import mint
from tests.grpc_helpers import call
from tests.server_helpers import ServerProcess, running_server

KEY = "qsc-audit-m-" + secrets.token_hex(16)
RO_KEY = "qsc-audit-r-" + secrets.token_hex(16)


def _config(version: str, **audit: Any) -> dict[str, Any]:
    return {"service": {"api_key": KEY, "read_only_api_key": RO_KEY, "jwt_rbac": True},
            "audit": {"enabled": True, **audit}, "reference_server": {"version": version}}


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerProcess]:
    with running_server(_config("1.19.0")) as server:
        with httpx.Client(base_url=server.base_url, headers={"api-key": KEY}, timeout=60) as http:
            http.put("/collections/audited", json={"vectors": {"size": 2, "distance": "Dot"}}).raise_for_status()
        yield server


def _lines(workdir: Path) -> list[dict[str, Any]]:
    files = sorted((workdir / "storage" / "audit").glob("audit.*.log"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def _token(subject: str, access: Any) -> str:
    return mint({"access": access, "subject": subject}, KEY, name="audit-test")


def test_allowed_and_refused_checks_are_lines_with_identity(srv: ServerProcess) -> None:
    subject = "alice-" + secrets.token_hex(4)
    token = _token(subject, [{"collection": "audited", "access": "r"}])
    with httpx.Client(base_url=srv.base_url, headers={"authorization": f"Bearer {token}"}, timeout=30) as http:
        assert http.get("/collections/audited", headers={"x-request-id": "t-ok"}).status_code == 200
        refused = http.put("/collections/audited/points", json={"points": [{"id": 1, "vector": [1.0, 0.0]}]})
        assert refused.status_code == 403
        assert http.get("/telemetry").status_code == 200
    mine = [e for e in _lines(srv.workdir) if e.get("subject") == subject]
    assert [e["result"] for e in mine] == ["ok", "denied"], mine
    ok, denied = mine
    assert list(ok) == ["timestamp", "method", "api", "auth_type", "subject", "remote", "collection", "tracing_id",
                        "result"]
    assert ok["auth_type"] == "Jwt" and ok["collection"] == "audited" and ok["tracing_id"] == "t-ok"
    assert ok["api"] == "/collections/audited" and ok["remote"] == "127.0.0.1"
    assert denied["error"] == "Forbidden: Write access to collection audited is required"
    assert token not in (srv.workdir / "storage" / "audit").joinpath(
        sorted(p.name for p in (srv.workdir / "storage" / "audit").iterdir())[-1]).read_text()


def test_keys_are_api_key_and_refused_logins_have_no_method(srv: ServerProcess) -> None:
    tracing = "t-login-" + secrets.token_hex(4)
    with httpx.Client(base_url=srv.base_url, timeout=30) as http:
        assert http.get("/logger", headers={"api-key": RO_KEY, "x-request-id": tracing + "-ro"}).status_code == 200
        forged = mint({"access": "m", "subject": "mallory"}, "not-the-key-" + secrets.token_hex(8), name="forged")
        assert http.get("/collections", headers={"authorization": f"Bearer {forged}",
                                                 "x-request-id": tracing}).status_code == 403
        assert http.get("/collections", headers={"x-tracing-id": tracing + "-none"}).status_code == 401
    lines = {e.get("tracing_id"): e for e in _lines(srv.workdir)}
    assert lines[tracing + "-ro"]["auth_type"] == "ApiKey" and lines[tracing + "-ro"]["method"] == "get_logger_config"
    login = lines[tracing]
    assert "method" not in login and "subject" not in login and login["auth_type"] == "None"
    assert login["result"] == "denied" and login["error"] == "Forbidden: InvalidSignature"
    assert lines[tracing + "-none"]["error"] == "Unauthorized: Must provide an API key or an Authorization bearer token"
    text = "".join(p.read_text() for p in (srv.workdir / "storage" / "audit").iterdir())
    assert KEY not in text and RO_KEY not in text and forged not in text


def test_grpc_checks_are_audited(srv: ServerProcess) -> None:
    from qdrant_client import grpc as qg

    subject = "bob-" + secrets.token_hex(4)
    token = _token(subject, "r")
    with grpc.insecure_channel(srv.grpc_target) as channel:
        md = [("authorization", f"Bearer {token}"), ("x-request-id", "g-" + subject)]
        got = call(channel, "/qdrant.Collections/Get",
                   qg.GetCollectionInfoRequest(collection_name="audited").SerializeToString(), metadata=md)
        assert got.code == "OK"
        got = call(channel, "/qdrant.Collections/Delete",
                   qg.DeleteCollection(collection_name="audited").SerializeToString(), metadata=md)
        assert got.code == "PERMISSION_DENIED"
        assert call(channel, "/qdrant.Qdrant/HealthCheck", b"", metadata=md).code == "OK"
    mine = [e for e in _lines(srv.workdir) if e.get("subject") == subject]
    assert [(e["result"], e["api"], e["auth_type"]) for e in mine] == [
        ("ok", "/qdrant.Collections/Get", "Jwt"), ("denied", "/qdrant.Collections/Delete", "Jwt")], mine
    assert mine[0]["tracing_id"] == "g-" + subject and mine[0]["collection"] == "audited"


def test_post_audit_logs_filters_newest_first(srv: ServerProcess) -> None:
    subject = "carol-" + secrets.token_hex(4)
    token = _token(subject, "m")
    with httpx.Client(base_url=srv.base_url, timeout=30) as http:
        for name in ("a", "b", "c"):
            http.get(f"/collections/{name}", headers={"authorization": f"Bearer {token}"})
        got = http.post("/audit/logs", headers={"api-key": KEY}, json={"filters": {"subject": subject}, "limit": 2})
        assert got.status_code == 200, got.text
        assert [e["collection"] for e in got.json()["result"]["entries"]] == ["c", "b"]
        nothing = http.post("/audit/logs", headers={"api-key": KEY}, json={"filters": {"no_such_field": "x"}})
        assert nothing.json()["result"]["entries"] == []
        assert http.post("/audit/logs", headers={"api-key": RO_KEY}, json={}).status_code == 403
        assert http.post("/audit/logs", headers={"api-key": KEY}, json={"limit": 0}).status_code == 400


@pytest.mark.parametrize(("version", "denied_logins"), [("1.17.0", False), ("1.16.3", None)])
def test_version_gating(version: str, denied_logins: bool | None) -> None:
    with running_server(_config(version)) as server, httpx.Client(base_url=server.base_url, timeout=30) as http:
        http.get("/collections", headers={"api-key": KEY})
        http.get("/collections", headers={"api-key": "wrong-" + secrets.token_hex(8)})
        answer = http.post("/audit/logs", headers={"api-key": KEY}, json={})
        if denied_logins is None:  # before v1.17.0 there is no audit log
            assert answer.status_code == 400 and "not enabled" in answer.text
            assert not (server.workdir / "storage" / "audit").exists()
            return
        assert answer.status_code == 200
        lines = _lines(server.workdir)
        assert {e["result"] for e in lines} == {"ok"}, "refused logins are logged from v1.17.1"
        assert all("api" not in e and "tracing_id" not in e for e in lines)

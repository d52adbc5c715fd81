"""The reference server's REST API: auth, whitelist, RBAC, CORS, data, TLS, mTLS and rotation.

Every server here is a real ``python -m reference_server`` process (see
``tests/server_helpers.py``). Expectations come from the spec (§2, §4, §6,
§7, §10), not from the server's own tables.
"""

from __future__ import annotations

import secrets
import socket
import ssl
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from cryptography import x509

from tests.server_helpers import ServerProcess, T, assert_refused, poll, running_server, write_file

MANAGE = "manage-" + secrets.token_hex(12)
ALT = "alt-" + secrets.token_hex(12)
READ_ONLY = "ro-" + secrets.token_hex(12)
MSG_MISSING = "Must provide an API key or an Authorization bearer token"
MSG_INVALID = "Invalid API key or JWT"
MSG_MANAGE = "Forbidden: Global manage access is required"
KEYED = {"service": {"api_key": MANAGE, "alt_api_key": ALT, "read_only_api_key": READ_ONLY}}
VECTORS = {"vectors": {"size": 4, "distance": "Dot"}}
POINTS = {
    "points": [
        {"id": 1, "vector": [1.0, 0.0, 0.0, 0.0], "payload": {"colour": "red"}},
        {"id": 2, "vector": [0.0, 1.0, 0.0, 0.0], "payload": {"colour": "blue"}},
        {"id": 3, "vector": [0.0, 0.0, 1.0, 0.0], "payload": {"colour": "red"}},
    ]
}


def keyed(version: str | None = None, **service: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"service": {**KEYED["service"], **service}}
    if version is not None:
        config["reference_server"] = {"version": version}
    return config


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerProcess]:
    with running_server(keyed(), grpc=False) as server:
        yield server


#: A new connection per request. Like Qdrant (spec §9b), the server closes a connection whose request
#: it answered before the body arrived; a pooled connection could be picked up just before its FIN.
NO_KEEPALIVE = httpx.Limits(max_keepalive_connections=0)


@pytest.fixture(scope="module")
def http(srv: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.base_url, timeout=T, limits=NO_KEEPALIVE) as client:
        yield client


def m(key: str = MANAGE) -> dict[str, str]:
    return {"api-key": key}


def collection_name() -> str:
    return "c_" + secrets.token_hex(4)


# -- the route table ---------------------------------------------------------------------


def test_route_table_covers_every_qdrant_client_route() -> None:
    """Each of the 69 method/path pairs in qdrant-client's REST API has a row, with a handler that exists."""
    import ast
    import re

    import qdrant_client

    from qdrant_conformance.reference_server.rest import handlers
    from qdrant_conformance.reference_server.rest.routes import ROUTES

    api_dir = Path(qdrant_client.__file__).parent / "http" / "api"
    client_pairs = set()
    for source in api_dir.glob("*_api.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "request":
                kw = {k.arg: k.value for k in node.keywords}
                if "method" in kw and "url" in kw:
                    client_pairs.add((ast.literal_eval(kw["method"]), ast.literal_eval(kw["url"])))
    assert len(client_pairs) == 69

    def shape(path: str) -> str:
        return re.sub(r"\{[^}]+\}", "{}", path)

    table = {(r.method, shape(r.path)) for r in ROUTES}
    assert sorted(p for p in client_pairs if (p[0], shape(p[1])) not in table) == []
    assert len({r.label for r in ROUTES}) == len(ROUTES)
    for route in ROUTES:
        if route.handler is not None:
            assert route.handler in handlers.INLINE or route.handler in handlers.BLOCKING, route.label


# -- authentication (spec §2.2-§2.4) ----------------------------------------------------


def test_manage_key_is_accepted(http: httpx.Client) -> None:
    response = http.get("/collections", headers=m())
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_missing_key_gets_401_with_bare_body(http: httpx.Client) -> None:
    response = http.get("/collections")
    assert response.status_code == 401
    assert response.text == MSG_MISSING
    assert "content-type" not in response.headers
    assert "www-authenticate" not in response.headers


def test_wrong_key_gets_401_with_bare_body(http: httpx.Client) -> None:
    response = http.get("/collections", headers=m("not-the-key"))
    assert response.status_code == 401
    assert response.text == MSG_INVALID
    assert "content-type" not in response.headers
    assert "www-authenticate" not in response.headers


@pytest.mark.parametrize("key", [MANAGE, ALT], ids=["manage", "alt"])
def test_full_keys_may_write(http: httpx.Client, key: str) -> None:
    name = collection_name()
    created = http.put(f"/collections/{name}", json=VECTORS, headers=m(key))
    assert created.status_code == 200, created.text
    assert http.delete(f"/collections/{name}", headers=m(key)).json()["result"] is True


@pytest.mark.parametrize(
    ("headers", "status", "body"),
    [
        ({"API-KEY": MANAGE}, 200, None),
        ({"Authorization": f"Bearer {MANAGE}"}, 200, None),
        ({"Authorization": f"Bearer {READ_ONLY}"}, 200, None),
        ({"Authorization": f"bearer {MANAGE}"}, 401, MSG_MISSING),
        ({"Authorization": f"Bearer:{MANAGE}"}, 401, MSG_MISSING),
        ({"Authorization": f"Basic {MANAGE}"}, 401, MSG_MISSING),
        ({"api-key": "wrong", "Authorization": f"Bearer {MANAGE}"}, 401, MSG_INVALID),
        ({"api-key": "", "Authorization": f"Bearer {MANAGE}"}, 401, MSG_INVALID),
        ({"api-key": MANAGE, "Authorization": "Bearer wrong"}, 200, None),
    ],
    ids=["upper-case-name", "bearer", "bearer-ro", "lower-bearer", "bearer-colon", "basic",
         "wrong-api-key-wins", "empty-api-key-wins", "api-key-beats-bad-bearer"],
)
def test_header_precedence(http: httpx.Client, headers: dict[str, str], status: int, body: str | None) -> None:
    response = http.get("/collections", headers=headers)
    assert response.status_code == status
    if body is not None:
        assert response.text == body


def test_only_first_api_key_header_counts(http: httpx.Client) -> None:
    first_wrong = http.get("/collections", headers=[("api-key", "wrong"), ("api-key", MANAGE)])
    first_right = http.get("/collections", headers=[("api-key", MANAGE), ("api-key", "wrong")])
    assert first_wrong.status_code == 401
    assert first_right.status_code == 200


def test_non_ascii_api_key_counts_as_absent(http: httpx.Client) -> None:
    response = http.get("/collections", headers=[(b"api-key", "kéy".encode("latin-1"))])
    assert response.status_code == 401
    assert response.text == MSG_MISSING


def test_query_parameter_is_not_a_credential(http: httpx.Client) -> None:
    assert http.get("/collections", params={"api-key": MANAGE, "api_key": MANAGE}).status_code == 401


# -- whitelist and paths (spec §2.5) ------------------------------------------------------

WHITELISTED = [("/", 200, "qdrant - vector search engine"), ("/healthz", 200, "healthz check passed"),
               ("/livez", 200, "healthz check passed"), ("/readyz", 200, "all shards are ready")]


@pytest.mark.parametrize(("path", "status", "text"), WHITELISTED)
@pytest.mark.parametrize("headers", [{}, {"api-key": "bogus"}, {"Authorization": "Bearer bogus"}, m()],
                         ids=["none", "bogus-key", "bogus-bearer", "manage"])
def test_whitelisted_routes_ignore_credentials(
    http: httpx.Client, path: str, status: int, text: str, headers: dict[str, str]
) -> None:
    response = http.get(path, headers=headers)
    assert response.status_code == status
    assert text in response.text


def test_root_reports_version_and_health_is_text(http: httpx.Client) -> None:
    root = http.get("/").json()
    assert root["title"] == "qdrant - vector search engine"
    assert root["version"] == "1.19.0"
    assert http.get("/healthz").headers["content-type"].startswith("text/plain")


def test_metrics_and_telemetry_need_a_key(http: httpx.Client) -> None:
    for path in ("/metrics", "/telemetry", "/cluster", "/issues"):
        assert http.get(path).status_code == 401, path
    metrics = http.get("/metrics", headers=m(READ_ONLY))
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "app_info" in metrics.text
    telemetry = http.get("/telemetry", headers=m(READ_ONLY))
    assert telemetry.status_code == 200
    for secret in (MANAGE, ALT, READ_ONLY):
        assert secret not in telemetry.text


def test_unknown_path_is_401_without_key_and_404_with_one(http: httpx.Client) -> None:
    assert http.get("/no/such/route").status_code == 401
    assert http.get("/no/such/route", headers=m()).status_code == 404
    # A known pattern with a method it does not serve is routed the same way.
    assert http.patch("/collections").status_code == 401
    assert http.patch("/collections", headers=m()).status_code == 404


def test_whitelisted_pattern_with_other_method_is_routed_not_authenticated(http: httpx.Client) -> None:
    assert http.post("/healthz").status_code == 404
    assert http.post("/").status_code == 404


@pytest.mark.parametrize(
    ("path", "no_key", "with_key"),
    [
        ("/dashboard%2f..%2fcollections", 401, 404),
        ("/dashboard", 401, 404),  # no static-content directory: no dashboard
        ("//healthz/", 200, 200),
        ("/healthz//", 200, 200),
        ("/readyzX", 401, 404),
        ("/livez/x", 401, 404),
        ("/collections/", 401, 200),
        ("//collections", 401, 200),
    ],
)
def test_path_tricks_v1_19(http: httpx.Client, path: str, no_key: int, with_key: int) -> None:
    assert _raw_get(http, path).status_code == no_key
    assert _raw_get(http, path, m()).status_code == with_key


def _raw_get(http: httpx.Client, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """GET ``path`` exactly as written (httpx would otherwise normalise it)."""
    url = httpx.URL(str(http.base_url).rstrip("/")).copy_with(raw_path=path.encode())
    return http.get(url, headers=headers)


def test_path_tricks_before_v1_18_2_skip_auth_by_prefix() -> None:
    with running_server(keyed("1.18.1"), grpc=False) as old, httpx.Client(base_url=old.base_url, timeout=T) as http:
        assert _raw_get(http, "/readyzX").status_code == 404
        assert _raw_get(http, "/livez/x").status_code == 404
        assert _raw_get(http, "//readyz/").status_code == 200
        # Unknown paths outside the whitelist still need a key.
        assert _raw_get(http, "/no/such/route").status_code == 401
        assert _raw_get(http, "/dashboard%2f..%2fcollections").status_code == 401


# -- read-only key (spec §4) ----------------------------------------------------------------


def test_read_only_key_reads(http: httpx.Client) -> None:
    name = collection_name()
    assert http.put(f"/collections/{name}", json=VECTORS, headers=m()).status_code == 200
    try:
        for method, path, body in [
            ("GET", "/collections", None),
            ("GET", f"/collections/{name}", None),
            ("GET", f"/collections/{name}/exists", None),
            ("GET", "/aliases", None),
            ("POST", f"/collections/{name}/points/scroll", {"limit": 1}),
            ("POST", f"/collections/{name}/points/count", {}),
            ("POST", f"/collections/{name}/points/query", {"limit": 1}),
        ]:
            response = http.request(method, path, json=body, headers=m(READ_ONLY))
            assert response.status_code == 200, (method, path, response.text)
    finally:
        http.delete(f"/collections/{name}", headers=m())


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/collections/{c}", VECTORS),
        ("DELETE", "/collections/{c}", None),
        ("PUT", "/collections/{c}/points", POINTS),
        ("POST", "/collections/{c}/points/delete", {"points": [1]}),
        ("POST", "/collections/aliases", {"actions": [{"delete_alias": {"alias_name": "a"}}]}),
        ("POST", "/collections/{c}/snapshots", None),
        ("DELETE", "/issues", None),
        ("POST", "/cluster/recover", None),
    ],
)
def test_read_only_key_write_gets_403_json(http: httpx.Client, method: str, path: str, body: object) -> None:
    name = collection_name()
    http.put(f"/collections/{name}", json=VECTORS, headers=m())
    try:
        response = http.request(method, path.format(c=name), json=body, headers=m(READ_ONLY))
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == "application/json"
        envelope = response.json()
        assert envelope["status"] == {"error": MSG_MANAGE}
        assert isinstance(envelope["time"], float)
        assert "result" not in envelope
        # Positive twin: the manage key is not refused on the same request.
        twin = http.request(method, path.format(c=name), json=body, headers=m())
        assert twin.status_code not in (401, 403), twin.text
    finally:
        http.delete(f"/collections/{name}", headers=m())


def test_read_only_key_stream_shard_snapshot_gets_403_text(http: httpx.Client) -> None:
    response = http.get("/collections/any/shards/0/snapshot", headers=m(READ_ONLY))
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == MSG_MANAGE
    twin = http.get("/collections/any/shards/0/snapshot", headers=m())
    assert twin.status_code not in (401, 403)


@pytest.mark.parametrize("path", ["/collections/c/snapshots/upload", "/collections/c/shards/0/snapshots/upload",
                                  "/collections/c/shards/0/snapshot/partial/recover"])
def test_upload_refused_as_text_before_body(http: httpx.Client, path: str) -> None:
    files = {"snapshot": ("s.snapshot", b"\0" * 4096)}
    response = http.post(path, files=files, headers=m(READ_ONLY))
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == MSG_MANAGE
    assert http.post(path, files=files, headers=m()).status_code not in (401, 403)


def test_upload_refusal_does_not_wait_for_the_body(srv: ServerProcess) -> None:
    """GHSA-3v92-w72v-j994: the refusal arrives while the (huge) upload has barely started."""
    head = (
        f"POST /collections/c/snapshots/upload HTTP/1.1\r\nHost: 127.0.0.1\r\napi-key: {READ_ONLY}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1073741824\r\n\r\n--b\r\n"
    ).encode()

    def first_status_line(key: str) -> bytes:
        with socket.create_connection(("127.0.0.1", srv.http_port), timeout=T) as conn:
            conn.sendall(head.replace(READ_ONLY.encode(), key.encode()))
            return conn.recv(4096).split(b"\r\n", 1)[0]

    assert first_status_line(READ_ONLY) == b"HTTP/1.1 403 Forbidden"
    # Positive twin: the manage key is not refused. An accepted upload is read to its end,
    # so the twin sends a whole (small, not-a-snapshot) body: 400, not 401/403.
    body = b'--b\r\nContent-Disposition: form-data; name="snapshot"; filename="s"\r\n\r\nnope\r\n--b--\r\n'
    whole = (f"POST /collections/c/snapshots/upload HTTP/1.1\r\nHost: 127.0.0.1\r\napi-key: {MANAGE}\r\n"
             f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", srv.http_port), timeout=T) as conn:
        conn.sendall(whole + body)
        assert conn.recv(4096).split(b"\r\n", 1)[0] == b"HTTP/1.1 400 Bad Request"


def test_body_is_checked_before_access(http: httpx.Client) -> None:
    name = collection_name()
    broken = http.put(f"/collections/{name}/points", content=b"{not json", headers=m(READ_ONLY))
    assert broken.status_code == 400
    assert "error" in broken.json()["status"]
    wrong_shape = http.put(f"/collections/{name}/points", json={"pointz": []}, headers=m(READ_ONLY))
    assert wrong_shape.status_code == 400
    # Positive twin: a well-formed body reaches the access check.
    assert http.put(f"/collections/{name}/points", json=POINTS, headers=m(READ_ONLY)).status_code == 403


# -- connections after an early refusal (spec §9b) -------------------------------------------------

SEARCH_BODY = b'{"vector": [1.0, 0.0, 0.0, 0.0], "limit": 1}'
CLOSE_DEADLINE_S = 2.0


def _post_head(key: str | None, length: int = len(SEARCH_BODY)) -> bytes:
    credential = f"api-key: {key}\r\n" if key is not None else ""
    return (f"POST /collections/c/points/search HTTP/1.1\r\nHost: 127.0.0.1\r\n{credential}"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n").encode()


def _read_response(conn: socket.socket) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """Status line, headers (lower-case names) and body of one response; asserts it is complete."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, f"connection closed before a complete response head: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    status, *lines = head.split(b"\r\n")
    headers = {name.strip().lower(): value.strip() for name, value in (line.split(b":", 1) for line in lines)}
    length = int(headers[b"content-length"])
    while len(body) < length:
        chunk = conn.recv(65536)
        assert chunk, f"connection closed inside the response body: {body!r}"
        body += chunk
    assert len(body) == length, f"bytes after the response: {body[length:]!r}"
    return status, headers, body


@pytest.fixture(params=["plaintext", "tls"])
def connect(request: pytest.FixtureRequest, test_ca: trustme.CA) -> Iterator[Any]:
    """``connect()`` → a raw socket (TLS-wrapped for the TLS server) to a keyed reference server."""
    opened: list[socket.socket] = []
    server = request.getfixturevalue("srv" if request.param == "plaintext" else "tls_srv")

    def make() -> socket.socket:
        raw = socket.create_connection(("127.0.0.1", server.http_port), timeout=10)
        conn = raw if request.param == "plaintext" else \
            client_context(test_ca).wrap_socket(raw, server_hostname="127.0.0.1")
        opened.append(conn)
        return conn

    yield make
    for conn in opened:
        conn.close()


def test_refusal_before_the_body_arrived_closes_without_connection_close(connect: Any) -> None:
    """As actix: the complete 401, then EOF, and no ``Connection: close`` announcing it."""
    conn = connect()
    conn.sendall(_post_head(None))  # the body is withheld until the answer is in
    status, headers, body = _read_response(conn)
    assert status == b"HTTP/1.1 401 Unauthorized" and body.decode() == MSG_MISSING
    assert b"connection" not in headers, headers
    # The close follows the answer at once; well inside the 5 s keep-alive timeout after which
    # uvicorn's own protocol would close the idle connection too.
    conn.settimeout(CLOSE_DEADLINE_S)
    assert conn.recv(1) == b"", "the server kept the connection open"
    # Positive twin: with the manage key the same two-part request is answered (no collection `c`: 404).
    twin = connect()
    twin.sendall(_post_head(MANAGE))
    twin.sendall(SEARCH_BODY)
    assert _read_response(twin)[0].split()[1] == b"404"


def test_refusal_after_the_whole_request_arrived_keeps_the_connection(connect: Any) -> None:
    conn = connect()
    conn.sendall(_post_head(None) + SEARCH_BODY)  # head and body in one write
    status, headers, body = _read_response(conn)
    assert status == b"HTTP/1.1 401 Unauthorized" and body.decode() == MSG_MISSING
    assert b"connection" not in headers, headers
    conn.sendall(f"GET /collections HTTP/1.1\r\nHost: 127.0.0.1\r\napi-key: {MANAGE}\r\n\r\n".encode())
    status, _, body = _read_response(conn)
    assert status == b"HTTP/1.1 200 OK" and b'"collections"' in body


# -- CORS (spec §2.6, §10) ------------------------------------------------------------------


def test_cors_preflight_needs_no_key(http: httpx.Client) -> None:
    origin = "https://ui.example"
    response = http.options("/collections", headers={"Origin": origin, "Access-Control-Request-Method": "PUT",
                                                     "Access-Control-Request-Headers": "api-key"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == origin
    assert "access-control-allow-credentials" not in response.headers
    assert response.content == b""
    # Positive twin of the refusal: OPTIONS without the preflight headers reaches auth.
    assert http.options("/collections").status_code == 401


def test_cors_headers_on_refusals(http: httpx.Client) -> None:
    origin = "https://ui.example"
    refused = http.get("/collections", headers={"Origin": origin})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == origin
    forbidden = http.delete("/collections/x", headers={"Origin": origin, **m(READ_ONLY)})
    assert forbidden.status_code == 403
    assert forbidden.headers["access-control-allow-origin"] == origin


def test_cors_off_means_preflight_needs_a_key() -> None:
    with running_server(keyed(enable_cors=False), grpc=False) as server, httpx.Client(timeout=T) as http:
        preflight = {"Origin": "https://ui.example", "Access-Control-Request-Method": "GET"}
        response = http.options(server.url("/collections"), headers=preflight)
        assert response.status_code == 401
        assert "access-control-allow-origin" not in response.headers
        assert http.get(server.url("/collections"), headers={"Origin": "https://x", **m()}).status_code == 200


# -- versions (spec §9) -----------------------------------------------------------------------


def test_v1_8_0_refuses_with_403() -> None:
    with running_server(keyed("1.8.0"), grpc=False) as old, httpx.Client(base_url=old.base_url, timeout=T) as http:
        missing = http.get("/collections")
        wrong = http.get("/collections", headers=m("wrong"))
        assert (missing.status_code, missing.text) == (403, "Invalid api-key")
        assert (wrong.status_code, wrong.text) == (403, "Invalid api-key")
        assert http.get("/collections", headers=m()).status_code == 200
        assert http.get("/collections", headers=m(READ_ONLY)).status_code == 200
        write = http.put("/collections/x", json=VECTORS, headers=m(READ_ONLY))
        assert (write.status_code, write.text) == (403, "Invalid api-key")
        # The alt key did not exist before v1.17.0.
        assert http.get("/collections", headers=m(ALT)).status_code == 403


def test_alt_key_ignored_before_v1_17() -> None:
    with running_server(keyed("1.16.0"), grpc=False) as old, httpx.Client(base_url=old.base_url, timeout=T) as http:
        assert http.get("/collections", headers=m(ALT)).status_code == 401
        assert http.get("/collections", headers=m()).status_code == 200


def test_empty_key_is_unset_in_v1_19_and_open() -> None:
    with running_server({"service": {"api_key": ""}}, grpc=False) as server:
        assert httpx.get(server.url("/collections"), timeout=T).status_code == 200
        assert "is set but empty" in server.logs()


# -- data through the REST API ------------------------------------------------------------------


def test_aliases_round_trip(http: httpx.Client) -> None:
    name, alias = collection_name(), collection_name()
    assert http.put(f"/collections/{name}", json=VECTORS, headers=m()).status_code == 200
    try:
        change = {"actions": [{"create_alias": {"collection_name": name, "alias_name": alias}}]}
        assert http.post("/collections/aliases", json=change, headers=m()).json()["result"] is True
        listed = http.get(f"/collections/{name}/aliases", headers=m(READ_ONLY)).json()["result"]["aliases"]
        assert listed == [{"alias_name": alias, "collection_name": name}]
        everywhere = http.get("/aliases", headers=m(READ_ONLY)).json()["result"]["aliases"]
        assert alias in {a["alias_name"] for a in everywhere}
        assert http.get(f"/collections/{alias}", headers=m()).status_code == 200
    finally:
        http.delete(f"/collections/{name}", headers=m())


def test_missing_collection_is_404_envelope(http: httpx.Client) -> None:
    response = http.get("/collections/nope_missing", headers=m())
    assert response.status_code == 404
    assert response.json()["status"] == {"error": "Not found: Collection `nope_missing` doesn't exist!"}


def test_snapshot_list_answers_after_access_check(http: httpx.Client) -> None:
    name = collection_name()
    assert http.put(f"/collections/{name}", json=VECTORS, headers=m()).status_code == 200
    try:
        assert http.get(f"/collections/{name}/snapshots").status_code == 401
        response = http.get(f"/collections/{name}/snapshots", headers=m(READ_ONLY))
        assert response.status_code == 200
        assert response.json()["result"] == []
        assert http.get("/collections/nope_missing/snapshots", headers=m()).status_code == 404
    finally:
        http.delete(f"/collections/{name}", headers=m())


def test_points_round_trip(http: httpx.Client) -> None:
    name = collection_name()
    assert http.put(f"/collections/{name}", json=VECTORS, headers=m()).json()["result"] is True
    try:
        assert http.put(f"/collections/{name}/points?wait=true", json=POINTS, headers=m()).status_code == 200
        count = http.post(f"/collections/{name}/points/count", json={"exact": True}, headers=m(READ_ONLY))
        assert count.json()["result"] == {"count": 3}
        hits = http.post(f"/collections/{name}/points/query",
                         json={"query": [0.0, 0.0, 1.0, 0.0], "limit": 1}, headers=m(READ_ONLY))
        assert hits.json()["result"]["points"][0]["id"] == 3
        legacy = http.post(f"/collections/{name}/points/search",
                           json={"vector": [1.0, 0.0, 0.0, 0.0], "limit": 1}, headers=m(READ_ONLY))
        assert legacy.json()["result"][0]["id"] == 1
        point = http.get(f"/collections/{name}/points/2", headers=m(READ_ONLY)).json()["result"]
        assert point["payload"] == {"colour": "blue"}
        assert http.post(f"/collections/{name}/points/delete", json={"points": [1]}, headers=m()).status_code == 200
        scroll = http.post(f"/collections/{name}/points/scroll", json={"limit": 10}, headers=m()).json()
        assert sorted(p["id"] for p in scroll["result"]["points"]) == [2, 3]
    finally:
        http.delete(f"/collections/{name}", headers=m())


def test_request_size_limits() -> None:
    config = keyed(max_request_size_mb=1)
    with running_server(config, grpc=False) as server, \
            httpx.Client(base_url=server.base_url, timeout=T, limits=NO_KEEPALIVE) as http:
        big = b'{"points": [], "pad": "' + b"x" * (1024 * 1024 + 10) + b'"}'
        over = http.put("/collections/c/points", content=big, headers={"content-type": "application/json", **m()})
        assert over.status_code == 400
        assert over.json()["status"]["error"].startswith("JSON payload")
        small_route = http.post("/logger", content=b'{"x":"' + b"y" * (3 * 1024 * 1024) + b'"}', headers=m())
        assert small_route.status_code == 413
        assert small_route.headers["content-type"].startswith("text/plain")
        assert http.put("/collections/c/points", content=big).status_code == 401


@pytest.mark.parametrize("transport", ["http", "https"])
def test_official_client_over_rest(request: pytest.FixtureRequest, test_ca: trustme.CA, transport: str) -> None:
    from qdrant_client import QdrantClient, models

    server: ServerProcess = request.getfixturevalue("srv" if transport == "http" else "tls_srv")
    name = collection_name()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Api key is used with an insecure connection"
        client = QdrantClient(url=server.base_url, api_key=MANAGE, prefer_grpc=False, timeout=int(T),
                              check_compatibility=False, verify=client_context(test_ca))
    try:
        client.create_collection(name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
        client.upsert(name, points=[models.PointStruct(id=i, vector=[float(i == j) for j in range(4)],
                                                       payload={"n": i}) for i in range(4)], wait=True)
        assert client.count(name, exact=True).count == 4
        hits = client.query_points(name, query=[0.0, 1.0, 0.0, 0.0], limit=1).points
        assert hits[0].id == 1
        points, _ = client.scroll(name, limit=10)
        assert len(points) == 4
        client.delete(name, points_selector=models.PointIdsList(points=[0]), wait=True)
        assert client.count(name, exact=True).count == 3
        assert client.collection_exists(name)
    finally:
        client.delete_collection(name)
        client.close()
    assert not client_exists(server, name, test_ca)


def client_exists(srv: ServerProcess, name: str, ca: trustme.CA) -> bool:
    response = httpx.get(srv.url(f"/collections/{name}/exists"), headers=m(), verify=client_context(ca), timeout=T)
    result: bool = response.json()["result"]["exists"]
    return result


def test_official_client_without_key_is_refused(srv: ServerProcess) -> None:
    from qdrant_client import QdrantClient
    from qdrant_client.http.exceptions import UnexpectedResponse

    client = QdrantClient(url=srv.base_url, prefer_grpc=False, timeout=int(T))
    try:
        with pytest.raises(UnexpectedResponse) as refused:
            client.get_collections()
        assert refused.value.status_code == 401
    finally:
        client.close()


def test_logs_never_contain_keys(srv: ServerProcess, http: httpx.Client) -> None:
    for key in (MANAGE, ALT, READ_ONLY, "wrong-" + MANAGE):
        http.get("/collections", headers=m(key))
        http.get("/collections", headers={"Authorization": f"Bearer {key}"})
    log = srv.logs()
    assert "GET /collections" in log  # the requests were logged ...
    for key in (MANAGE, ALT, READ_ONLY):
        assert key not in log  # ... without their credentials


# -- TLS (spec §6) -------------------------------------------------------------------------------


def tls_files(ca: trustme.CA, *, with_ca: bool = True) -> tuple[dict[str, bytes], trustme.LeafCert]:
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    files = {
        "tls/cert.pem": b"".join(blob.bytes() for blob in leaf.cert_chain_pems),
        "tls/key.pem": leaf.private_key_pem.bytes(),
    }
    if with_ca:
        files["tls/cacert.pem"] = ca.cert_pem.bytes()
    return files, leaf


def client_context(ca: trustme.CA, client: trustme.LeafCert | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    if client is not None:
        client.configure_cert(ctx)
    return ctx


def peer_serial(port: int, ctx: ssl.SSLContext) -> int:
    """Serial of the certificate a fresh handshake gets."""
    with socket.create_connection(("127.0.0.1", port), timeout=T) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def leaf_serial(leaf: trustme.LeafCert) -> int:
    return x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes()).serial_number


@pytest.fixture(scope="module")
def tls_srv(test_ca: trustme.CA) -> Iterator[ServerProcess]:
    files, _ = tls_files(test_ca)
    config = keyed(enable_tls=True)
    with running_server(config, files=files, grpc=False, ready_context=client_context(test_ca)) as server:
        yield server


def test_https_works_and_plain_http_is_refused(tls_srv: ServerProcess, test_ca: trustme.CA) -> None:
    with httpx.Client(verify=client_context(test_ca), timeout=T) as https:
        assert https.get(tls_srv.url("/collections"), headers=m()).status_code == 200
    plain_url = tls_srv.url("/collections").replace("https://", "http://")
    assert_refused(lambda: httpx.get(plain_url, headers=m(), timeout=T))


def test_tls_1_1_refused_and_1_2_aead_only(tls_srv: ServerProcess, test_ca: trustme.CA) -> None:
    old = client_context(test_ca)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    assert_refused(lambda: httpx.get(tls_srv.url("/readyz"), verify=old, timeout=T))
    cbc = client_context(test_ca)
    cbc.maximum_version = ssl.TLSVersion.TLSv1_2
    cbc.set_ciphers("ECDHE+AES128+SHA:ECDHE+AES256+SHA:AES128-SHA:AES256-SHA")
    assert_refused(lambda: httpx.get(tls_srv.url("/readyz"), verify=cbc, timeout=T))
    tls12 = client_context(test_ca)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    with httpx.Client(verify=tls12, timeout=T) as client:
        response = client.get(tls_srv.url("/readyz"))
        assert response.status_code == 200
        ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
        version, (cipher, _, _) = ssl_object.version(), ssl_object.cipher()
    assert version == "TLSv1.2"
    assert cipher.startswith("ECDHE") and ("GCM" in cipher or "CHACHA20" in cipher)


def test_mtls_requires_client_cert(test_ca: trustme.CA) -> None:
    files, _ = tls_files(test_ca)
    client = test_ca.issue_cert("client@example.org")
    other = trustme.CA().issue_cert("client@example.org")
    config = keyed(enable_tls=True, verify_https_client_certificate=True)
    good = client_context(test_ca, client)
    with running_server(config, files=files, grpc=False, ready_context=good) as server:
        assert_refused(lambda: httpx.get(server.url("/readyz"), verify=client_context(test_ca), timeout=T))
        assert_refused(lambda: httpx.get(server.url("/readyz"), verify=client_context(test_ca, other), timeout=T))
        response = httpx.get(server.url("/collections"), verify=good, headers=m(), timeout=T)
        assert response.status_code == 200


# -- rotation (spec §7) ------------------------------------------------------------------------------


def replace_files(workdir: Path, files: dict[str, bytes]) -> None:
    """Swap files in atomically, as a careful operator (or cert-manager) does."""
    for rel, data in files.items():
        tmp = workdir / (rel + ".new")
        write_file(tmp, data, 0o600 if "key" in rel else 0o644)
        tmp.replace(workdir / rel)


def test_rotation_serves_new_cert_and_keeps_open_connections(test_ca: trustme.CA) -> None:
    files, first = tls_files(test_ca)
    ctx = client_context(test_ca)
    config = keyed(enable_tls=True)
    config["tls"] = {"cert_ttl": 1}
    with running_server(config, files=files, grpc=False, ready_context=ctx) as server, \
            httpx.Client(verify=ctx, headers=m(), timeout=T) as kept:
        assert "TLS enabled for REST API (TTL: 1)" in server.logs()
        before = kept.get(server.url("/collections"))
        kept_stream = before.extensions["network_stream"]
        assert peer_serial(server.http_port, ctx) == leaf_serial(first)

        new_files, second = tls_files(test_ca, with_ca=False)
        replace_files(server.workdir, new_files)
        assert poll(lambda: peer_serial(server.http_port, ctx) == leaf_serial(second), T, 0.1)

        after = kept.get(server.url("/collections"))
        assert after.status_code == 200
        assert after.extensions["network_stream"] is kept_stream  # same connection ...
        der = kept_stream.get_extra_info("ssl_object").getpeercert(True)
        assert x509.load_der_x509_certificate(der).serial_number == leaf_serial(first)  # ... old cert


def test_rotation_keeps_old_cert_when_new_files_are_broken(test_ca: trustme.CA) -> None:
    files, first = tls_files(test_ca)
    ctx = client_context(test_ca)
    config = keyed(enable_tls=True)
    config["tls"] = {"cert_ttl": 1}
    with running_server(config, files=files, grpc=False, ready_context=ctx) as server:
        replace_files(server.workdir, {"tls/cert.pem": b"not a certificate\n"})
        failure = "Failed to refresh server TLS certificate, keeping current"
        # Each handshake after the TTL retries the reload; poll until one has failed.
        assert poll(lambda: peer_serial(server.http_port, ctx) == leaf_serial(first) and failure in server.logs(),
                    T, 0.1)
        assert peer_serial(server.http_port, ctx) == leaf_serial(first)
        assert server.logs().count(failure) >= 1
        assert "PRIVATE KEY" not in server.logs()
        # Positive twin: good files are picked up on a later handshake (the age was not reset).
        good, second = tls_files(test_ca, with_ca=False)
        replace_files(server.workdir, good)
        assert poll(lambda: peer_serial(server.http_port, ctx) == leaf_serial(second), T, 0.1)


def test_no_rotation_without_ttl(test_ca: trustme.CA) -> None:
    files, first = tls_files(test_ca)
    ctx = client_context(test_ca)
    config = keyed(enable_tls=True)
    config["tls"] = {"cert_ttl": None}
    with running_server(config, files=files, grpc=False, ready_context=ctx) as server:
        assert "TLS enabled for REST API (TTL: none)" in server.logs()
        new_files, _ = tls_files(test_ca, with_ca=False)
        replace_files(server.workdir, new_files)
        # An observation window, not synchronisation: a server that wrongly
        # rotated with a 1 s TTL would show the new serial within it.
        served = set()
        window_end = time.monotonic() + 2.0
        while time.monotonic() < window_end:
            served.add(peer_serial(server.http_port, ctx))
        assert served == {leaf_serial(first)}


def test_v1_2_rest_is_tls_1_3_only_and_failed_reload_aborts_handshakes(test_ca: trustme.CA) -> None:
    """v1.1.1-v1.2.x: OpenSSL modern profile (TLS 1.3 only); a failed reload aborted the handshake (spec §7, §9)."""
    files, first = tls_files(test_ca)
    ctx = client_context(test_ca)
    config = keyed("1.2.0", enable_tls=True)
    config["tls"] = {"cert_ttl": 1}
    with running_server(config, files=files, grpc=False, ready_context=ctx) as server:
        tls12 = client_context(test_ca)
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        assert_refused(lambda: httpx.get(server.url("/readyz"), verify=tls12, timeout=T))
        assert peer_serial(server.http_port, ctx) == leaf_serial(first)
        replace_files(server.workdir, {"tls/cert.pem": b"not a certificate\n"})

        def handshake_refused() -> bool:
            try:
                peer_serial(server.http_port, ctx)
            except (ssl.SSLError, OSError):
                return True
            return False

        assert poll(handshake_refused, T, 0.1)
        good, second = tls_files(test_ca, with_ca=False)
        replace_files(server.workdir, good)
        assert poll(lambda: not handshake_refused() and peer_serial(server.http_port, ctx) == leaf_serial(second),
                    T, 0.1)

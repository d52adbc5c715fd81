"""Self-tests of fixtures.clients: REST and gRPC exchanges against small local servers.

Each refusal case has a positive twin, so a client that refused everything
(or a server that accepted nothing) would fail here.
"""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
import uvicorn
from qdrant_client import grpc as qgrpc

import qdrant_conformance.fixtures.outcomes as outcomes_module
from qdrant_conformance.fixtures.client_tls import ssl_client_context
from qdrant_conformance.fixtures.clients import ClientSetupError
from qdrant_conformance.fixtures.clients.grpc import GrpcClient, request_class, shipped_methods
from qdrant_conformance.fixtures.clients.rest import RestClient
from qdrant_conformance.fixtures.outcomes import Outcome
from qdrant_conformance.fixtures.pki import CertFiles, RunPKI
from qdrant_conformance.fixtures.secrets import REDACTOR

AMBIENT_VARS = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSLKEYLOGFILE",
                "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
                "http_proxy", "https_proxy", "all_proxy", "no_proxy")

KEY = "qsc-test-manage-key-7f3a9c"
RO_KEY = "qsc-test-read-only-key-2b81"
REDACTOR.register("test-manage-key", KEY)
REDACTOR.register("test-ro-key", RO_KEY)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ambient CA bundles, proxies or key logs must not make a test pass (as httpx's own conftest)."""
    for name in AMBIENT_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def evidence(monkeypatch: pytest.MonkeyPatch) -> list[Outcome]:
    """Every outcome a client produces, as the plugin's sink would receive it."""
    recorded: list[Outcome] = []
    monkeypatch.setattr(outcomes_module, "_evidence_sink", recorded.append)
    return recorded


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunPKI]:
    run_pki = RunPKI.create(tmp_path_factory.mktemp("pki-clients") / "pki")
    yield run_pki
    run_pki.cleanup()


def poll(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# -- a small HTTP(S) server that records what reached it ----------------------------------


class Seen:
    def __init__(self) -> None:
        self.paths: list[str] = []
        self.headers: list[list[tuple[str, str]]] = []
        self.connections = 0
        self.tls_errors: list[str] = []
        self.lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle each answer would wait ~40 ms for an ACK.
    disable_nagle_algorithm = True
    server: HTTPTestServer

    def _answer(self) -> None:
        seen = self.server.seen
        with seen.lock:
            # The request line as received: http.server itself collapses a leading "//" in self.path.
            seen.paths.append(self.requestline.split(" ")[1])
            seen.headers.append(list(self.headers.items()))
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        status = 401 if self.path.startswith("/protected") and self.headers.get("api-key") != KEY else 200
        body = self.path.encode("latin-1")
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Mixed-Case", "yes")
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class HTTPTestServer(http.server.ThreadingHTTPServer):
    """HTTP/1.1 on 127.0.0.1; TLS when given a context, handshaking in the connection's own thread."""

    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.tls = tls
        self.seen = Seen()
        self.port = self.server_address[1]
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def finish_request(self, request: Any, client_address: Any) -> None:
        with self.seen.lock:
            self.seen.connections += 1
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                with self.seen.lock:
                    self.seen.tls_errors.append(str(exc))
                return
        super().finish_request(request, client_address)

    def url(self, scheme: str | None = None) -> str:
        return f"{scheme or ('https' if self.tls else 'http')}://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)


def tls_server_context(pki: RunPKI, *, leaf: CertFiles | None = None, mtls: bool = False,
                       minimum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert = leaf or pki.server
    ctx.load_cert_chain(cert.cert_path, cert.key_path)
    if mtls:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(pki.ca_path)
    if minimum is not None:
        ctx.minimum_version = minimum
    return ctx


@pytest.fixture
def servers() -> Iterator[Callable[[ssl.SSLContext | None], HTTPTestServer]]:
    started: list[HTTPTestServer] = []

    def make(tls: ssl.SSLContext | None) -> HTTPTestServer:
        server = HTTPTestServer(tls)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def clients() -> Iterator[Callable[..., RestClient]]:
    made: list[RestClient] = []

    def make(*args: Any, **kwargs: Any) -> RestClient:
        client = RestClient(*args, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


MakeServer = Callable[[ssl.SSLContext | None], HTTPTestServer]
MakeClient = Callable[..., RestClient]


# -- REST: answers ------------------------------------------------------------------------


def test_tls_answer_carries_status_body_headers_and_peer(pki: RunPKI, servers: MakeServer,
                                                        clients: MakeClient, evidence: list[Outcome]) -> None:
    server = servers(tls_server_context(pki))
    client = clients(server.url(), ssl_context=ssl_client_context(pki.ca_path))
    outcome = client.request("GET", "/collections?x=1", headers={"api-key": KEY})
    assert outcome.succeeded and outcome.status == 200 and outcome.refused is None
    assert outcome.body == b"/collections?x=1"
    assert outcome.headers["x-mixed-case"] == "yes"
    assert all(name == name.lower() for name in outcome.headers)
    assert outcome.tls_version == "TLSv1.3"
    assert outcome.peer_cert_der == pki.server.cert_der
    assert evidence == [outcome]


def test_plaintext_answer_has_no_tls_fields(servers: MakeServer, clients: MakeClient) -> None:
    server = servers(None)
    outcome = clients(server.url()).request("POST", "/protected", json={"a": 1})
    assert outcome.status == 401 and outcome.denied_unauthenticated and not outcome.succeeded
    assert outcome.tls_version is None and outcome.peer_cert_der is None
    assert clients(server.url()).request("POST", "/protected", headers={"api-key": KEY}).status == 200


def test_connections_are_reused_until_a_fresh_one_is_asked_for(pki: RunPKI, servers: MakeServer,
                                                               clients: MakeClient) -> None:
    server = servers(tls_server_context(pki))
    client = clients(server.url(), ssl_context=ssl_client_context(pki.ca_path))
    assert client.get("/a").succeeded
    first = client.last_connection
    assert client.get("/b").succeeded
    assert client.last_connection == first and first is not None
    assert server.seen.connections == 1
    client.fresh_connection()
    assert client.get("/c").succeeded
    assert client.last_connection is not None and client.last_connection != first
    assert server.seen.connections == 2


def test_sweep_of_600_requests_uses_one_connection(pki: RunPKI, servers: MakeServer, clients: MakeClient) -> None:
    server = servers(tls_server_context(pki))
    client = clients(server.url(), ssl_context=ssl_client_context(pki.ca_path))
    started = time.perf_counter()
    outcomes = [client.request("GET", f"/protected/{i}", headers={"api-key": KEY if i % 2 else "wrong"})
                for i in range(600)]
    elapsed = time.perf_counter() - started
    assert [o.status for o in outcomes] == [401, 200] * 300
    assert server.seen.connections == 1
    assert elapsed < 20, f"600 requests took {elapsed:.1f}s"


def test_kept_connection_outlives_a_certificate_rotation(pki: RunPKI, servers: MakeServer,
                                                         clients: MakeClient) -> None:
    ctx = tls_server_context(pki)
    server = servers(ctx)
    kept = clients(server.url(), ssl_context=ssl_client_context(pki.ca_path))
    before = kept.get("/before")
    assert before.peer_cert_der == pki.server.cert_der
    old_connection = kept.last_connection

    ctx.load_cert_chain(pki.server_rotated.cert_path, pki.server_rotated.key_path)  # live rotation

    newcomer = clients(server.url(), ssl_context=ssl_client_context(pki.ca_path))
    assert newcomer.get("/new").peer_cert_der == pki.server_rotated.cert_der
    after = kept.get("/after")
    assert after.succeeded and after.peer_cert_der == pki.server.cert_der
    assert kept.last_connection == old_connection
    kept.fresh_connection()
    assert kept.get("/fresh").peer_cert_der == pki.server_rotated.cert_der


def test_raw_path_reaches_the_server_unnormalised(servers: MakeServer, clients: MakeClient) -> None:
    server = servers(None)
    client = clients(server.url())
    raw = [b"/dashboard%2f..%2fcollections", b"//healthz/", b"/readyz/../collections", b"/x%2F..%2Fy"]
    for target in raw:
        outcome = client.request("GET", "/ignored", raw_path=target)
        assert outcome.succeeded
        assert target.decode() in outcome.request
    # The positive twin: without raw_path httpx rewrites such paths, which is why raw_path exists.
    assert client.request("GET", "/readyz/../collections").succeeded
    assert server.seen.paths == [t.decode() for t in raw] + ["/collections"]


def test_header_values_go_out_as_given(servers: MakeServer, clients: MakeClient) -> None:
    server = servers(None)
    client = clients(server.url())
    client.request("GET", "/h", headers=[("api-key", ""), ("api-key", KEY), ("x-raw", b"\xe9t\xe9")])
    sent = server.seen.headers[-1]
    assert [v for k, v in sent if k.lower() == "api-key"] == ["", KEY]
    assert ("x-raw", b"\xe9t\xe9".decode("latin-1")) in sent
    with pytest.raises(ClientSetupError, match="bytes"):
        client.request("GET", "/h", headers={"api-key": "clé"})


# -- REST: the request description never holds a credential ------------------------------


def test_request_description_redacts_credentials(servers: MakeServer, clients: MakeClient) -> None:
    server = servers(None)
    client = clients(server.url())
    outcome = client.request("GET", "/collections", headers={
        "Api-Key": KEY, "Authorization": f"Bearer {RO_KEY}", "Origin": "http://example.invalid"})
    assert KEY not in outcome.request and RO_KEY not in outcome.request
    assert "Api-Key: <redacted>" in outcome.request
    assert "Authorization: Bearer <redacted>" in outcome.request
    assert "Origin: http://example.invalid" in outcome.request
    assert outcome.request.startswith(f"GET {server.url()}/collections")

    bare = client.request("GET", "/c", headers={"authorization": KEY, "api-key": ""})
    assert KEY not in bare.request
    assert "authorization: <redacted>" in bare.request and 'api-key: ""' in bare.request
    # A registered key placed where no header rule applies is still hidden.
    leaked = client.request("GET", f"/c?api-key={KEY}")
    assert KEY not in leaked.request and "<redacted:test-manage-key>" in leaked.request


# -- REST: transport failures are refusals, never exceptions -------------------------------


def test_plaintext_to_tls_port_is_refused(pki: RunPKI, servers: MakeServer, clients: MakeClient,
                                          evidence: list[Outcome]) -> None:
    server = servers(tls_server_context(pki))
    outcome = clients(server.url("http")).get("/")
    assert outcome.refused and not outcome.succeeded and outcome.status is None
    assert outcome.refused.split(":")[0] in {"ReadError", "RemoteProtocolError", "WriteError"}
    assert evidence == [outcome]
    assert clients(server.url(), ssl_context=ssl_client_context(pki.ca_path)).get("/").succeeded


def test_tls_to_plaintext_port_is_refused(pki: RunPKI, servers: MakeServer, clients: MakeClient) -> None:
    server = servers(None)
    outcome = clients(server.url("https"), ssl_context=ssl_client_context(pki.ca_path)).get("/")
    assert outcome.refused and "WRONG_VERSION_NUMBER" in outcome.refused
    assert clients(server.url()).get("/").succeeded


@pytest.mark.parametrize(("trust", "leaf", "reason"), [
    (None, "server", "unable to get local issuer certificate"),
    ("foreign", "server", "unable to get local issuer certificate"),
    ("ca", "wrong_host_server", "mismatch"),
    ("ca", "expired_server", "certificate has expired"),
    ("ca", "not_yet_valid_server", "certificate is not yet valid"),
    ("ca", "self_signed_server", "self-signed certificate"),
])
def test_untrusted_server_certificates_are_refused(pki: RunPKI, servers: MakeServer, clients: MakeClient,
                                                   trust: str | None, leaf: str, reason: str) -> None:
    server = servers(tls_server_context(pki, leaf=getattr(pki, leaf)))
    trust_path = {None: None, "ca": pki.ca_path, "foreign": pki.foreign_ca.cert_path}[trust]
    kwargs = {} if trust_path is None else {"ssl_context": ssl_client_context(trust_path)}
    outcome = clients(server.url(), **kwargs).get("/")
    assert outcome.refused is not None and outcome.refused.startswith("ConnectError")
    assert reason in outcome.refused
    assert server.seen.paths == []


def test_ambient_trust_and_proxies_are_ignored(pki: RunPKI, servers: MakeServer, clients: MakeClient,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    server = servers(tls_server_context(pki))
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_path))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.ca_path))
    # A proxy on a closed loopback port: using it would fail every request.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy)
    try:
        assert clients(server.url()).get("/").refused  # SSL_CERT_FILE names our CA, and still no trust
        assert clients(server.url(), ssl_context=ssl_client_context(pki.ca_path)).get("/").succeeded
    finally:
        closed.close()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2], ids=["tls13", "tls12"])
@pytest.mark.parametrize("client_cert", [None, "expired_client", "foreign_client", "server_only_eku_client"])
def test_mtls_refusals_are_refused_not_raised(pki: RunPKI, servers: MakeServer, clients: MakeClient,
                                              version: ssl.TLSVersion, client_cert: str | None) -> None:
    server = servers(tls_server_context(pki, mtls=True))
    cert = getattr(pki, client_cert) if client_cert else None
    # Several attempts: under TLS 1.3 the refusal races our first write and read.
    for _ in range(5):
        client = clients(server.url(), ssl_context=ssl_client_context(pki.ca_path, cert, max_version=version))
        outcome = client.get("/")
        assert outcome.refused is not None, outcome.summary()
    assert server.seen.paths == []
    good = clients(server.url(), ssl_context=ssl_client_context(pki.ca_path, pki.client, max_version=version))
    assert good.get("/").succeeded


class _Uvicorn:
    """uvicorn in a thread: asyncio closes refused TLS 1.3 connections without an alert."""

    def __init__(self, pki: RunPKI) -> None:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"ok"})

        listener = socket.create_server(("127.0.0.1", 0))
        self.port = listener.getsockname()[1]
        config = uvicorn.Config(app, log_level="critical", lifespan="off", ssl_certfile=str(pki.server.cert_path),
                                ssl_keyfile=str(pki.server.key_path), ssl_ca_certs=str(pki.ca_path),
                                ssl_cert_reqs=ssl.CERT_REQUIRED, timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [listener]}, daemon=True)
        self._listener = listener
        self._thread.start()
        assert poll(lambda: self.server.started), "uvicorn did not start"

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self._listener.close()
        assert not self._thread.is_alive(), "uvicorn did not stop"


def test_mtls_refusal_by_an_asyncio_server_is_refused(pki: RunPKI) -> None:
    server = _Uvicorn(pki)
    made: list[RestClient] = []
    try:
        url = f"https://127.0.0.1:{server.port}"
        for _ in range(5):
            made.append(RestClient(url, ssl_context=ssl_client_context(pki.ca_path)))
            outcome = made[-1].get("/")
            assert outcome.refused is not None, outcome.summary()
        made.append(RestClient(url, ssl_context=ssl_client_context(pki.ca_path, pki.client)))
        good = made[-1].get("/")
        assert good.succeeded and good.body == b"ok"
    finally:
        for client in made:  # before stopping: uvicorn waits for open keep-alive connections
            client.close()
        server.stop()


def test_closed_port_and_silent_server_are_refused(clients: MakeClient) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    silent = socket.create_server(("127.0.0.1", 0))  # listens, never accepts: no answer ever comes
    try:
        refused = clients(f"http://127.0.0.1:{closed.getsockname()[1]}").get("/")
        assert refused.refused is not None and refused.refused.startswith("ConnectError")
        hung = clients(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.3).get("/")
        assert hung.refused is not None and "Timeout" in hung.refused
    finally:
        closed.close()
        silent.close()


# -- REST: servers that close connections --------------------------------------------------

REFUSAL = b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 4\r\n\r\nnope"
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


class ScriptedServer:
    """A raw HTTP/1.1 server: ``handle(connection, index)`` runs once per accepted connection."""

    def __init__(self, handle: Callable[[socket.socket, int], None], tls: ssl.SSLContext | None = None) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self._handle = handle
        self._tls = tls
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # listener closed
            index = self.connections
            self.connections += 1
            threading.Thread(target=self._one, args=(conn, index), daemon=True).start()

    def _one(self, conn: socket.socket, index: int) -> None:
        try:
            if self._tls is not None:
                conn = self._tls.wrap_socket(conn, server_side=True)
            self._handle(conn, index)
        except OSError:
            pass
        finally:
            conn.close()

    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.listener.close()


def read_head(conn: socket.socket) -> bytes:
    """Read up to the end of a request head (never the body); b"" when the client closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(1)  # byte by byte, so no body byte is consumed
        if not chunk:
            return b""
        data += chunk
    return data


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    started: list[ScriptedServer] = []

    def make(handle: Callable[[socket.socket, int], None], tls: ssl.SSLContext | None = None) -> ScriptedServer:
        started.append(ScriptedServer(handle, tls))
        return started[-1]

    yield make
    for server in started:
        server.stop()


def refuse_early_and_close(conn: socket.socket, index: int) -> None:
    """Qdrant's shape (spec §9b): the head is enough to refuse; answer, no Connection: close, close.

    The close sends FIN first and then discards what still arrives, as actix does by reading
    eagerly: closing with unread bytes would send a reset, and over TLS a reset that hits the
    client's body write breaks its TLS session before it reads the answer.
    """
    if read_head(conn):
        conn.sendall(REFUSAL)
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(5)
        while conn.recv(65536):
            pass


def refuse_early_and_reset(conn: socket.socket, index: int) -> None:
    """The same answer, then a close with the body unread: the kernel resets the connection."""
    if read_head(conn):
        conn.sendall(REFUSAL)


@pytest.mark.parametrize(("tls", "handle"), [(False, refuse_early_and_close), (False, refuse_early_and_reset),
                                             (True, refuse_early_and_close)],
                         ids=["plaintext-fin", "plaintext-reset", "tls-fin"])
def test_early_refusal_then_close_is_an_answer_with_connection_facts(
        tls: bool, handle: Callable[[socket.socket, int], None], pki: RunPKI,
        scripted: Callable[..., ScriptedServer], clients: MakeClient, evidence: list[Outcome]) -> None:
    server = scripted(handle, tls_server_context(pki) if tls else None)
    client = clients(server.url(), ssl_context=ssl_client_context(pki.ca_path) if tls else None)
    outcomes = [client.request("POST", "/collections/c/points", json={"points": ["x" * 2000]})
                for _ in range(30)]
    assert [o.status for o in outcomes] == [401] * 30, [o.summary() for o in outcomes]
    assert all(o.body == b"nope" for o in outcomes)
    assert evidence == outcomes
    # Facts come from the connection that carried each answer, read while it was open.
    assert client.last_connection is not None and client.last_connection.local_address.startswith("127.0.0.1:")
    if tls:
        assert all(o.tls_version == "TLSv1.3" and o.peer_cert_der == pki.server.cert_der for o in outcomes)
    # Every request got its own connection: the server closes each one after answering.
    assert server.connections == 30


def test_reused_connection_closed_before_an_answer_is_retried_once(
        scripted: Callable[..., ScriptedServer], clients: MakeClient, evidence: list[Outcome]) -> None:
    def answer_once(conn: socket.socket, index: int) -> None:
        # The first request on a connection is answered and the connection kept; the second
        # one's head is read and the connection dropped without a byte, as a server does
        # when its keep-alive timer fires just as the request arrives.
        if read_head(conn):
            conn.sendall(ANSWER)
        read_head(conn)

    server = scripted(answer_once)
    client = clients(server.url())
    first = client.get("/a")
    assert first.status == 200 and first.retried is None
    kept = client.last_connection
    second = client.get("/b")
    assert second.status == 200 and second.body == b"ok", second.summary()
    assert second.retried is not None and second.retried.startswith("RemoteProtocolError")
    assert "retried on a new connection" in second.request and "Server disconnected" in second.request
    assert client.last_connection is not None and client.last_connection != kept
    assert server.connections == 2
    assert evidence == [first, second]


def test_new_connection_failing_before_an_answer_is_not_retried(
        scripted: Callable[..., ScriptedServer], clients: MakeClient) -> None:
    server = scripted(lambda conn, index: (read_head(conn), None)[1])
    client = clients(server.url())
    for expected_connections in (1, 2):
        outcome = client.get("/a")
        assert outcome.refused is not None and "Server disconnected" in outcome.refused
        assert outcome.retried is None and "retried" not in outcome.request
        assert server.connections == expected_connections


def test_reused_connection_that_answered_garbage_is_not_retried(
        scripted: Callable[..., ScriptedServer], clients: MakeClient) -> None:
    def garbage_second(conn: socket.socket, index: int) -> None:
        if read_head(conn):
            conn.sendall(ANSWER)
        if read_head(conn):
            conn.sendall(b"NOT HTTP AT ALL\r\n\r\n")

    server = scripted(garbage_second)
    client = clients(server.url())
    assert client.get("/a").status == 200
    outcome = client.get("/b")
    assert outcome.refused is not None and outcome.retried is None, outcome.summary()
    assert server.connections == 1


def test_reused_connection_that_times_out_is_not_retried(
        scripted: Callable[..., ScriptedServer], clients: MakeClient) -> None:
    released = threading.Event()

    def silent_second(conn: socket.socket, index: int) -> None:
        if read_head(conn):
            conn.sendall(ANSWER)
        read_head(conn)
        released.wait(10)

    server = scripted(silent_second)
    client = clients(server.url(), timeout=0.3)
    try:
        assert client.get("/a").status == 200
        outcome = client.get("/b")
        assert outcome.timed_out and outcome.retried is None, outcome.summary()
        assert server.connections == 1
    finally:
        released.set()


def test_client_side_tls_misconfiguration_raises(pki: RunPKI, servers: MakeServer, clients: MakeClient,
                                                 evidence: list[Outcome]) -> None:
    """A context that can offer nothing must not read as "the server refused"."""
    server = servers(tls_server_context(pki))
    ctx = ssl_client_context(pki.ca_path, min_version=ssl.TLSVersion.TLSv1_3, max_version=ssl.TLSVersion.TLSv1_2)
    with pytest.raises(ClientSetupError, match="NO_PROTOCOLS_AVAILABLE") as raised:
        clients(server.url(), ssl_context=ctx).request("GET", "/", headers={"api-key": KEY})
    assert KEY not in str(raised.value)
    assert evidence == []


def test_http2_is_negotiated_and_reported(pki: RunPKI, grpc_servers: MakeGrpcServer,
                                          clients: MakeClient) -> None:
    """grpcio speaks HTTP/2 only, so a plain gRPC-over-HTTP/2 POST through the REST client proves h2."""
    server = grpc_servers(server_credentials(pki, mtls=False))
    client = clients(f"https://{server.target}", ssl_context=ssl_client_context(pki.ca_path), http2=True)
    frame = b"\x00\x00\x00\x00\x00"  # an empty, uncompressed gRPC message
    grpc_headers = {"content-type": "application/grpc", "te": "trailers", "api-key": KEY}
    first = client.request("POST", "/qdrant.Points/Upsert", headers=grpc_headers, content=frame)
    echo = b"\x00\x00\x00\x00\x05echo:"  # one length-prefixed message: our server's answer
    assert first.status == 200 and first.body == echo, first.summary()
    assert first.tls_version == "TLSv1.3" and first.peer_cert_der == pki.server.cert_der
    connection = client.last_connection
    assert connection is not None and connection.http_version == "HTTP/2"
    second = client.request("POST", "/qdrant.Points/Upsert", headers=grpc_headers, content=frame)
    assert second.body == echo and client.last_connection == connection
    assert server.requests[-1][1] == b""


def test_http2_client_talks_to_an_http1_server(pki: RunPKI, servers: MakeServer, clients: MakeClient) -> None:
    server = servers(tls_server_context(pki))
    client = clients(server.url(), ssl_context=ssl_client_context(pki.ca_path), http2=True)
    assert client.get("/").succeeded
    assert client.last_connection is not None and client.last_connection.http_version == "HTTP/1.1"


# -- gRPC ---------------------------------------------------------------------------------


class GrpcTestServer:
    """A grpcio server answering any method; behaviour chosen by the method path."""

    def __init__(self, credentials: grpc.ServerCredentials | None = None) -> None:
        self.peers: list[str] = []
        self.requests: list[tuple[str, bytes, dict[str, str]]] = []
        self.release = threading.Event()
        outer = self

        class Handler(grpc.GenericRpcHandler):
            def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
                method: str = details.method  # type: ignore[attr-defined]
                metadata = {k: v for k, v in details.invocation_metadata}  # type: ignore[attr-defined]
                if method.startswith("/unknown."):
                    return None

                def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
                    outer.peers.append(context.peer())
                    outer.requests.append((method, request, metadata))
                    return outer._behave(method, request, metadata, context)

                return grpc.unary_unary_rpc_method_handler(handle)

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers((Handler(),))
        if credentials is None:
            self.port = self.server.add_insecure_port("127.0.0.1:0")
        else:
            self.port = self.server.add_secure_port("127.0.0.1:0", credentials)
        self.server.start()
        self.target = f"127.0.0.1:{self.port}"

    def _behave(self, method: str, request: bytes, metadata: dict[str, str],
                context: grpc.ServicerContext) -> bytes:
        if method == "/qdrant.Qdrant/HealthCheck":
            return qgrpc.HealthCheckReply(title="qdrant - vector search engine", version="1.2.3").SerializeToString()
        if method == "/test.Svc/Unavailable":
            context.abort(grpc.StatusCode.UNAVAILABLE, "service is shutting down")
        if method == "/test.Svc/Block":
            self.release.wait(timeout=10)
            return b""
        key = metadata.get("api-key")
        if key == RO_KEY:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "Forbidden: Global manage access is required")
        if key != KEY:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "Must provide an API key or an Authorization bearer token")
        context.set_trailing_metadata((("x-trailer", "t"),))
        return b"echo:" + request

    def stop(self) -> None:
        self.release.set()
        self.server.stop(grace=None).wait(timeout=10)


@pytest.fixture
def grpc_servers() -> Iterator[Callable[..., GrpcTestServer]]:
    started: list[GrpcTestServer] = []

    def make(credentials: grpc.ServerCredentials | None = None) -> GrpcTestServer:
        server = GrpcTestServer(credentials)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def grpc_clients() -> Iterator[Callable[..., GrpcClient]]:
    made: list[GrpcClient] = []

    def make(*args: Any, **kwargs: Any) -> GrpcClient:
        client = GrpcClient(*args, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


MakeGrpcServer = Callable[..., GrpcTestServer]
MakeGrpcClient = Callable[..., GrpcClient]


def server_credentials(pki: RunPKI, *, mtls: bool) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials([(pki.server.key_pem, pki.server.chain_pem)],
                                       root_certificates=pki.ca.cert_pem if mtls else None,
                                       require_client_auth=mtls)


def test_grpc_codes_details_and_metadata(grpc_servers: MakeGrpcServer, grpc_clients: MakeGrpcClient,
                                         evidence: list[Outcome]) -> None:
    server = grpc_servers()
    client = grpc_clients(server.target)
    ok, raw = client.call_bytes("/qdrant.Points/Upsert", b"\x01\x02", metadata=[("api-key", KEY)])
    assert ok.code == "OK" and ok.succeeded and ok.refused is None
    assert raw == b"echo:\x01\x02" and ok.headers["x-trailer"] == "t"
    missing = client.call("/qdrant.Points/Upsert")
    assert missing.code == "UNAUTHENTICATED" and missing.denied_unauthenticated and missing.refused is None
    assert missing.body == b"Must provide an API key or an Authorization bearer token"
    forbidden = client.call("/qdrant.Points/Upsert", metadata=[("api-key", RO_KEY)])
    assert forbidden.code == "PERMISSION_DENIED" and forbidden.denied_forbidden
    unknown = client.call("/unknown.Svc/Method", metadata=[("api-key", KEY)])
    assert unknown.code == "UNIMPLEMENTED" and unknown.refused is None
    assert evidence == [ok, missing, forbidden, unknown]


def test_grpc_unavailable_sent_by_the_server_is_an_answer(grpc_servers: MakeGrpcServer,
                                                          grpc_clients: MakeGrpcClient) -> None:
    outcome = grpc_clients(grpc_servers().target).call("/test.Svc/Unavailable")
    assert outcome.code == "UNAVAILABLE" and outcome.refused is None
    assert outcome.body == b"service is shutting down"


def test_grpc_request_description_redacts_credentials(grpc_servers: MakeGrpcServer,
                                                      grpc_clients: MakeGrpcClient) -> None:
    server = grpc_servers()
    client = grpc_clients(server.target)
    outcome = client.call("/qdrant.Points/Upsert", metadata=[("api-key", KEY), ("authorization", f"Bearer {KEY}"),
                                                              ("x-request-id", "abc")])
    assert outcome.succeeded
    assert KEY not in outcome.request
    assert "api-key: <redacted>" in outcome.request and "authorization: Bearer <redacted>" in outcome.request
    assert "x-request-id: abc" in outcome.request
    assert outcome.request.startswith(f"CALL grpc://{server.target}/qdrant.Points/Upsert")


def test_grpc_metadata_grpc_would_refuse_raises(grpc_servers: MakeGrpcServer,
                                                grpc_clients: MakeGrpcClient, evidence: list[Outcome]) -> None:
    client = grpc_clients(grpc_servers().target)
    with pytest.raises(ClientSetupError, match="lower-case"):
        client.call("/qdrant.Points/Upsert", metadata=[("Api-Key", KEY)])
    with pytest.raises(ClientSetupError, match="printable ASCII"):
        client.call("/qdrant.Points/Upsert", metadata=[("api-key", "clé")])
    assert evidence == []
    # Twins: an empty value and binary metadata do go out.
    client.call("/qdrant.Points/Upsert", metadata=[("api-key", ""), ("trace-bin", b"\x00\xff")])
    assert client.call("/qdrant.Points/Upsert", metadata=[("api-key", KEY)]).succeeded


def test_grpc_protobuf_requests_and_typed_responses(grpc_servers: MakeGrpcServer,
                                                    grpc_clients: MakeGrpcClient) -> None:
    server = grpc_servers()
    client = grpc_clients(server.target)
    upsert = request_class("/qdrant.Points/Upsert")(collection_name="c", wait=True)
    assert client.call("/qdrant.Points/Upsert", upsert, metadata=[("api-key", KEY)]).succeeded
    assert server.requests[-1][1] == upsert.SerializeToString()
    outcome, reply = client.call_typed("/qdrant.Qdrant/HealthCheck", qgrpc.HealthCheckRequest(),
                                       qgrpc.HealthCheckReply)
    assert outcome.succeeded and reply is not None and reply.version == "1.2.3"
    denied, nothing = client.call_typed("/qdrant.Points/Upsert", upsert, qgrpc.PointsOperationResponse)
    assert denied.code == "UNAUTHENTICATED" and nothing is None


def test_grpc_fresh_channel_means_a_new_connection(grpc_servers: MakeGrpcServer,
                                                   grpc_clients: MakeGrpcClient) -> None:
    server = grpc_servers()
    client = grpc_clients(server.target)
    twin = grpc_clients(server.target)
    for c in (client, client, twin):
        assert c.call("/qdrant.Points/Upsert", metadata=[("api-key", KEY)]).succeeded
    first, again, other = server.peers
    assert first == again, "one client keeps its connection"
    assert other != first, "clients with equal settings must not share a connection"
    client.fresh_channel()
    assert client.call("/qdrant.Points/Upsert", metadata=[("api-key", KEY)]).succeeded
    assert server.peers[-1] not in (first, other)


def test_grpc_no_answer_in_time_is_refused(grpc_servers: MakeGrpcServer, grpc_clients: MakeGrpcClient) -> None:
    server = grpc_servers()
    outcome = grpc_clients(server.target, timeout=0.3).call("/test.Svc/Block")
    assert outcome.refused is not None and outcome.refused.startswith("DEADLINE_EXCEEDED")
    server.release.set()


def test_grpc_closed_port_is_refused(grpc_clients: MakeGrpcClient) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    try:
        outcome = grpc_clients(f"127.0.0.1:{closed.getsockname()[1]}").call("/qdrant.Points/Upsert")
    finally:
        closed.close()
    assert outcome.refused is not None and outcome.code is None


def test_grpc_tls_works_with_our_ca(pki: RunPKI, grpc_servers: MakeGrpcServer,
                                    grpc_clients: MakeGrpcClient) -> None:
    server = grpc_servers(server_credentials(pki, mtls=False))
    for target, name in [(server.target, "localhost"), (server.target, None),
                         (f"localhost:{server.port}", None)]:
        client = grpc_clients(target, root_certificates=pki.ca.cert_pem, server_name=name)
        outcome = client.call("/qdrant.Points/Upsert", metadata=[("api-key", KEY)])
        assert outcome.succeeded, (target, name, outcome.summary())
        assert outcome.request.startswith("CALL grpcs://")


@pytest.mark.parametrize("case", ["plaintext-to-tls", "foreign-ca", "wrong-name"])
def test_grpc_tls_failures_are_refused(pki: RunPKI, grpc_servers: MakeGrpcServer,
                                       grpc_clients: MakeGrpcClient, case: str) -> None:
    server = grpc_servers(server_credentials(pki, mtls=False))
    kwargs: dict[str, Any] = {
        "plaintext-to-tls": {},
        "foreign-ca": {"root_certificates": pki.foreign_ca.cert_pem},
        "wrong-name": {"root_certificates": pki.ca.cert_pem, "server_name": "wrong.example.invalid"},
    }[case]
    outcome = grpc_clients(server.target, **kwargs).call("/qdrant.Points/Upsert", metadata=[("api-key", KEY)])
    assert outcome.refused is not None and outcome.code is None, outcome.summary()
    assert outcome.refused.startswith("UNAVAILABLE")
    assert server.requests == []


def test_grpc_tls_to_plaintext_port_is_refused(pki: RunPKI, grpc_servers: MakeGrpcServer,
                                               grpc_clients: MakeGrpcClient) -> None:
    server = grpc_servers()
    outcome = grpc_clients(server.target, root_certificates=pki.ca.cert_pem).call("/qdrant.Points/Upsert")
    assert outcome.refused is not None and "handshake" in outcome.refused.lower()
    assert grpc_clients(server.target).call("/qdrant.Points/Upsert", metadata=[("api-key", KEY)]).succeeded


@pytest.mark.parametrize("client_cert", [None, "expired_client", "not_yet_valid_client", "foreign_client",
                                         "server_only_eku_client"])
def test_grpc_mtls_refusals(pki: RunPKI, grpc_servers: MakeGrpcServer, grpc_clients: MakeGrpcClient,
                            client_cert: str | None) -> None:
    server = grpc_servers(server_credentials(pki, mtls=True))
    cert: CertFiles | None = getattr(pki, client_cert) if client_cert else None
    client = grpc_clients(server.target, root_certificates=pki.ca.cert_pem,
                          private_key=cert.key_pem if cert else None,
                          certificate_chain=cert.chain_pem if cert else None)
    outcome = client.call("/qdrant.Points/Upsert", metadata=[("api-key", KEY)])
    assert outcome.refused is not None and outcome.code is None, outcome.summary()
    assert server.requests == []
    good = grpc_clients(server.target, root_certificates=pki.ca.cert_pem, private_key=pki.client.key_pem,
                        certificate_chain=pki.client.chain_pem)
    assert good.call("/qdrant.Points/Upsert", metadata=[("api-key", KEY)]).succeeded


def test_grpc_client_certificate_arguments_are_checked() -> None:
    with pytest.raises(ClientSetupError):
        GrpcClient("127.0.0.1:1", root_certificates=b"x", private_key=b"k")
    with pytest.raises(ClientSetupError):
        GrpcClient("127.0.0.1:1", private_key=b"k", certificate_chain=b"c")


def test_shipped_methods_and_request_classes() -> None:
    methods = shipped_methods()
    assert len(methods) == 51 and len(set(methods)) == 51
    methods.clear()  # callers get their own copy
    methods = shipped_methods()
    assert len(methods) == 51
    assert {"/qdrant.Points/Upsert", "/qdrant.Collections/Create", "/qdrant.Snapshots/CreateFull",
            "/qdrant.Qdrant/HealthCheck"} <= set(methods)
    services = {m.split("/")[1] for m in methods}
    assert services == {"qdrant.Collections", "qdrant.Points", "qdrant.Snapshots", "qdrant.Qdrant"}
    for method in methods:
        cls = request_class(method)
        assert cls().SerializeToString() == b""  # buildable, empty is a valid encoding
    assert request_class("/qdrant.Points/Upsert") is qgrpc.UpsertPoints
    with pytest.raises(KeyError):
        request_class("/qdrant.Points/NoSuchMethod")


def test_module_files_exist() -> None:
    """The clients live where docs/DESIGN.md says."""
    root = Path(__file__).resolve().parents[1] / "fixtures" / "clients"
    assert (root / "rest.py").is_file() and (root / "grpc.py").is_file()

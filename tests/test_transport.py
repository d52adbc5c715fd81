"""reference_server.transport: the TLS front of the public gRPC port (spec §6), in-process."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from qdrant_conformance.reference_server import tls, transport


def _client_hello(alpn: list[str] | None) -> bytes:
    ctx = ssl.create_default_context()
    if alpn:
        ctx.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def test_parse_client_hello_reads_alpn() -> None:
    assert transport.parse_client_hello(_client_hello(["h2", "http/1.1"])) == transport.Hello((b"h2", b"http/1.1"))
    assert transport.parse_client_hello(_client_hello(None)) == transport.Hello(None)
    hello = _client_hello(["h2"])
    assert transport.parse_client_hello(hello[:40]) is None  # incomplete: wait for more
    assert transport.parse_client_hello(b"GET / HTTP/1.1\r\n\r\n") == transport.Hello(None)


class Echo:
    """A plaintext loopback server that echoes, standing in for grpcio."""

    def __init__(self) -> None:
        self.sock = transport.loopback_listener()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def front(test_ca: trustme.CA, tmp_path: Path) -> Iterator[transport.Front]:
    leaf = test_ca.issue_cert("localhost", "127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    echo = Echo()
    before = threading.active_count()
    public = transport.bind_listener("127.0.0.1", 0)
    started = transport.Front(public, echo.sock.getsockname()[:2], name="test", require_alpn="h2",
                              tls=tls.new_grpc_context(str(cert), str(key))).start()
    try:
        yield started
    finally:
        started.close()
        echo.close()
    assert threading.active_count() <= before, "the front left a thread behind"


def _connect(front: transport.Front, ca: trustme.CA, alpn: list[str] | None,
             version: ssl.TLSVersion | None = None) -> ssl.SSLSocket:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx.wrap_socket(socket.create_connection(front.address, timeout=5), server_hostname="localhost")


@pytest.mark.parametrize("alpn", [["h2"], ["http/1.1", "h2"], None])
def test_relays_tls_with_h2_or_without_alpn(front: transport.Front, test_ca: trustme.CA,
                                            alpn: list[str] | None) -> None:
    with _connect(front, test_ca, alpn) as conn:
        assert conn.selected_alpn_protocol() == ("h2" if alpn else None)
        conn.sendall(b"ping" * 5000)
        got = b""
        while len(got) < 20000:
            got += conn.recv(65536)
        assert got == b"ping" * 5000


def test_alpn_without_h2_fails_the_handshake(front: transport.Front, test_ca: trustme.CA) -> None:
    with pytest.raises(ssl.SSLError, match="no application protocol"):
        _connect(front, test_ca, ["http/1.1"])


def test_tls12_and_13_only(front: transport.Front, test_ca: trustme.CA) -> None:
    with _connect(front, test_ca, ["h2"], ssl.TLSVersion.TLSv1_2) as conn:
        assert conn.version() == "TLSv1.2"
    with _connect(front, test_ca, ["h2"], ssl.TLSVersion.TLSv1_3) as conn:
        assert conn.version() == "TLSv1.3"
        assert conn.getpeercert() is not None


def test_plaintext_is_never_answered(front: transport.Front) -> None:
    with socket.create_connection(front.address, timeout=5) as raw:
        raw.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        assert raw.recv(100) == b""


def test_close_ends_open_connections(front: transport.Front, test_ca: trustme.CA) -> None:
    conn = _connect(front, test_ca, ["h2"])
    address = front.address
    front.close()
    try:
        assert conn.recv(10) == b""
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        conn.close()
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=2).close()

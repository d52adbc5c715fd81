"""TCP fronts: a public listener that relays each connection to an internal loopback server.

Used where the server behind cannot be told how to speak TLS the way Qdrant does:

* public gRPC: grpcio's BoringSSL offers key-exchange groups rustls does not
  (secp521r1) and cannot be told otherwise, so TLS is terminated here in
  Python's ``ssl`` (which reads ``reference_server/openssl.cnf``: X25519,
  P-256, P-384) and the plaintext HTTP/2 goes to a grpcio server on loopback.
  Like tonic (spec §6): ALPN ``h2`` only, and a client that offers ALPN
  without ``h2`` gets the ``no_application_protocol`` alert; SNI is ignored.
* faults that make a TLS port answer plaintext too (``tls-plaintext-also``,
  ``grpc-plaintext-also``): the first byte tells a ClientHello from plaintext.

One asyncio loop in one thread serves every connection of a front; TLS runs
over memory BIOs so the ClientHello can be read before OpenSSL sees it.
:meth:`Front.close` stops accepting, ends open connections and joins the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import struct
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from enum import Enum
from typing import Any

log = logging.getLogger("reference_server.transport")

#: How long a client may take to finish its TLS handshake (actix: 3 s; tonic has none; generous here).
HANDSHAKE_TIMEOUT_S = 10.0
#: A ClientHello larger than this is left to OpenSSL unread (post-quantum key shares stay far below it).
MAX_HELLO = 64 * 1024
CHUNK = 64 * 1024
_TLS_HANDSHAKE_RECORD = 0x16
_ALPN_EXTENSION = 0x0010
#: A fatal alert record, no_application_protocol (120), as rustls sends it (RFC 7301 §3.2).
NO_APPLICATION_PROTOCOL_ALERT = b"\x15\x03\x03\x00\x02\x02\x78"


class Plaintext(Enum):
    """What a front does with a connection that does not start with a TLS record."""

    REFUSE = "refuse"  # close it (a TLS port: never an HTTP answer, spec §6)
    RELAY = "relay"  # pass the bytes to the target as they are
    WRAP = "wrap"  # pass them through a TLS connection made here to a TLS target


@dataclass(frozen=True)
class Hello:
    """What was read from a ClientHello; ``alpn`` is ``None`` when the client offered no ALPN."""

    alpn: tuple[bytes, ...] | None


def parse_client_hello(data: bytes) -> Hello | None:
    """The ALPN list of the ClientHello at the start of ``data``; ``None`` while it is incomplete.

    A malformed hello gives ``Hello(alpn=None)``: OpenSSL then refuses it with its own alert.
    """
    handshake = bytearray()
    offset = 0
    while len(handshake) < 4 or len(handshake) < 4 + int.from_bytes(handshake[1:4], "big"):
        if len(data) < offset + 5:
            return None
        if data[offset] != _TLS_HANDSHAKE_RECORD:
            return Hello(None)
        length = struct.unpack_from("!H", data, offset + 3)[0]
        if len(data) < offset + 5 + length:
            return None
        handshake += data[offset + 5:offset + 5 + length]
        offset += 5 + length
    if handshake[0] != 1:  # not a ClientHello
        return Hello(None)
    body = bytes(handshake[4:4 + int.from_bytes(handshake[1:4], "big")])
    try:
        return Hello(_alpn_of(body))
    except (IndexError, struct.error):
        return Hello(None)


def _alpn_of(body: bytes) -> tuple[bytes, ...] | None:
    at = 2 + 32  # legacy_version, random
    at += 1 + body[at]  # session id
    at += 2 + struct.unpack_from("!H", body, at)[0]  # cipher suites
    at += 1 + body[at]  # compression methods
    if at >= len(body):
        return None  # no extensions at all
    end = at + 2 + struct.unpack_from("!H", body, at)[0]
    at += 2
    while at + 4 <= end:
        kind, length = struct.unpack_from("!HH", body, at)
        at += 4
        if kind == _ALPN_EXTENSION:
            names: list[bytes] = []
            stop = at + 2 + struct.unpack_from("!H", body, at)[0]
            cursor = at + 2
            while cursor < stop:
                size = body[cursor]
                names.append(body[cursor + 1:cursor + 1 + size])
                cursor += 1 + size
            return tuple(names)
        at += length
    return None


class Front:
    """Accept on ``public`` and relay every connection to ``target`` (``host, port``) on loopback.

    Args:
      tls: Terminate TLS here with this server context (the target speaks plaintext). ``None``:
        TLS bytes go to the target as they are (the target terminates TLS itself).
      require_alpn: With ``tls``, a client offering ALPN without this protocol is refused with the
        ``no_application_protocol`` alert; a client offering no ALPN is served.
      plaintext: What to do with a connection whose first byte is not a TLS record.
      upstream_tls: For :attr:`Plaintext.WRAP`, the client context for the target.
    """

    def __init__(self, public: socket.socket, target: tuple[str, int], *, name: str,
                 tls: ssl.SSLContext | None = None, require_alpn: str | None = None,
                 plaintext: Plaintext = Plaintext.REFUSE, upstream_tls: ssl.SSLContext | None = None) -> None:
        if plaintext is Plaintext.WRAP and upstream_tls is None:
            raise ValueError("Plaintext.WRAP needs upstream_tls")
        self.name = name
        self._public = public
        self._target = target
        self._tls = tls
        self._alpn = require_alpn.encode("ascii") if require_alpn else None
        self._plaintext = plaintext
        self._upstream_tls = upstream_tls
        self._loop = asyncio.new_event_loop()
        self._tasks: set[asyncio.Task[None]] = set()
        #: The client side of every open connection, closed by _stop whatever its task is doing.
        self._clients: set[asyncio.StreamWriter] = set()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._run, name=f"front-{name}", daemon=True)
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._public.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> Front:
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting, end open connections, join the loop thread; idempotent."""
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._stop)
            self._thread.join(timeout)
        self._public.close()

    # -- loop thread ------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._public.setblocking(False)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._accepted, sock=self._public, limit=CHUNK))
        except BaseException as exc:  # reported to start()
            self._failure = exc
            self._ready.set()
            self._loop.close()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        # Closing the client sockets ends the connections even when a task is slow to finish its
        # cancellation (a loaded machine) and the loop stops before it does.
        for client in list(self._clients):
            client.close()
        for task in list(self._tasks):
            task.cancel()

        async def drained() -> None:
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=2.0)
            if self._server is not None:
                await self._server.wait_closed()
            self._loop.stop()

        self._loop.create_task(drained())

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._clients.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            first = await asyncio.wait_for(reader.read(CHUNK), HANDSHAKE_TIMEOUT_S)
            if not first:
                return
            if first[0] == _TLS_HANDSHAKE_RECORD and self._tls is not None:
                await self._terminate_tls(first, reader, writer)
                return
            if first[0] != _TLS_HANDSHAKE_RECORD and self._plaintext is Plaintext.REFUSE:
                return
            wrap = first[0] != _TLS_HANDSHAKE_RECORD and self._plaintext is Plaintext.WRAP
            up_reader, upstream = await asyncio.open_connection(
                *self._target, ssl=self._upstream_tls if wrap else None, limit=CHUNK)
            upstream.write(first)
            await _pipe_both(_copy(reader, upstream), _copy(up_reader, writer))
        except (TimeoutError, OSError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            for stream in (upstream, writer):
                if stream is not None:
                    stream.close()
            self._tasks.discard(task)
            self._clients.discard(writer)

    async def _terminate_tls(self, data: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._tls is not None
        hello = parse_client_hello(data)
        while hello is None and len(data) < MAX_HELLO:
            more = await asyncio.wait_for(reader.read(CHUNK), HANDSHAKE_TIMEOUT_S)
            if not more:
                return
            data += more
            hello = parse_client_hello(data)
        if self._alpn is not None and hello is not None and hello.alpn is not None and self._alpn not in hello.alpn:
            writer.write(NO_APPLICATION_PROTOCOL_ALERT)
            await writer.drain()
            return
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self._tls.wrap_bio(incoming, outgoing, server_side=True)
        incoming.write(data)

        async def flush() -> None:
            pending = outgoing.read()
            if pending:
                writer.write(pending)
                await writer.drain()

        async def handshake() -> None:
            while True:
                try:
                    tls.do_handshake()
                except ssl.SSLWantReadError:
                    await flush()
                    more = await reader.read(CHUNK)
                    if not more:
                        raise ConnectionResetError("closed during the handshake") from None
                    incoming.write(more)
                    continue
                except ssl.SSLError:
                    await flush()  # the alert OpenSSL queued for the client
                    raise
                await flush()
                return

        await asyncio.wait_for(handshake(), HANDSHAKE_TIMEOUT_S)
        up_reader, upstream = await asyncio.open_connection(*self._target, limit=CHUNK)
        try:
            async def inbound() -> None:
                while True:
                    try:
                        plain = tls.read(CHUNK)
                    except ssl.SSLWantReadError:
                        await flush()  # e.g. a reply to a key update
                        more = await reader.read(CHUNK)
                        if not more:
                            return
                        incoming.write(more)
                        continue
                    except ssl.SSLZeroReturnError:
                        return
                    if not plain:
                        return
                    upstream.write(plain)
                    await upstream.drain()

            async def outbound() -> None:
                while True:
                    plain = await up_reader.read(CHUNK)
                    if not plain:
                        with contextlib.suppress(ssl.SSLError):
                            tls.unwrap()
                        await flush()
                        return
                    tls.write(plain)
                    await flush()

            await _pipe_both(inbound(), outbound())
        finally:
            upstream.close()


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    while True:
        data = await source.read(CHUNK)
        if not data:
            return
        sink.write(data)
        await sink.drain()


async def _pipe_both(one: Coroutine[Any, Any, None], two: Coroutine[Any, Any, None]) -> None:
    """Run both directions until either ends (a half-closed relay would hold the client)."""
    tasks = [asyncio.ensure_future(one), asyncio.ensure_future(two)]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.debug("relay ended: %s", type(task.exception()).__name__)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (dual-stack for ``::``); ``OSError``'s strerror names it."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    # IPPROTO_TCP so asyncio sets TCP_NODELAY (small gRPC frames must not wait for delayed ACKs).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot bind {host}:{port}: {exc.strerror or exc}") from None
    return sock


def loopback_listener() -> socket.socket:
    """A listening socket on a free loopback port, for the server behind a front."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock


def plaintext_also(public: socket.socket) -> tuple[socket.socket, Front]:
    """``tls-plaintext-also``: the TLS REST port answers plaintext HTTP too.

    The real TLS listener moves to an internal loopback socket (returned, for
    uvicorn to serve); a front on the public socket passes TLS through as it
    is and carries plaintext over a TLS connection of its own.
    """
    inner = loopback_listener()
    inner.setblocking(False)
    client = ssl.create_default_context()
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    front = Front(public, inner.getsockname()[:2], name="fault-plaintext-also",
                  plaintext=Plaintext.WRAP, upstream_tls=client)
    return inner, front.start()

"""A small TLS-terminating proxy for self-tests: TLS outside (stdlib ``ssl``), plaintext TCP inside.

It stands in for a deployment that puts a TLS proxy in front of Qdrant, and
can be configured to be wrong on purpose (old protocol versions, no
client-certificate check), so the self-tests can show the TLS suites notice.

Usage::

    ctx = server_context(pki.server, client_ca=pki.ca_path)   # TLS 1.2+, client certificate required
    with TlsProxy(("127.0.0.1", upstream_port), ctx) as proxy:
        ... https://127.0.0.1:{proxy.port} ...

The proxy is byte-transparent (it does not parse HTTP), so keep-alive,
request bodies and the upstream's answers pass unchanged. It runs an asyncio
loop in a daemon thread; handshake failures are silent (asyncio closes the
connection, without an alert under TLS 1.3, like uvicorn).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

from qdrant_conformance.fixtures.pki import CertFiles

START_TIMEOUT = 10.0


def server_context(
    cert: CertFiles,
    *,
    client_ca: Path | None = None,
    require_client_cert: bool = True,
    legacy_versions: bool = False,
) -> ssl.SSLContext:
    """The proxy's TLS settings.

    Args:
      cert: Certificate chain and key the proxy presents.
      client_ca: CA whose client certificates are accepted. With ``None`` no
        client certificate is asked for (CERT_NONE): any client gets in.
      require_client_cert: With a ``client_ca``, whether a certificate is
        mandatory (CERT_REQUIRED) or merely verified if sent (CERT_OPTIONAL).
      legacy_versions: Also accept TLS 1.0 and 1.1 (security level 0, CBC suites):
        the misconfiguration the posture suite must catch.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # naming TLSv1 is deprecated; accepting it is the point
        if legacy_versions:
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES:@SECLEVEL=0")
        else:
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
    ctx.options |= ssl.OP_NO_COMPRESSION
    ctx.load_cert_chain(str(cert.cert_path), str(cert.key_path))
    if client_ca is not None:
        ctx.load_verify_locations(cafile=str(client_ca))
        ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class TlsProxy:
    """Accepts TLS on ``host:<port>`` and pipes each connection to ``upstream`` in plaintext."""

    def __init__(self, upstream: tuple[str, int], context: ssl.SSLContext, host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self.context = context
        self.host = host
        self.port = 0
        self.connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def __enter__(self) -> TlsProxy:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tls-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise RuntimeError("the TLS proxy did not start")
        if self._error is not None:
            raise RuntimeError(f"the TLS proxy did not start: {self._error!r}")

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        # Failed handshakes are expected (that is what the suites provoke); keep them off stderr.
        loop.set_exception_handler(lambda _loop, _context: None)
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, self.host, 0, ssl=self.context, ssl_handshake_timeout=5.0))
            self.port = int(self._server.sockets[0].getsockname()[1])
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            loop.run_until_complete(self._server.wait_closed())
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(START_TIMEOUT)
        self._thread = None


def describe(proxy: TlsProxy) -> dict[str, Any]:
    """What a test prints about a proxy (no key material)."""
    return {"url": proxy.url, "upstream": f"{proxy.upstream[0]}:{proxy.upstream[1]}",
            "verify_mode": proxy.context.verify_mode.name,
            "minimum_version": proxy.context.minimum_version.name}

"""uvicorn's HTTP/1.1 protocol with actix's rule for ending a connection (spec §9b).

actix-web's dispatcher keeps a connection only when the request it answered
was read to its end. Qdrant's auth middleware refuses before reading the body,
so when the body has not fully arrived as the refusal completes (headers and
body in separate writes, as httpx and most clients send them), Qdrant sends
the complete answer and closes the connection, without announcing it in a
``Connection: close`` header. A body that had arrived by then is read off and
the connection stays open. uvicorn instead keeps reading a body nobody asked
for; this protocol closes where actix closes and otherwise changes nothing.

The close is a lingering one: FIN right after the answer, then whatever still
arrives is dropped until the client closes (or ``LINGER_S`` passes). Closing a
socket with unread bytes makes the kernel send a reset, which can destroy the
answer before the client reads it, when the client is still writing a large
body. The client sees the same thing either way: the complete answer, then EOF.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

#: How long a closed connection drains a client that does not close its side.
LINGER_S = 5.0


class ActixH11Protocol(H11Protocol):
    """:class:`H11Protocol` that ends the connection when an answer completes before the request body."""

    _lingering: asyncio.TimerHandle | None = None

    def on_response_complete(self) -> None:
        if self.conn.their_state is not h11.SEND_BODY or self.transport.is_closing():
            super().on_response_complete()
            return
        self.server_state.total_requests += 1
        self.conn.send(h11.ConnectionClosed())
        if not self.transport.can_write_eof():
            # TLS: asyncio's close sends close_notify and drains until the peer's arrives.
            self.transport.close()
            return
        self.transport.write_eof()
        self.flow.resume_reading()  # uvicorn pauses reading above its high-water mark
        self._lingering = self.loop.call_later(LINGER_S, self.transport.close)

    def data_received(self, data: bytes) -> None:
        if self._lingering is None:
            super().data_received(data)
        # else: the rest of a body nobody will read, or a request on a connection already ended

    def connection_lost(self, exc: Exception | None) -> None:
        if self._lingering is not None:
            self._lingering.cancel()
        super().connection_lost(exc)

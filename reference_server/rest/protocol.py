"""uvicorn's HTTP/1.1 protocol with actix's rule for ending a connection (spec §9b).

actix-web's dispatcher keeps a connection only when the request it answered
was read to its end. Qdrant's auth middleware refuses before reading the body,
so when the body has not fully arrived as the refusal completes (headers and
body in separate writes, as httpx and most clients send them), Qdrant sends
the complete answer and closes the connection, without announcing it in a
``Connection: close`` header. A body that had arrived by then is read off and
the connection stays open. uvicorn instead keeps reading a body nobody asked
for; this protocol closes where actix closes and otherwise changes nothing.
"""

from __future__ import annotations

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class ActixH11Protocol(H11Protocol):
    """:class:`H11Protocol` that ends the connection when an answer completes before the request body."""

    def on_response_complete(self) -> None:
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            self.conn.send(h11.ConnectionClosed())
            self.transport.close()
        # Counts the request; returns early on a closing transport (no keep-alive timer).
        super().on_response_complete()

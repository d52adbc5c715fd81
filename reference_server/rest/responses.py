"""The response shapes Qdrant's REST API uses (spec §2.4, §2.5, §4).

* ``bare``: middleware refusals: the message as the body, no Content-Type.
* ``plain``: actix's default error rendering: ``text/plain; charset=utf-8``.
* ``ok`` / ``error``: the JSON envelope ``{"result", "status", "time"}`` and
  ``{"status": {"error": ...}, "time"}``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

JSON_TYPE = b"application/json"
TEXT_TYPE = b"text/plain; charset=utf-8"


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


def elapsed(started: float) -> float:
    return time.perf_counter() - started


def _dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_body(status: int, data: Any) -> Response:
    return Response(status, _dumps(data), [(b"content-type", JSON_TYPE)])


def ok(result: Any, started: float) -> Response:
    return json_body(200, {"result": result, "status": "ok", "time": elapsed(started)})


def error(status: int, message: str, started: float) -> Response:
    return json_body(status, {"status": {"error": message}, "time": elapsed(started)})


def plain(status: int, text: str) -> Response:
    return Response(status, text.encode("utf-8"), [(b"content-type", TEXT_TYPE)])


def bare(status: int, text: str) -> Response:
    return Response(status, text.encode("utf-8"))


def empty(status: int) -> Response:
    return Response(status)

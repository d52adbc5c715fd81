"""Qdrant's CORS layer (spec §2.6, §10): any origin, method and header.

It wraps everything else, so a preflight is answered without a key and
401/403 refusals still carry CORS headers. The request ``Origin`` is echoed
(never ``*``) and ``Access-Control-Allow-Credentials`` is never sent.
"""

from __future__ import annotations

from .responses import Response

MAX_AGE = b"3600"
_VARY = b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"


def is_preflight(method: str, origin: bytes | None, request_method: bytes | None) -> bool:
    return method == "OPTIONS" and origin is not None and request_method is not None


def preflight(origin: bytes, request_method: bytes, request_headers: bytes | None) -> Response:
    headers = [
        (b"access-control-allow-origin", origin),
        (b"access-control-allow-methods", request_method),
        (b"access-control-max-age", MAX_AGE),
        (b"vary", _VARY),
    ]
    if request_headers:
        headers.append((b"access-control-allow-headers", request_headers))
    return Response(200, b"", headers)


def decorate(response: Response, origin: bytes) -> Response:
    response.headers.append((b"access-control-allow-origin", origin))
    response.headers.append((b"vary", _VARY))
    return response

"""Request paths as actix sees them: NormalizePath, then selective percent-decoding.

NormalizePath (spec §2.5) merges repeated slashes and trims the trailing one
before auth runs, so ``//healthz/`` is ``/healthz``. Routing then decodes
percent escapes except ``%2F``, ``%25`` and ``%2B``, which stay encoded as
actix-router keeps them: ``/dashboard%2f..%2fcollections`` is one segment, not
a way into ``/collections``.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

_SLASHES = re.compile(r"/{2,}")
_PROTECTED = re.compile(r"%(?:2[Ff]|25|2[Bb])")


def normalize(raw_path: str) -> str:
    """Merge repeated slashes, drop a trailing slash; ``/`` stays ``/``."""
    path = _SLASHES.sub("/", raw_path or "/")
    if not path.startswith("/"):
        path = "/" + path
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return path


def decode_for_routing(path: str) -> str:
    """Decode escapes other than the protected ones; invalid UTF-8 is replaced."""
    pieces = _PROTECTED.split(path)
    kept = _PROTECTED.findall(path)
    return unquote(pieces[0]) + "".join(k + unquote(p) for k, p in zip(kept, pieces[1:], strict=True))

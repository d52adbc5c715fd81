"""A pytest plugin for self-tests: what the run knew and what it sent, written for a test to judge.

Loaded only by self-tests (``-p tests.key_spy``).

- ``$QSC_SPY_FILE``: at the end of the session, the run's registered secrets
  (so a test can search everything the run printed and wrote for them).
- ``$QSC_SPY_SENT_FILE``: from the start, every plaintext byte this process
  writes to a socket (HTTP requests of httpx, qdrant-client's REST and the raw
  probes: ``socket.sendall``/``send`` and ``ssl.SSLSocket.sendall``/``send``,
  before encryption) and every gRPC call's metadata (an interceptor on every
  channel made with ``grpc.secure_channel``/``insecure_channel``) is checked
  against the configured API keys as it goes: a value that shares a run of 8
  characters with a key without being that key is recorded as a violation, by
  key name and channel only (never the value). Counts show the spy saw traffic.

Both files are 0600 in the test's temporary directory.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

import pytest

#: Names under which the harness registers configured API keys (fixtures/profiles.py Credentials).
KEY_NAMES = frozenset({"api-key", "alt-api-key", "read-only-api-key"})

_lock = threading.Lock()
_stats: dict[str, Any] = {"chunks": 0, "grpc_calls": 0, "whole_key_seen": 0, "violations": []}


def _keys() -> dict[str, str]:
    from qdrant_conformance.fixtures.secrets import REDACTOR

    return {secret: name for secret, name in REDACTOR.named().items() if name in KEY_NAMES}


def _check(channel: str, texts: list[str]) -> None:
    from qdrant_conformance.fixtures.secrets import shares_run

    keys = _keys()
    found = []
    whole = 0
    for text in texts:
        for key, name in keys.items():
            if key in text:
                whole += 1
            if shares_run(text, key):
                found.append({"channel": channel, "key": name})
    with _lock:
        _stats["whole_key_seen"] += whole
        _stats["violations"].extend(found)


def _wrap_send(original: Callable[..., Any], channel: str) -> Callable[..., Any]:
    def send(self: Any, data: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            with _lock:
                _stats["chunks"] += 1
            _check(channel, [bytes(data).decode("latin-1")])
        except Exception:  # the spy must never change what the run does
            pass
        return original(self, data, *args, **kwargs)

    return send


def _metadata_interceptor() -> Any:
    import grpc

    class Spy(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
              grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
        def _seen(self, details: Any) -> None:
            with _lock:
                _stats["grpc_calls"] += 1
            values = [f"{k}: {v}" for k, v in (details.metadata or []) if isinstance(v, str)]
            _check(f"grpc {details.method}", values)

        def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
            self._seen(details)
            return continuation(details, request)

        def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
            self._seen(details)
            return continuation(details, request)

        def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
            self._seen(details)
            return continuation(details, requests)

        def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
            self._seen(details)
            return continuation(details, requests)

    return Spy()


def _install() -> None:
    import grpc

    socket.socket.sendall = _wrap_send(socket.socket.sendall, "socket")  # type: ignore[method-assign]
    socket.socket.send = _wrap_send(socket.socket.send, "socket")  # type: ignore[method-assign]
    ssl.SSLSocket.sendall = _wrap_send(ssl.SSLSocket.sendall, "tls")  # type: ignore[method-assign]
    ssl.SSLSocket.send = _wrap_send(ssl.SSLSocket.send, "tls")  # type: ignore[method-assign]
    spy = _metadata_interceptor()
    secure, insecure = grpc.secure_channel, grpc.insecure_channel
    grpc.secure_channel = lambda *a, **k: grpc.intercept_channel(secure(*a, **k), spy)
    grpc.insecure_channel = lambda *a, **k: grpc.intercept_channel(insecure(*a, **k), spy)


if os.environ.get("QSC_SPY_SENT_FILE"):
    _install()


def _write(path: str, data: Any) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from qdrant_conformance.fixtures.secrets import REDACTOR

    path = os.environ.get("QSC_SPY_FILE")
    if path:
        _write(path, REDACTOR.secrets())
    sent = os.environ.get("QSC_SPY_SENT_FILE")
    if sent:
        with _lock:
            _write(sent, dict(_stats, keys=sorted(set(_keys().values()))))

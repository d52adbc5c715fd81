"""A pytest plugin for self-tests: the REST client's socket is gone in the middle of a test's requests.

Loaded only by ``tests/test_outcome_mapping.py`` (``-p tests.broken_client``).
During each test's call phase (not while fixtures start servers), reading a
connection's facts raises ``OSError: [Errno 9] Bad file descriptor``, what
``getsockname()`` on a closed socket raised before the client read them while
the connection was open: a harness failure after the server answered.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Generator
from typing import Any, NoReturn

import pytest


def _bad_descriptor(response: Any) -> NoReturn:
    raise OSError(errno.EBADF, os.strerror(errno.EBADF))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    import qdrant_conformance.fixtures.clients.rest as rest
    working = rest._connection_facts
    rest._connection_facts = _bad_descriptor  # type: ignore[assignment]
    try:
        yield
    finally:
        rest._connection_facts = working

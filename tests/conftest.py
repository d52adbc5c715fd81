"""Shared fixtures for the self-tests (kept small; helpers live in tests/server_helpers.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme

from tests.server_helpers import ServerProcess, start_server


@pytest.fixture(scope="session")
def test_ca() -> trustme.CA:
    """A throwaway CA for the self-tests' server and client certificates."""
    return trustme.CA()


@pytest.fixture
def reference_server() -> Iterator[Callable[..., ServerProcess]]:
    """``reference_server(config, **start_server_kwargs)`` → a ready server, stopped at teardown."""
    started: list[ServerProcess] = []

    def start(config: dict[str, Any] | None = None, **kwargs: Any) -> ServerProcess:
        srv = start_server(config, **kwargs)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


# -- fault kill score (tests/test_fault_kill.py; logic in tests/kill_helpers.py) -------------------


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    from tests.kill_helpers import report_kill_score

    report_kill_score(terminalreporter)

"""Which suite tests reach which fault seam: recorded in a clean run, read by the kill test's ``reach`` scope.

Mutation-testing tools run a mutant only against the tests that execute its code (coverage-based test
selection); this is the same idea for the reference server's fault seams. A fault changes the server only
where :meth:`reference_server.fault_policy.FaultPolicy.active` is asked about it, so a test during which no
server asks about fault F behaves the same with F switched on: running it under F can show nothing.

Two halves:

- **Recording** (this module as a pytest plugin, ``-p tests.fault_reach``, in a clean control run of one
  suite file; the servers get ``QSC_FAULT_REACH_DIR`` and write ``<pid>.reach``, see
  :class:`~reference_server.fault_policy.ReachLog`): each test's window (monotonic ns, setup to
  teardown) and, for each pool server and variant, the moment it was ready (after the pool's warm-up).
  Written to ``windows.json`` in the same directory.
- **Reading** (:func:`reach_by_test`): which faults each test reached. The rules only ever widen:

  - a seam asked while a server handled a request, after that server was ready, belongs to the test whose
    call or teardown holds that moment; asked during a test's setup (where module- and session-scoped
    fixtures build what later tests use) or between tests, to every later test of the run;
  - a seam asked outside any request (start-up, a timer, a handshake), or before the server was ready
    (its readiness probe and warm-up included: a fault there breaks every test that needs the server), or
    by a server whose readiness the harness did not record (cluster nodes), is server-wide: it belongs to
    every test whose window ends after that moment.

Known limit, shared with every coverage-based selection: a fault that changes *stored state* during one
test could change what a later test reads without that test asking about the fault. No fault in the
catalog does that to state another test reads; ``bench/kill_test.py --scope layers`` runs the reviewed
hand-made superset when in doubt.
"""

from __future__ import annotations

import bisect
import json
import os
import time
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REACH_DIR_ENV = "QSC_FAULT_REACH_DIR"
#: A file of node ids, one per line: only those tests run (a kill run's selection, too long for arguments).
SELECT_ENV = "QSC_KILL_SELECT_FILE"
WINDOWS_FILE = "windows.json"

_windows: list[tuple[str, int, int, int]] = []  # node id, setup start, setup end, teardown end
_setup_end: dict[str, int] = {}
_ready: dict[str, int] = {}


# ---------------------------------------------------------------------------
# recording (plugin hooks)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    start = time.monotonic_ns()
    yield
    end = time.monotonic_ns()
    _windows.append((item.nodeid, start, _setup_end.pop(item.nodeid, end), end))


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    yield
    _setup_end[item.nodeid] = time.monotonic_ns()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    listing = os.environ.get(SELECT_ENV)
    if not listing:
        return
    wanted = set(Path(listing).read_text().split("\n"))
    keep = [item for item in items if item.nodeid in wanted]
    dropped = [item for item in items if item.nodeid not in wanted]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get(REACH_DIR_ENV):
        return
    from qdrant_conformance.fixtures import servers

    pool = servers.ServerPool
    original_start, original_variant = pool._start, pool.variant

    def _start(self: Any, prof: Any) -> Any:
        server = original_start(self, prof)
        _note_ready(server.instance)
        return server

    def variant(self: Any, *args: Any, **kwargs: Any) -> Any:
        instance = original_variant(self, *args, **kwargs)
        _note_ready(instance)
        return instance

    pool._start = _start  # type: ignore[method-assign]
    pool.variant = variant  # type: ignore[method-assign]


def _note_ready(instance: Any) -> None:
    workdir = getattr(instance, "workdir", None)
    if workdir is not None:
        _ready[str(Path(workdir).resolve())] = time.monotonic_ns()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    directory = os.environ.get(REACH_DIR_ENV)
    if directory:
        Path(directory, WINDOWS_FILE).write_text(json.dumps({"windows": _windows, "ready": _ready}))


# ---------------------------------------------------------------------------
# reading


@dataclass(frozen=True)
class Consult:
    at: int  # monotonic ns
    in_request: bool
    fault: str


def read_server(path: Path) -> tuple[str, list[Consult]]:
    """(working directory, consults) of one ``<pid>.reach`` file."""
    workdir = ""
    consults: list[Consult] = []
    for line in path.read_text().splitlines():
        at, kind, rest = line.split(" ", 2)
        if kind == "start":
            workdir = str(Path(rest).resolve())
        else:
            consults.append(Consult(int(at), kind == "r", rest))
    return workdir, consults


def attribute(windows: list[tuple[str, int, int, int]], servers: Iterable[tuple[int | None, list[Consult]]]
              ) -> dict[str, set[str]]:
    """Faults reached per node id, by the rules of the module docstring.

    ``windows``: (node id, setup start, setup end, teardown end) per test; ``servers``: for each server,
    the moment it was ready (``None``: not recorded) and its consults.
    """
    reached: dict[str, set[str]] = {nodeid: set() for nodeid, _, _, _ in windows}
    ordered = sorted(windows, key=lambda w: w[1])
    starts = [w[1] for w in ordered]

    def every_test_after(at: int, fault: str) -> None:
        for nodeid, _, _, end in ordered:
            if end >= at:
                reached[nodeid].add(fault)

    for ready, consults in servers:
        for c in consults:
            if not c.in_request or ready is None or c.at < ready:
                every_test_after(c.at, c.fault)
                continue
            i = bisect.bisect_right(starts, c.at) - 1
            if i >= 0 and ordered[i][2] < c.at <= ordered[i][3]:  # in the test's call or teardown
                reached[ordered[i][0]].add(c.fault)
            else:
                every_test_after(c.at, c.fault)
    return reached


def reach_by_test(directory: Path) -> dict[str, set[str]]:
    """Faults reached per node id in the control run recorded in ``directory``."""
    data = json.loads((directory / WINDOWS_FILE).read_text())
    windows = [(str(n), int(a), int(b), int(c)) for n, a, b, c in data["windows"]]
    ready = {str(k): int(v) for k, v in data["ready"].items()}
    servers = []
    for path in sorted(directory.glob("*.reach")):
        workdir, consults = read_server(path)
        servers.append((ready.get(workdir), consults))
    return attribute(windows, servers)

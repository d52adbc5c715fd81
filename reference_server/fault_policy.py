"""The faults one server start switched on: built once from ``settings.faults``, handed to every seam.

:mod:`reference_server.faults` is the catalog (data only); this is the switch board a
running server reads. :func:`reference_server.server.prepare` builds one
:class:`FaultPolicy` and passes it into the TLS, auth, routing and cluster code, which
ask :meth:`FaultPolicy.active` where the faulty behaviour would differ::

    if self.faults.active("grpc-no-auth"):  # fault seam
        ...

There is no process-wide switch: a server forked by :mod:`reference_server.zygote`
builds its own policy, so nothing leaks from one child (or self-test) to the next.
Objects built without a policy (self-tests that construct a piece of the server
directly) get :data:`NO_FAULTS`, the faithful server.

Reach (self-tests only): with ``QSC_FAULT_REACH_DIR`` set, the policy also writes every seam it is asked
about to a :class:`ReachLog`, so the kill test can run a fault against only the suite tests whose requests
reach its seam (``tests/fault_reach.py``). A seam asked outside a request (start-up, a timer, a TLS
handshake) is written as server-wide: it may shape everything the server does afterwards.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .faults import BY_NAME, validate

#: Environment variable naming the directory a :class:`ReachLog` writes to.
REACH_DIR_ENV = "QSC_FAULT_REACH_DIR"
#: True while this thread or task handles one request (REST request, gRPC call, p2p call).
_IN_REQUEST: contextvars.ContextVar[bool] = contextvars.ContextVar("qsc_in_request", default=False)


@contextlib.contextmanager
def handling_request() -> Iterator[None]:
    """Marks the seams asked inside as belonging to one request (see :class:`ReachLog`)."""
    token = _IN_REQUEST.set(True)
    try:
        yield
    finally:
        _IN_REQUEST.reset(token)


class ReachLog:
    """Which seams a server asked about, and when: ``<pid>.reach`` lines ``<monotonic ns> <r|s> <fault>``.

    ``r``: asked while handling a request; ``s``: server-wide (anything else), written once per fault.
    The first line is ``<ns> start <working directory>``, by which the harness knows the server.
    """

    def __init__(self, directory: str) -> None:
        path = os.path.join(directory, f"{os.getpid()}.reach")
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._server_wide: set[str] = set()
        self._lock = threading.Lock()
        self._write(f"{time.monotonic_ns()} start {os.getcwd()}\n")

    @classmethod
    def from_env(cls) -> ReachLog | None:
        directory = os.environ.get(REACH_DIR_ENV)
        return cls(directory) if directory else None

    def note(self, name: str) -> None:
        if _IN_REQUEST.get():
            self._write(f"{time.monotonic_ns()} r {name}\n")
            return
        with self._lock:
            if name in self._server_wide:
                return
            self._server_wide.add(name)
        self._write(f"{time.monotonic_ns()} s {name}\n")

    def _write(self, line: str) -> None:
        os.write(self._fd, line.encode())  # one unbuffered append per line: no line is torn or left behind


@dataclass(frozen=True)
class FaultPolicy:
    """A validated set of fault names; immutable, so it can be shared by every thread of a server."""

    names: frozenset[str] = frozenset()
    reach: ReachLog | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_names(cls, names: Iterable[str], reach: ReachLog | None = None) -> FaultPolicy:
        """The policy for ``names``; :class:`reference_server.faults.UnknownFault` for a name not in the catalog."""
        return cls(frozenset(validate(names)), reach)

    def active(self, name: str) -> bool:
        """Is the fault ``name`` switched on? ``name`` must be in the catalog (a typo at a seam is a bug)."""
        if name not in BY_NAME:
            raise KeyError(f"no fault named {name!r} in the catalog")
        if self.reach is not None:
            self.reach.note(name)
        return name in self.names

    def any_of(self, names: Iterable[str]) -> frozenset[str]:
        """The switched-on faults among ``names`` (each checked against the catalog)."""
        return frozenset(name for name in names if self.active(name))


#: The faithful server: no fault switched on.
NO_FAULTS = FaultPolicy()

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
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from reference_server.faults import BY_NAME, validate


@dataclass(frozen=True)
class FaultPolicy:
    """A validated set of fault names; immutable, so it can be shared by every thread of a server."""

    names: frozenset[str] = frozenset()

    @classmethod
    def from_names(cls, names: Iterable[str]) -> FaultPolicy:
        """The policy for ``names``; :class:`reference_server.faults.UnknownFault` for a name not in the catalog."""
        return cls(frozenset(validate(names)))

    def active(self, name: str) -> bool:
        """Is the fault ``name`` switched on? ``name`` must be in the catalog (a typo at a seam is a bug)."""
        if name not in BY_NAME:
            raise KeyError(f"no fault named {name!r} in the catalog")
        return name in self.names

    def any_of(self, names: Iterable[str]) -> frozenset[str]:
        """The switched-on faults among ``names`` (each checked against the catalog)."""
        return frozenset(name for name in names if self.active(name))


#: The faithful server: no fault switched on.
NO_FAULTS = FaultPolicy()

"""What a method implementation gets besides its decoded request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..data_plane import DataPlane
from ..fault_policy import NO_FAULTS, FaultPolicy
from ..settings import Settings


@dataclass(frozen=True)
class Call:
    path: str
    data: DataPlane
    settings: Settings
    raw: bytes  # the request as received, for services whose messages we cannot decode
    faults: FaultPolicy = NO_FAULTS  # the server's fault switches (self-tests only)


# A method implementation: decoded request (or raw bytes) in, response message (or bytes) out.
Handler = Callable[[Any, Call], Any]

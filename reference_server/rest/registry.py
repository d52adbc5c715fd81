"""What a REST handler is: its arguments (:class:`Call`, :class:`Context`), the two tables it is
registered in, and how a data-plane error becomes Qdrant's answer.

Apart from :mod:`reference_server.rest.handlers` so that the modules registering handlers
(``handlers``, ``service_handlers``, ``snapshot_handlers``) import this one, not each other:
``handlers`` imports the other two to complete the table, with no import circle.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..data_errors import Forbidden
from ..data_plane import (
    BadRequest,
    DataPlane,
    DataPlaneError,
    InvalidBody,
    NotFound,
    NotReady,
    Unsupported,
)
from ..fault_policy import NO_FAULTS, FaultPolicy
from ..settings import Settings
from .responses import Response, error


@dataclass
class Call:
    """What a handler gets: path parameters, the parsed JSON body, the start time."""

    params: dict[str, str]
    body: Any
    started: float
    query: dict[str, str] = field(default_factory=dict)
    # Uploads only: the raw body (read after the access check) and its content type.
    raw: bytes = b""
    content_type: str | None = None

    @property
    def collection(self) -> str:
        return self.params["collection_name"]


def _no_cluster() -> dict[str, Any]:
    return {"status": "disabled"}


@dataclass
class Context:
    settings: Settings
    data: DataPlane
    faults: FaultPolicy = NO_FAULTS
    #: What ``GET /cluster`` reports: the node's state in cluster mode (``ClusterNode.status``).
    cluster_status: Callable[[], dict[str, Any]] = _no_cluster
    telemetry_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # Server-wide settings the API changes at run time (logger, debugger, quotas, cluster metadata).
    state: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[Context, Call], Response]

#: Handlers that never block: served on the event loop.
INLINE: dict[str, Handler] = {}
#: Handlers that call the data plane: served in a worker thread.
BLOCKING: dict[str, Handler] = {}


def inline(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        INLINE[name] = fn
        return fn

    return register


def blocking(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        BLOCKING[name] = fn
        return fn

    return register


def jsonable(value: Any) -> Any:
    """Pydantic models (and lists/dicts of them) as the JSON Qdrant sends."""
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        return dump(mode="json", exclude_none=True)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def data_error(exc: DataPlaneError, started: float) -> Response:
    if isinstance(exc, NotFound):
        return error(404, exc.message, started)
    if isinstance(exc, Forbidden):
        return error(403, exc.message, started)
    if isinstance(exc, InvalidBody):
        return error(422, exc.message, started)
    if isinstance(exc, BadRequest):
        return error(400, exc.message, started)
    if isinstance(exc, Unsupported):
        return error(501, exc.message, started)
    if isinstance(exc, NotReady):
        return error(503, exc.message, started)
    return error(500, exc.message, started)

"""``grpc.health.v1.Health/Check`` and ``qdrant.Qdrant/HealthCheck`` (spec §3).

``Health/Check`` needs only grpcio-health-checking, so it answers before
qdrant_client has loaded; ``Health/Watch`` is deliberately absent (Qdrant does
not implement it).
"""

from __future__ import annotations

from typing import Any

from grpc_health.v1 import health_pb2

from .. import COMMIT, TITLE
from . import messages
from .call import Call, Handler

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
QDRANT_HEALTH_CHECK = "/qdrant.Qdrant/HealthCheck"


def health_check(req: Any, call: Call) -> Any:
    # Qdrant ignores the requested service name and always reports SERVING.
    return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


def qdrant_health_check(req: Any, call: Call) -> Any:
    reply = messages.response_class(QDRANT_HEALTH_CHECK)
    return reply(title=TITLE, version=call.settings.version, commit=COMMIT)


# Decoded with the health package's own request class: no qdrant_client needed.
EARLY_HANDLERS: dict[str, tuple[Handler, type[Any]]] = {
    HEALTH_CHECK: (health_check, health_pb2.HealthCheckRequest),
}

HANDLERS: dict[str, Handler] = {
    QDRANT_HEALTH_CHECK: qdrant_health_check,
}

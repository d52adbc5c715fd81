"""gRPC server reflection, ``grpc.reflection.v1`` and ``v1alpha``, behind authentication (spec §3).

Qdrant serves reflection behind its auth layer: a valid credential is needed,
and no RBAC applies (any principal, the read-only key included). It advertises
``qdrant.Collections``, ``qdrant.Points``, ``qdrant.Snapshots``, ``qdrant.Qdrant``,
``grpc.health.v1.Health`` and, from v1.18.0, ``qdrant.StorageRead``.

Answers come from grpcio-reflection's servicer over the default descriptor pool
(qdrant-client's stubs register Qdrant's files there). grpcio-reflection ships
only the v1alpha messages; ``grpc.reflection.v1`` has the same messages with
the same field numbers, so one encoding serves both. ``qdrant.StorageRead`` has
no shipped descriptor: it is listed, but asking for its file answers NOT_FOUND
inside the reflection response, as any unknown symbol does.
"""

from __future__ import annotations

import functools
from typing import Any

from ..data_plane import DataPlane
from ..fault_policy import FaultPolicy
from ..versioning import Emulation

PATHS = frozenset({
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
})

_SERVICES = ("qdrant.Collections", "qdrant.Points", "qdrant.Snapshots", "qdrant.Qdrant", "grpc.health.v1.Health")


#: ``grpc-extra-method``: a method no access-table row covers (fault seam).
EXTRA_SERVICE = "qdrant.Debug"
EXTRA_METHOD = f"/{EXTRA_SERVICE}/DumpConfig"


def advertised(emulation: Emulation, faults: FaultPolicy) -> list[str]:
    services = list(_SERVICES)
    if emulation.at_least("1.18.0"):
        services.append("qdrant.StorageRead")
    if faults.active("grpc-extra-method"):  # fault seam
        _register_extra_service()
        services.append(EXTRA_SERVICE)
    return services


def _register_extra_service() -> None:
    from google.protobuf import descriptor_pb2, descriptor_pool

    pool = descriptor_pool.Default()
    try:
        pool.FindServiceByName(EXTRA_SERVICE)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto(name="qsc_fault_debug.proto", package="qdrant", syntax="proto3")
    proto.message_type.add(name="DumpConfigRequest")
    reply = proto.message_type.add(name="DumpConfigResponse")
    reply.field.add(name="config", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                    label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    proto.service.add(name="Debug").method.add(name="DumpConfig", input_type=".qdrant.DumpConfigRequest",
                                               output_type=".qdrant.DumpConfigResponse")
    pool.Add(proto)


@functools.cache
def _servicer(services: tuple[str, ...]) -> Any:
    # Registers Qdrant's and the health service's files in the default pool.
    import qdrant_client.grpc  # noqa: F401
    from grpc_health.v1 import health_pb2  # noqa: F401
    from grpc_reflection.v1alpha.reflection import ReflectionServicer

    return ReflectionServicer(services)


def answer(raw: bytes, emulation: Emulation, data: DataPlane, faults: FaultPolicy) -> bytes:
    """The serialized reflection response to one serialized request.

    Raises ``google.protobuf.message.DecodeError`` for bytes that are not a request.
    """
    from grpc_reflection.v1alpha import reflection_pb2

    data.wait_ready()  # qdrant_client's stubs come with the data plane's import
    request = reflection_pb2.ServerReflectionRequest.FromString(raw)
    servicer = _servicer(tuple(advertised(emulation, faults)))
    response = next(iter(servicer.ServerReflectionInfo(iter([request]), None)))
    data_out: bytes = response.SerializeToString()
    return data_out

"""Who may call each public gRPC method of the emulated Qdrant (spec §3, §4).

This is the server's own table, written from the spec. The suite keeps an
independent one; the two check each other, so never derive one from the other.

``READ`` means any authenticated principal (the read-only key included);
``MANAGE`` means global manage access (the manage or alt key). Methods missing
here are unknown paths: authenticated callers get UNIMPLEMENTED.

``tests/test_reference_grpc.py`` checks that every method of the services
shipped in ``qdrant_client.grpc`` is listed (see :func:`undeclared_methods`).
"""

from __future__ import annotations

import enum

from ..auth import Access

READ = Access.READ
MANAGE = Access.MANAGE


class Shape(enum.Enum):
    """How requests and responses flow; the generic handler must match the client's call."""

    UNARY = "unary"
    SERVER_STREAM = "server_stream"
    BIDI_STREAM = "bidi_stream"


SERVICE_ACCESS: dict[str, dict[str, Access]] = {
    "qdrant.Collections": {
        "Get": READ,
        "List": READ,
        "Create": MANAGE,
        "Update": MANAGE,
        "Delete": MANAGE,
        "UpdateAliases": MANAGE,
        "ListCollectionAliases": READ,
        "ListAliases": READ,
        "CollectionClusterInfo": READ,
        "CollectionExists": READ,
        "UpdateCollectionClusterSetup": MANAGE,
        "CreateShardKey": MANAGE,
        "DeleteShardKey": MANAGE,
        "ListShardKeys": READ,
    },
    "qdrant.Points": {
        "Upsert": MANAGE,
        "Delete": MANAGE,
        "Get": READ,
        "UpdateVectors": MANAGE,
        "DeleteVectors": MANAGE,
        "SetPayload": MANAGE,
        "OverwritePayload": MANAGE,
        "DeletePayload": MANAGE,
        "ClearPayload": MANAGE,
        "CreateFieldIndex": MANAGE,
        "DeleteFieldIndex": MANAGE,
        "CreateVectorName": MANAGE,
        "DeleteVectorName": MANAGE,
        "Search": READ,
        "SearchBatch": READ,
        "SearchGroups": READ,
        "Scroll": READ,
        "Recommend": READ,
        "RecommendBatch": READ,
        "RecommendGroups": READ,
        "Discover": READ,
        "DiscoverBatch": READ,
        "Count": READ,
        "UpdateBatch": MANAGE,
        "Query": READ,
        "QueryBatch": READ,
        "QueryGroups": READ,
        "Facet": READ,
        "SearchMatrixPairs": READ,
        "SearchMatrixOffsets": READ,
    },
    "qdrant.Snapshots": {
        "Create": MANAGE,
        "List": READ,
        "Delete": MANAGE,
        "CreateFull": MANAGE,
        "ListFull": READ,
        "DeleteFull": MANAGE,
    },
    # Server-only services: not in qdrant-client's stubs.
    "qdrant.ShardSnapshots": {
        "Create": MANAGE,
        "List": READ,
        "Delete": MANAGE,
        "Recover": MANAGE,
    },
    "qdrant.Quotas": {
        "Get": READ,
        "Update": MANAGE,
    },
    # Raw shard-file reads are open to any read principal (spec §4, §11.8).
    "qdrant.StorageRead": {
        "ListFiles": READ,
        "FileExists": READ,
        "FileLength": READ,
        "ReadBytes": READ,
        "ReadBytesStream": READ,
        "ReadWhole": READ,
        "ReadBatch": READ,
    },
    # No RBAC on these beyond authentication (spec §3).
    "qdrant.Qdrant": {"HealthCheck": READ},
    # Qdrant implements only Check; Watch and List answer UNIMPLEMENTED once authenticated.
    "grpc.health.v1.Health": {"Check": READ, "Watch": READ, "List": READ},
    "grpc.reflection.v1.ServerReflection": {"ServerReflectionInfo": READ},
    "grpc.reflection.v1alpha.ServerReflection": {"ServerReflectionInfo": READ},
}

# First Qdrant version serving each service; absent means "since gRPC exists" (spec §9).
SERVICE_SINCE: dict[str, str] = {
    "grpc.health.v1.Health": "1.6.0",
    "qdrant.StorageRead": "1.18.0",
    # Not registered on the public port up to v1.18.x (src/tonic/mod.rs::init); taken to arrive
    # with the REST quota routes (v1.19.0).
    "qdrant.Quotas": "1.19.0",
}

# Services Qdrant registers only on the p2p port (src/tonic/mod.rs::init_internal, spec §8): the
# public port answers UNIMPLEMENTED past authentication.
NOT_PUBLIC: frozenset[str] = frozenset({"qdrant.ShardSnapshots"})

STREAMING: dict[str, Shape] = {
    "/grpc.health.v1.Health/Watch": Shape.SERVER_STREAM,
    "/qdrant.StorageRead/ReadBytesStream": Shape.SERVER_STREAM,
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": Shape.BIDI_STREAM,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": Shape.BIDI_STREAM,
}

# Services whose methods qdrant-client ships stubs for, by the module holding the descriptor.
SHIPPED_SERVICE_MODULES: dict[str, str] = {
    "qdrant.Collections": "qdrant_client.grpc.collections_service_pb2",
    "qdrant.Points": "qdrant_client.grpc.points_service_pb2",
    "qdrant.Snapshots": "qdrant_client.grpc.snapshots_service_pb2",
    "qdrant.Qdrant": "qdrant_client.grpc.qdrant_pb2",
    "grpc.health.v1.Health": "grpc_health.v1.health_pb2",
}


def split_path(path: str) -> tuple[str, str] | None:
    """``/pkg.Service/Method`` → ``("pkg.Service", "Method")``; ``None`` if malformed."""
    if not path.startswith("/"):
        return None
    service, sep, method = path[1:].partition("/")
    if not sep or not service or not method or "/" in method:
        return None
    return service, method


def required_access(path: str) -> Access | None:
    """The access a method needs, or ``None`` for a path this table does not know."""
    parts = split_path(path)
    if parts is None:
        return None
    return SERVICE_ACCESS.get(parts[0], {}).get(parts[1])


def shape_of(path: str) -> Shape:
    return STREAMING.get(path, Shape.UNARY)


def undeclared_methods() -> list[str]:
    """Shipped methods missing from the table, or whose streaming shape differs.

    Imports the shipped descriptors (slow: qdrant_client); meant for self-tests.
    """
    import importlib

    problems: list[str] = []
    for service, module_name in SHIPPED_SERVICE_MODULES.items():
        module = importlib.import_module(module_name)
        descriptor = module.DESCRIPTOR.services_by_name[service.rsplit(".", 1)[1]]
        assert descriptor.full_name == service
        for method in descriptor.methods:
            path = f"/{service}/{method.name}"
            if required_access(path) is None:
                problems.append(f"{path}: not in the access table")
                continue
            if method.client_streaming:
                actual = Shape.BIDI_STREAM
            elif method.server_streaming:
                actual = Shape.SERVER_STREAM
            else:
                actual = Shape.UNARY
            if shape_of(path) is not actual:
                problems.append(f"{path}: table says {shape_of(path).value}, descriptor {actual.value}")
        listed = set(SERVICE_ACCESS.get(service, {}))
        shipped = {m.name for m in descriptor.methods}
        problems.extend(f"/{service}/{extra}: listed but not shipped" for extra in sorted(listed - shipped))
    return problems

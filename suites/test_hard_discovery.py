"""Route discovery over gRPC reflection (HARD-GRPC-004, hardening.yaml).

Reflection answers a valid credential (spec §3). The suite lists the services the
target advertises, asks for each one's file descriptor and collects every method;
each must have a row in ``fixtures/catalog/access_table.yaml``, or it is reported
*uncovered*: a method nothing here has checked for authentication. A service whose
descriptor the target does not give is covered when the table has rows for it.
Reflection's own services are not advertised by Qdrant and are in the table anyway.

Requests go as one-message unary calls on the bidi reflection method, as the sweep
sends them (the answer to each request arrives before the stream ends). Nothing the
reflection lists is ever called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from qdrant_conformance.fixtures.catalog.access import grpc_rows
from qdrant_conformance.fixtures.outcomes import inconclusive, note

pytestmark = pytest.mark.profiles("api-key")

req = pytest.mark.requirement

REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


def _ask(client: Any, metadata: list[tuple[str, str]], **fields: Any) -> Any:
    from grpc_reflection.v1alpha import reflection_pb2

    outcome, raw = client.call_bytes(REFLECTION, reflection_pb2.ServerReflectionRequest(**fields),
                                     metadata=metadata)
    if raw is None:
        return outcome, None
    return outcome, reflection_pb2.ServerReflectionResponse.FromString(raw)


def _methods_of(service: str, files: list[bytes]) -> list[str] | None:
    from google.protobuf import descriptor_pb2

    for blob in files:
        proto = descriptor_pb2.FileDescriptorProto.FromString(blob)
        for svc in proto.service:
            if f"{proto.package}.{svc.name}".lstrip(".") == service:
                return [f"/{service}/{m.name}" for m in svc.method]
    return None


@req("HARD-GRPC-004")
def test_every_advertised_grpc_method_has_an_access_row(qdrant: Callable[[str], Any]) -> None:
    server = qdrant("api-key")
    metadata = list(server.key_headers().items())
    client = server.grpc()
    outcome, listed = _ask(client, metadata, list_services="")
    if listed is None or not listed.HasField("list_services_response"):
        inconclusive(f"reflection with the manage key gave no service list: {outcome.summary()}")
    services = [s.name for s in listed.list_services_response.service]
    note(f"reflection advertises: {', '.join(services)}")
    known = {row.grpc for row in grpc_rows() if row.grpc}
    uncovered: list[str] = []
    for service in services:
        _, found = _ask(client, metadata, file_containing_symbol=service)
        files = list(found.file_descriptor_response.file_descriptor_proto) if found is not None else []
        methods = _methods_of(service, files)
        if methods is None:
            if not any(path.startswith(f"/{service}/") for path in known):
                uncovered.append(f"{service} (service; no descriptor given)")
            continue
        uncovered += [m for m in methods if m not in known]
    assert not uncovered, (
        f"uncovered: the target exposes gRPC methods the access table has no row for, so no check here "
        f"looked at their authentication: {', '.join(uncovered)}")

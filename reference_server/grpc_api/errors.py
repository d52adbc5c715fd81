"""gRPC refusals, and how data-plane errors map onto status codes (spec §3)."""

from __future__ import annotations

import grpc

from ..data_errors import BadRequest, DataPlaneError, Forbidden, NotFound, NotReady, Unsupported


class GrpcError(Exception):
    """Ends a call with ``code`` and ``message``. Messages never carry credentials."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def unknown_method(path: str) -> GrpcError:
    return GrpcError(grpc.StatusCode.UNIMPLEMENTED, f"Method not found: {path}")


def not_implemented(path: str, why: str = "not implemented by this server") -> GrpcError:
    return GrpcError(grpc.StatusCode.UNIMPLEMENTED, f"{path}: {why}")


def from_data_plane(exc: DataPlaneError) -> GrpcError:
    if isinstance(exc, NotFound):
        return GrpcError(grpc.StatusCode.NOT_FOUND, exc.message)
    if isinstance(exc, Forbidden):
        return GrpcError(grpc.StatusCode.PERMISSION_DENIED, exc.message)
    if isinstance(exc, BadRequest):
        return GrpcError(grpc.StatusCode.INVALID_ARGUMENT, exc.message)
    if isinstance(exc, Unsupported):
        return GrpcError(grpc.StatusCode.UNIMPLEMENTED, exc.message)
    if isinstance(exc, NotReady):
        return GrpcError(grpc.StatusCode.UNAVAILABLE, exc.message)
    return GrpcError(grpc.StatusCode.INTERNAL, exc.message)


def status_code(name: str) -> grpc.StatusCode:
    """``"UNAUTHENTICATED"`` → ``grpc.StatusCode.UNAUTHENTICATED``."""
    return grpc.StatusCode[name]

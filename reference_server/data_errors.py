"""The data plane's refusals; ``message`` is what Qdrant would send (REST ``status.error``, gRPC message)."""

from __future__ import annotations


class DataPlaneError(Exception):
    """A refusal of the data plane; ``message`` is what Qdrant would send."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DataPlaneError):
    """A collection, alias or point that does not exist."""


class BadRequest(DataPlaneError):
    """Input Qdrant would refuse with 400 / INVALID_ARGUMENT."""


class InvalidBody(BadRequest):
    """A body that does not have the shape of the request model (REST 422 in Qdrant)."""


class Unsupported(DataPlaneError):
    """An operation the in-memory backend cannot perform."""


class NotReady(DataPlaneError):
    """qdrant_client did not finish loading in time."""


def collection_not_found(name: str) -> NotFound:
    return NotFound(f"Not found: Collection `{name}` doesn't exist!")


class Forbidden(DataPlaneError):
    """A refusal that is not about the caller's key (REST 403 JSON / gRPC PERMISSION_DENIED), spec §10."""

"""Reading the scalar fields of messages we have no class for.

``qdrant.StorageRead``, ``qdrant.ShardSnapshots`` and ``qdrant.Quotas`` are not in
qdrant-client's stubs and we do not vendor Qdrant's .proto files. Their requests
start with plain fields (collection name, shard id, path), which protobuf's
unknown-field set exposes when the bytes are parsed as an empty message.
"""

from __future__ import annotations

from google.protobuf import empty_pb2, unknown_fields
from google.protobuf.message import DecodeError

_VARINT = 0
_LENGTH_DELIMITED = 2


class WireError(ValueError):
    """The bytes are not a protobuf message."""


def scalar_fields(raw: bytes) -> dict[int, int | bytes]:
    """Field number → first value, for varint and length-delimited fields."""
    try:
        parsed = empty_pb2.Empty.FromString(raw)
    except DecodeError as exc:
        raise WireError(f"failed to decode Protobuf message: {exc}") from None
    found: dict[int, int | bytes] = {}
    for field in unknown_fields.UnknownFieldSet(parsed):
        if field.field_number in found:
            continue
        if field.wire_type in (_VARINT, _LENGTH_DELIMITED):
            found[field.field_number] = field.data
    return found


def text_field(fields: dict[int, int | bytes], number: int) -> str:
    value = fields.get(number, b"")
    if not isinstance(value, bytes):
        raise WireError(f"field {number} is not a string")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise WireError(f"field {number} is not valid UTF-8") from None


def int_field(fields: dict[int, int | bytes], number: int) -> int:
    value = fields.get(number, 0)
    if not isinstance(value, int):
        raise WireError(f"field {number} is not an integer")
    return value

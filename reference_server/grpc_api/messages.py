"""Request and response classes by method path, from the shipped descriptors.

Loaded on first use: importing qdrant_client's stubs pulls in the whole client
(about a second), which must stay off the server's start-up path. Callers wait
for :meth:`DataPlane.wait_ready` first, so the import is already done by then.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from google.protobuf import message_factory
from google.protobuf.message import Message

from .access import SHIPPED_SERVICE_MODULES, split_path


@functools.cache
def _method_descriptor(path: str) -> Any:
    parts = split_path(path)
    if parts is None or parts[0] not in SHIPPED_SERVICE_MODULES:
        return None
    module = importlib.import_module(SHIPPED_SERVICE_MODULES[parts[0]])
    service = module.DESCRIPTOR.services_by_name.get(parts[0].rsplit(".", 1)[1])
    if service is None:
        return None
    return service.methods_by_name.get(parts[1])


def has_messages(path: str) -> bool:
    return _method_descriptor(path) is not None


def request_class(path: str) -> type[Message]:
    return message_factory.GetMessageClass(_method_descriptor(path).input_type)


def response_class(path: str) -> type[Message]:
    return message_factory.GetMessageClass(_method_descriptor(path).output_type)



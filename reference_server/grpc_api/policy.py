"""Who gets through the public gRPC port: authentication, whitelist, per-method access.

Each decision is one small method of :class:`GrpcPolicy`, so a self-test can
swap a single behaviour (a subclass, or a different policy object passed to
:func:`reference_server.grpc_api.server.start_grpc_server`) without touching
routing or the data plane. The catalog's faults are switched by the policy's
:class:`~reference_server.fault_policy.FaultPolicy`, which the handler asks too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, final

from .. import rbac
from ..audit import Principal
from ..auth import ANONYMOUS, MSG_WRITE_DENIED_1_8, Access, AuthFailure, AuthKeys, Grant
from ..fault_policy import NO_FAULTS, FaultPolicy
from ..jwt_auth import CollectionScope, ValueLookup
from ..settings import Settings
from ..versioning import Emulation
from . import access as table
from . import wire

# Exact paths that skip authentication from v1.15.1 (spec §3).
HEALTH_WHITELIST = frozenset({"/qdrant.Qdrant/HealthCheck", "/grpc.health.v1.Health/Check"})

API_KEY_METADATA = "api-key"
AUTHORIZATION_METADATA = "authorization"


def first_value(metadata: Iterable[tuple[str, str | bytes]], name: str) -> str | None:
    """The first value of ``name`` (metadata keys arrive lower-case), ``None`` if absent."""
    for key, value in metadata:
        if key == name:
            if isinstance(value, bytes):
                try:
                    return value.decode("ascii")
                except UnicodeDecodeError:
                    return None
            return value
    return None


@dataclass(frozen=True)
class GrpcPolicy:
    keys: AuthKeys | None
    emulation: Emulation
    #: The server's fault switches (self-tests only); :data:`NO_FAULTS` is the faithful policy.
    faults: FaultPolicy = NO_FAULTS

    @classmethod
    def from_settings(cls, settings: Settings, keys: AuthKeys | None, faults: FaultPolicy = NO_FAULTS) -> GrpcPolicy:
        """The policy of ``settings``'s version, with the server's fault switches."""
        return cls(keys, Emulation.of(settings.version), faults)

    def is_whitelisted(self, path: str) -> bool:
        listed = self.emulation.grpc_health_whitelisted and path in HEALTH_WHITELIST
        return listed and not self.faults.active("grpc-health-requires-key")  # fault seam, asked where it matters

    @final
    def authenticate(self, path: str, metadata: Iterable[tuple[str, str | bytes]], *,
                     lookup: ValueLookup | None = None) -> Grant:
        """The access :meth:`identify` grants (a convenience; the server never calls it).

        Final on purpose: the authentication seam is :meth:`identify` alone, so an
        override here would silently change nothing.
        """
        return self.identify(path, metadata, lookup=lookup)[0]

    def identify(self, path: str, metadata: Iterable[tuple[str, str | bytes]], *,
                 lookup: ValueLookup | None = None) -> tuple[Grant, Principal | None]:
        """The caller's access and audit identity (``None``: whitelisted, not audited), or :class:`AuthFailure`.

        Runs before routing, for every path (calls and reflection streams alike); the one
        seam a replacement policy overrides to change who gets in.
        """
        if self.keys is None:
            return Access.MANAGE, ANONYMOUS
        if self.is_whitelisted(path):
            return Access.MANAGE, None
        if self.faults.active("grpc-no-auth") or (  # fault seams, conditions first (fault reach)
                not self.is_served(path) and self.faults.active("grpc-unknown-method-unimplemented")) or (
                path == "/qdrant.Points/Count" and self.faults.active("grpc-method-unauthenticated")):
            return Access.MANAGE, ANONYMOUS
        items = list(metadata)
        return self.keys.identify(
            first_value(items, API_KEY_METADATA), first_value(items, AUTHORIZATION_METADATA), lookup=lookup
        )

    def is_served(self, path: str) -> bool:
        """Does the emulated version have this method at all?"""
        parts = table.split_path(path)
        if parts is None or table.required_access(path) is None or parts[0] in table.NOT_PUBLIC:
            return False
        since = table.SERVICE_SINCE.get(parts[0])
        return since is None or self.emulation.at_least(since)

    def required_access(self, path: str) -> Access:
        found = table.required_access(path)
        return Access.MANAGE if found is None else found

    def authorize(self, path: str, granted: Grant, request: Any = None, raw: bytes = b"") -> None:
        """Raise the version's write-denied failure when ``granted`` is not enough.

        A JWT collection list is judged on the decoded ``request`` (its collection and
        cross-collection references) or, for services without stubs, the ``raw`` bytes.
        """
        if path == "/qdrant.Collections/ListAliases" and self.faults.active("route-answers-501"):  # probe seam
            raise AuthFailure(501, "UNIMPLEMENTED", "Not implemented (self-test probe route-answers-501)")
        if isinstance(granted, CollectionScope):
            self._authorize_scope(path, granted, request, raw)
            return
        if granted is Access.READ and self.required_access(path) is Access.READ and (  # fault seam
                self.faults.active("ro-refused-for-reads")):
            assert self.keys is not None
            raise self.keys.write_denied()
        if path == "/qdrant.Collections/Delete" and granted is not Access.MANAGE and (  # fault seam
                self.faults.active("ro-write-grpc-method")):
            return
        if self.required_access(path) is Access.MANAGE and granted is not Access.MANAGE:
            assert self.keys is not None  # READ is only ever granted by a key
            if self.faults.active("ro-legacy-refusal-message"):  # fault seam
                raise AuthFailure(403, "PERMISSION_DENIED", MSG_WRITE_DENIED_1_8)
            raise self.keys.write_denied()

    def _authorize_scope(self, path: str, scope: CollectionScope, request: Any, raw: bytes) -> None:
        if path == "/qdrant.Points/Upsert" and self.faults.active("jwt-grpc-rbac-skipped"):  # fault seam
            return
        kind = rbac.kind_of_grpc(path)
        collection: str | None = None
        references: set[str] = set()
        if request is not None:
            collection = rbac.message_collection(request)
            references = rbac.message_references(request)
        elif raw:
            try:  # services without stubs start with the collection name (field 1)
                collection = wire.text_field(wire.scalar_fields(raw), 1) or None
            except wire.WireError:
                collection = None
        message = rbac.check(scope, kind, collection, references, faults=self.faults)
        if message is not None:
            raise AuthFailure(403, "PERMISSION_DENIED", message)


__all__ = ["HEALTH_WHITELIST", "AuthFailure", "GrpcPolicy", "first_value"]

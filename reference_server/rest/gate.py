"""The auth middleware: whitelist, credential extraction, and the access check.

Spec §2.2-§2.5 and §4. Each decision is one small method, so a fault can
replace exactly one of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import rbac
from ..audit import Principal
from ..auth import (
    ANONYMOUS,
    MSG_GLOBAL_MANAGE,
    MSG_WRITE_DENIED_1_8,
    Access,
    AuthFailure,
    AuthKeys,
    Grant,
)
from ..fault_policy import FaultPolicy
from ..jwt_auth import CollectionScope, ValueLookup
from ..versioning import Emulation
from .responses import Response, bare, error, plain
from .router import Router
from .routes import WHITELIST_EXACT, WHITELIST_PREFIX, Route
from .web_ui import WEB_UI_PATH, claims

Headers = Sequence[tuple[bytes, bytes]]


class NeedsLookup(Exception):
    """A ``value_exists`` claim needs the data plane: decide this request off the event loop."""


def _deferred(collection: str, matches: Sequence[tuple[str, Any]]) -> bool:
    raise NeedsLookup


@dataclass(frozen=True)
class Admission:
    """What the auth middleware decided: access and audit identity, or a refusal (and its failure)."""

    grant: Grant
    principal: Principal | None
    refusal: Response | None = None
    failure: AuthFailure | None = None


def first_header(headers: Headers, name: bytes) -> bytes | None:
    """The first value of ``name`` (header names arrive lower-cased)."""
    for key, value in headers:
        if key == name:
            return value
    return None


def visible_ascii(value: bytes | None) -> str | None:
    """``value`` as text, or ``None`` when actix's ``to_str()`` would fail."""
    if value is None:
        return None
    if all(32 <= b < 127 or b == 9 for b in value):
        return value.decode("ascii")
    return None


class Gate:
    """Decides, per request, whether auth applies and what the caller may do."""

    def __init__(self, keys: AuthKeys | None, emulation: Emulation, router: Router,
                 lookup: ValueLookup | None = None, *, web_ui: bool = False, faults: FaultPolicy) -> None:
        self.keys = keys
        self.faults = faults  # fault switches (self-tests only), asked at the seams below
        self.emulation = emulation
        self.router = router
        self.lookup = lookup  # serves JWT value_exists claims (blocks: call admit off the event loop)
        #: ``/dashboard`` is whitelisted only while the Web UI is served (spec §2.5).
        self.web_ui = web_ui

    # -- whitelist (spec §2.5) -------------------------------------------------

    def _listed(self, path: str) -> bool:
        em = self.emulation
        if path in ("/healthz", "/livez") and self.faults.active("health-requires-key"):  # fault seam
            return False
        if path in WHITELIST_EXACT:
            return path != "/" or em.root_whitelisted
        if path == "/healthz" or path.startswith(WHITELIST_PREFIX):
            return em.has_health_endpoints
        return False

    def whitelisted(self, path: str, route_path: str) -> bool:
        """v1.18.2+: the matched route pattern; before: the normalised raw path, by prefix."""
        by_prefix = self._whitelisted_by_prefix(path)
        if not self.emulation.route_based_whitelist:
            return by_prefix
        by_route = self._whitelisted_by_route(route_path)
        # Fault seams, asked only where they change the answer (the kill test's reach: tests/fault_reach.py).
        if by_prefix != by_route and (self.faults.active("whitelist-raw-prefix")
                                      or self.faults.active("dot-segment-bypass")):
            return by_prefix
        return by_route

    def _whitelisted_by_route(self, route_path: str) -> bool:
        if self.web_ui and claims(route_path):
            return True
        pattern = self.router.match_pattern(route_path)
        return pattern is not None and pattern in WHITELIST_EXACT + WHITELIST_PREFIX and self._listed(pattern)

    def _whitelisted_by_prefix(self, path: str) -> bool:
        if self.web_ui and path.startswith(WEB_UI_PATH):
            return True
        if path in WHITELIST_EXACT:
            return self._listed(path)
        return any(path.startswith(prefix) for prefix in WHITELIST_PREFIX) and self._listed(path)

    # -- credentials (spec §2.2) ---------------------------------------------------

    @staticmethod
    def credentials(headers: Headers) -> tuple[str | None, str | None]:
        return (
            visible_ascii(first_header(headers, b"api-key")),
            visible_ascii(first_header(headers, b"authorization")),
        )

    def admit(self, method: str, path: str, route_path: str, headers: Headers) -> Grant | Response:
        """The caller's access, or the middleware's refusal."""
        admitted = self.admission(method, path, route_path, headers)
        return admitted.refusal if admitted.refusal is not None else admitted.grant

    def admission(self, method: str, path: str, route_path: str, headers: Headers, *,
                  defer_lookup: bool = False) -> Admission:
        """:meth:`admit`, with who the caller is for the audit log (``None``: no access check follows).

        ``defer_lookup``: raise :class:`NeedsLookup` instead of reading the data plane for a
        ``value_exists`` claim, so the caller can run only those requests off the event loop.
        """
        if self.keys is None:
            return Admission(Access.MANAGE, ANONYMOUS)
        if self.whitelisted(path, route_path):
            return Admission(Access.MANAGE, None)
        if self._fault_skips_auth(method, route_path):
            return Admission(Access.MANAGE, ANONYMOUS)
        api_key, authorization = self.credentials(headers)
        try:
            access, principal = self.keys.identify(api_key, authorization,
                                                   lookup=_deferred if defer_lookup else self.lookup)
        except AuthFailure as failure:
            refusal = self._fault_refusal(failure, api_key, authorization) or bare(failure.status, failure.message)
            return Admission(Access.MANAGE, None, refusal, failure)
        if access is Access.READ and not self.emulation.at_least("1.9.0"):
            legacy = self._legacy_read_only(method, route_path)
            if isinstance(legacy, Response):
                return Admission(Access.MANAGE, None, legacy)
        return Admission(access, principal)

    def _fault_skips_auth(self, method: str, route_path: str) -> bool:
        """Fault seams: requests that wrongly skip authentication (never in a clean run)."""
        # Each condition first: a seam is asked only where it would change the answer (fault reach).
        active = self.faults.active
        return ((self.router.match_pattern(route_path) is None and active("unknown-path-404"))
                or (method == "OPTIONS" and active("options-skips-auth"))
                or (method == "GET" and route_path == "/telemetry" and active("rest-route-unauthenticated")))

    def _fault_refusal(self, failure: AuthFailure, api_key: str | None, authorization: str | None) -> Response | None:
        """Fault seams: a refusal in the wrong shape (never in a clean run)."""
        if self.faults.active("unauthenticated-403"):
            return bare(403, failure.message)
        if self.faults.active("wrong-401-body") and failure.status == 401:  # the 403s keep their bodies
            return bare(failure.status, "Unauthorized")
        if self.faults.active("key-echo-rest"):
            refusal = bare(failure.status, failure.message)
            refusal.headers.append((b"x-rejected-credential", (api_key or authorization or "").encode("latin-1")))
            return refusal
        return None

    def _legacy_read_only(self, method: str, route_path: str) -> Access | Response:
        """v1.7.0-v1.8.4: the RO key passed by method and path, in the middleware (spec §4)."""
        match = self.router.resolve(method, route_path)
        if method == "GET" or (match is not None and match.route.access != "manage"):
            return Access.READ
        assert self.keys is not None
        return bare(403, self.keys.write_denied().message)

    # -- access check inside the handler (spec §4) ----------------------------------

    def refuse(self, access: Grant, route: Route, started: float, params: dict[str, str] | None = None,
               body: Any = None) -> Response | None:
        """``None`` when ``access`` may call ``route``; else Qdrant's 403 in the route's format."""
        message = self.check(access, route, params, body)
        if message is None:
            return None
        return plain(403, message) if route.refusal == "text" else error(403, message, started)

    def check(self, access: Grant, route: Route, params: dict[str, str] | None = None,
              body: Any = None) -> str | None:
        """``None`` when ``access`` may call ``route``; else Qdrant's refusal message."""
        if isinstance(access, CollectionScope):
            refs = rbac.json_references(body) if body is not None else set()
            return rbac.check(access, rbac.kind_of_rest(route.label), (params or {}).get("collection_name"), refs,
                              faults=self.faults)
        # fault seams, each asked only where it would change the answer (fault reach)
        if access is Access.READ and route.access == "read" and self.faults.active("ro-refused-for-reads"):
            return MSG_GLOBAL_MANAGE
        if (route.method == "DELETE" and route.path == "/collections/{collection_name}"
                and access is not Access.MANAGE and self.faults.active("ro-write-rest-route")):
            return None
        if route.access != "manage" or access is Access.MANAGE:
            return None
        if not self.emulation.at_least("1.9.0"):
            return None  # the legacy middleware already decided
        message = self.keys.write_denied().message if self.keys is not None else "Forbidden"
        if self.faults.active("ro-legacy-refusal-message"):  # fault seam
            message = MSG_WRITE_DENIED_1_8
        return message

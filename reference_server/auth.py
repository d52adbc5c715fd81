"""Credentials → access, as Qdrant decides it (spec §2.1-§2.4, §3, §4, §9).

Transport-neutral: the REST app and the gRPC server both pass the raw
``api-key`` and ``authorization`` values they received and map the result
onto their own wire format. Keys are compared in constant time and never
appear in any message.
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass, field
from typing import Any

from .audit import Principal
from .fault_policy import NO_FAULTS, FaultPolicy
from .jwt_auth import (
    MSG_STATEFUL,
    CollectionScope,
    JwtForbidden,
    JwtInvalidClaims,
    JwtParser,
    NotAJwt,
    ValueLookup,
    check_value_exists,
)
from .settings import Settings
from .versioning import Emulation

MSG_MISSING = "Must provide an API key or an Authorization bearer token"
MSG_INVALID = "Invalid API key or JWT"
MSG_INVALID_1_8 = "Invalid API key or JWT token"
MSG_LEGACY = "Invalid api-key"
MSG_GLOBAL_MANAGE = "Forbidden: Global manage access is required"
MSG_WRITE_DENIED_1_8 = "Write access denied"

BEARER_PREFIX = "Bearer "
BY_KEY = Principal("ApiKey")
#: No credential checked: authentication off, or a whitelisted route.
ANONYMOUS = Principal("None")


class Access(enum.Enum):
    """What an authenticated principal may do: Qdrant's global ``r`` or ``m``."""

    READ = "r"
    MANAGE = "m"


#: What authentication grants: global access, or a JWT's per-collection list (spec §5.2).
Grant = Access | CollectionScope


@dataclass(frozen=True)
class AuthFailure(Exception):
    """A refusal, with the HTTP status, gRPC code and message of the emulated version."""

    status: int
    grpc_code: str
    message: str

    def __str__(self) -> str:
        return f"{self.status} {self.message}"


def _ct_equal(presented: str, key: str) -> bool:
    return hmac.compare_digest(presented.encode("utf-8"), key.encode("utf-8"))


@dataclass(frozen=True)
class AuthKeys:
    """The configured keys; ``None`` entries are unset."""

    manage: str | None
    alt: str | None
    read_only: str | None
    emulation: Emulation
    jwt_rbac: bool = False
    #: The server's fault switches (self-tests only): the credential seams below ask them.
    faults: FaultPolicy = NO_FAULTS
    #: ``jwt-value-exists-cached``: the first answer to each ``value_exists`` claim, kept forever.
    value_cache: dict[tuple[str, tuple[tuple[str, Any], ...]], bool] = field(
        default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, faults: FaultPolicy = NO_FAULTS) -> AuthKeys | None:
        """The key set, or ``None`` when authentication is off (spec §2.1, §1.4)."""
        emulation = Emulation.of(settings.version)
        svc = settings.service

        def usable(value: str | None) -> str | None:
            if value is None:
                return None
            if value == "" and emulation.empty_key_is_unset and not faults.active("empty-key-kept"):  # fault seam
                return None
            return value

        manage = usable(svc.api_key)
        alt = usable(svc.alt_api_key) if emulation.has_alt_key else None
        read_only = usable(svc.read_only_api_key) if emulation.has_read_only_key else None
        if manage is None and alt is None and read_only is None:
            return None
        jwt_rbac = settings.service.jwt_rbac and emulation.at_least("1.9.0")
        return cls(manage=manage, alt=alt, read_only=read_only, emulation=emulation, jwt_rbac=jwt_rbac,
                   faults=faults)

    # -- refusals ---------------------------------------------------------

    def _unauthenticated(self, message: str) -> AuthFailure:
        em = self.emulation
        if em.unauthenticated_is_401:
            return AuthFailure(401, "UNAUTHENTICATED", message)
        if em.at_least("1.8.2"):
            return AuthFailure(403, "PERMISSION_DENIED", message)
        return AuthFailure(403, "PERMISSION_DENIED", MSG_LEGACY)

    def missing(self) -> AuthFailure:
        return self._unauthenticated(MSG_MISSING)

    def invalid(self) -> AuthFailure:
        em = self.emulation
        if not em.unauthenticated_is_401 and em.at_least("1.8.2"):
            return self._unauthenticated(MSG_INVALID_1_8)
        return self._unauthenticated(MSG_INVALID)

    def write_denied(self) -> AuthFailure:
        """What a read-only principal gets for a write (spec §4)."""
        em = self.emulation
        if em.at_least("1.9.0"):
            return AuthFailure(403, "PERMISSION_DENIED", MSG_GLOBAL_MANAGE)
        if em.at_least("1.8.2"):
            return AuthFailure(403, "PERMISSION_DENIED", MSG_WRITE_DENIED_1_8)
        return AuthFailure(403, "PERMISSION_DENIED", MSG_LEGACY)

    # -- the check ----------------------------------------------------------

    def presented_credential(self, api_key: str | None, authorization: str | None) -> str | None:
        """The credential Qdrant reads: ``api-key`` wins, even empty (spec §2.2)."""
        bearer_ok = authorization is not None and self.emulation.has_bearer and authorization.startswith(BEARER_PREFIX)
        if authorization is not None:  # fault seam, asked only where it changes the answer (fault reach)
            loose = authorization[: len(BEARER_PREFIX)].lower() == BEARER_PREFIX.lower()
            if loose != bearer_ok and self.faults.active("bearer-case-insensitive"):
                bearer_ok = loose
        if api_key is not None and not (bearer_ok and self.faults.active("bearer-overrides-api-key")):  # fault seam
            return api_key
        if bearer_ok:
            assert authorization is not None
            return authorization[len(BEARER_PREFIX):]
        return None

    def authenticate(self, api_key: str | None, authorization: str | None, *,
                     lookup: ValueLookup | None = None) -> Grant:
        """Return the caller's access or raise :class:`AuthFailure`.

        ``api_key`` and ``authorization`` are the first values of those headers
        (``None`` when absent or not visible ASCII). ``lookup`` serves JWT
        ``value_exists`` claims; without it such tokens are refused.
        """
        return self.identify(api_key, authorization, lookup=lookup)[0]

    def identify(self, api_key: str | None, authorization: str | None, *,
                 lookup: ValueLookup | None = None) -> tuple[Grant, Principal]:
        """:meth:`authenticate`, plus what the audit log records about the caller (spec §10)."""
        credential = self.presented_credential(api_key, authorization)
        if credential is None:
            raise self.missing()
        if credential == "" and self.faults.active("empty-api-key-accepted"):  # fault seam
            return Access.MANAGE, BY_KEY
        # Compare against every configured key so the time taken does not tell
        # which one matched.
        manage_ok = self.manage is not None and _ct_equal(credential, self.manage)
        alt_ok = self.alt is not None and _ct_equal(credential, self.alt)
        ro_ok = self.read_only is not None and _ct_equal(credential, self.read_only)
        # fault seams, each asked only where it would change the answer (fault reach)
        length_ok = self.manage is not None and len(credential) == len(self.manage)
        if length_ok != manage_ok and self.faults.active("key-length-compare"):  # only the length is compared
            manage_ok = length_ok
        if alt_ok and self.faults.active("alt-key-ignored"):
            alt_ok = False
        if manage_ok or alt_ok:
            return Access.MANAGE, BY_KEY
        if ro_ok:
            return Access.READ, BY_KEY
        if self.jwt_rbac:
            return self._from_jwt(credential, lookup)
        raise self.invalid()

    # -- JWT RBAC (spec §5) ---------------------------------------------------------------

    def jwt_secrets(self) -> list[str]:
        """Primary then alternate secret; the read-only key is never one (spec §5.1, §5.4)."""
        found = [key for key in (self.manage, self.alt) if key]
        if self.faults.active("jwt-ro-key-secret") and self.read_only:  # fault seam
            found.append(self.read_only)
        return found

    def _from_jwt(self, token: str, lookup: ValueLookup | None) -> tuple[Grant, Principal]:
        first: Exception | None = None
        for secret in self.jwt_secrets():
            try:
                claims = JwtParser(secret, self.emulation, self.faults).decode(token)
            except (NotAJwt, JwtForbidden, JwtInvalidClaims) as exc:
                first = first or exc
                continue
            if claims.value_exists is not None:
                cache = self.value_cache if self.faults.active("jwt-value-exists-cached") else None  # fault seam
                verdict = ("unauthorized" if lookup is None
                           else check_value_exists(claims.value_exists, lookup, cache=cache))
                if verdict == "forbidden":
                    raise AuthFailure(403, "PERMISSION_DENIED", MSG_STATEFUL)
                if verdict is not None:
                    raise AuthFailure(401, "UNAUTHENTICATED", MSG_STATEFUL)
            who = Principal("Jwt", claims.subject)
            if claims.access == "m":
                return Access.MANAGE, who
            if claims.access == "r":
                return Access.READ, who
            assert isinstance(claims.access, CollectionScope)
            return claims.access, who
        if isinstance(first, JwtForbidden):
            raise AuthFailure(403, "PERMISSION_DENIED", first.message)
        if isinstance(first, JwtInvalidClaims):
            raise AuthFailure(401, "UNAUTHENTICATED", first.message)
        raise self.invalid()

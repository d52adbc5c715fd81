"""JWT RBAC tokens, decoded the way Qdrant's ``JwtParser`` does it (spec §5.1, §5.2).

Hand-written on ``hmac`` rather than on a JWT library on purpose: Qdrant
(jsonwebtoken) sorts failures into exactly two classes, and which class a
token lands in decides 403 or 401. A library with a different decoding order
(PyJWT checks ``iat``, warns on short keys, orders claim checks its own way)
would move tokens between those classes. The order here is jsonwebtoken's:
shape and header → algorithm in the allowed list → signature → claim
deserialisation → ``exp`` with 30 s leeway; then Qdrant's own claim validation.

Nothing here logs or formats a token or a secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .fault_policy import FaultPolicy
from .versioning import Emulation

LEEWAY_S = 30
#: jsonwebtoken's ``Algorithm`` names: a header naming anything else does not deserialise.
KNOWN_ALGORITHMS = frozenset({"HS256", "HS384", "HS512", "ES256", "ES384", "RS256", "RS384", "RS512",
                              "PS256", "PS384", "PS512", "EdDSA"})
MSG_STATEFUL = "Invalid JWT, stateful validation failed"
MSG_PAYLOAD_DEPRECATED = "Payload constraint is deprecated and no longer supported, use value_exists instead"


class NotAJwt(Exception):
    """Any jsonwebtoken error other than a bad signature or expiry: "Invalid API key or JWT" (401)."""


@dataclass(frozen=True)
class JwtForbidden(Exception):
    """``InvalidSignature`` / ``ExpiredSignature``: 403 / PERMISSION_DENIED with the kind's name."""

    message: str


@dataclass(frozen=True)
class JwtInvalidClaims(Exception):
    """Claims that parse but fail Qdrant's validation: 401 / UNAUTHENTICATED with the validator's text."""

    message: str


@dataclass(frozen=True)
class CollectionScope:
    """A token's per-collection access list: ``(collection, "r" | "rw" | "prw")`` pairs."""

    entries: tuple[tuple[str, str], ...]

    def mode(self, collection: str) -> str | None:
        for name, mode in self.entries:
            if name == collection:
                return mode
        return None

    @property
    def names(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.entries)


@dataclass(frozen=True)
class ValueExists:
    """The stateful claim: a point matching every (key, value) must exist in ``collection``."""

    collection: str
    matches: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Claims:
    """What a valid token grants. ``access`` is ``"r"``, ``"m"`` or a :class:`CollectionScope`."""

    access: str | CollectionScope
    value_exists: ValueExists | None
    subject: str | None
    sub: str | None


class MissingCollection(Exception):
    """``value_exists`` names a collection that does not exist (403)."""


#: (collection, matches) → a matching point exists; raises :class:`MissingCollection`.
ValueLookup = Callable[[str, Sequence[tuple[str, Any]]], bool]


def _b64(segment: str) -> bytes:
    # jsonwebtoken decodes URL-safe base64 without padding; "=" or other alphabets are errors.
    if "=" in segment or "+" in segment or "/" in segment:
        raise NotAJwt("base64")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise NotAJwt("base64") from None


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise NotAJwt("json") from None
    if not isinstance(value, dict):
        raise NotAJwt("json")
    return value


def _u64(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
        raise NotAJwt("claim type")
    return value


def _opt_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise NotAJwt("claim type")


def _scalar(value: Any) -> Any:
    if isinstance(value, str | int | bool) and not isinstance(value, float):
        return value
    raise NotAJwt("claim type")


class JwtParser:
    """One HS256 secret (``service.api_key`` or ``alt_api_key``) and the emulated version."""

    def __init__(self, secret: str, emulation: Emulation, faults: FaultPolicy) -> None:
        self._secret = secret.encode("utf-8")
        self._em = emulation
        self._faults = faults

    def decode(self, token: str, *, now: float | None = None) -> Claims:
        parts = token.split(".")
        if len(parts) != 3:
            raise NotAJwt("shape")
        header = _json_object(_b64(parts[0]))
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in KNOWN_ALGORITHMS:
            if not (alg == "none" and self._faults.active("jwt-alg-none-accepted")):  # fault seam
                raise NotAJwt("header")
        elif alg != "HS256":
            raise NotAJwt("algorithm")
        signature = _b64(parts[2])
        if alg != "none":
            expected = hmac.new(self._secret, f"{parts[0]}.{parts[1]}".encode("ascii", "replace"),
                                hashlib.sha256).digest()
            if not hmac.compare_digest(expected, signature):
                raise JwtForbidden("InvalidSignature")
        raw = _json_object(_b64(parts[1]))
        claims = self._claims(raw)
        exp = raw.get("exp")
        if exp is not None and not self._faults.active("jwt-exp-ignored"):  # fault seam
            leeway = 6 * 3600 if self._faults.active("jwt-leeway-hours") else LEEWAY_S  # fault seam
            if exp < (time.time() if now is None else now) - leeway:
                raise JwtForbidden("ExpiredSignature")
        self._validate(raw)
        return claims

    # -- serde: wrong types are deserialisation errors ("not a JWT") -----------------------

    def _claims(self, raw: dict[str, Any]) -> Claims:
        if raw.get("exp") is not None:
            _u64(raw["exp"])
        sub = _opt_str(raw.get("sub"))
        subject = _opt_str(raw.get("subject")) if self._em.at_least("1.17.0") else None
        access: str | CollectionScope = "m"  # absent: full manage access (spec §5.2)
        if "access" in raw:
            access = self._access(raw["access"])
        value_exists = self._value_exists(raw.get("value_exists"))
        return Claims(access=access, value_exists=value_exists, subject=subject, sub=sub)

    def _access(self, value: Any) -> str | CollectionScope:
        if value in ("r", "m"):
            return str(value)
        if not isinstance(value, list):
            raise NotAJwt("access")
        modes = {"r", "rw", "prw"} if self._em.at_least("1.12.6") else {"r", "rw"}
        entries: list[tuple[str, str]] = []
        for item in value:
            if not isinstance(item, dict):
                raise NotAJwt("access entry")
            name, mode = item.get("collection"), item.get("access")
            if not isinstance(name, str) or mode not in modes:
                raise NotAJwt("access entry")
            payload = item.get("payload")
            if payload is not None and not isinstance(payload, dict):
                raise NotAJwt("payload")
            entries.append((name, str(mode)))
        return CollectionScope(tuple(entries))

    @staticmethod
    def _value_exists(value: Any) -> ValueExists | None:
        if value is None:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("collection"), str):
            raise NotAJwt("value_exists")
        matches = value.get("matches")
        if not isinstance(matches, list):
            raise NotAJwt("value_exists")
        pairs: list[tuple[str, Any]] = []
        for match in matches:
            if not isinstance(match, dict) or not isinstance(match.get("key"), str) or "value" not in match:
                raise NotAJwt("value_exists")
            pairs.append((match["key"], _scalar(match["value"])))
        return ValueExists(value["collection"], tuple(pairs))

    # -- Qdrant's validator: parses, but refused (401) --------------------------------------

    def _validate(self, raw: dict[str, Any]) -> None:
        access = raw.get("access")
        if not isinstance(access, list):
            return
        seen: set[str] = set()
        for item in access:
            name = item["collection"]
            if name in seen:
                raise JwtInvalidClaims(f"Collection `{name}` appears more than once in the access list")
            seen.add(name)
            if item.get("payload") is not None and self._em.at_least("1.16.0"):
                raise JwtInvalidClaims(MSG_PAYLOAD_DEPRECATED)


def check_value_exists(claim: ValueExists, lookup: ValueLookup, *,
                       cache: dict[tuple[str, tuple[tuple[str, Any], ...]], bool] | None = None) -> str | None:
    """``None`` when the claim holds; else ``"forbidden"`` (collection missing) or ``"unauthorized"``.

    ``cache`` is the fault seam ``jwt-value-exists-cached`` (the caller passes one only with that
    fault on): the first answer to a claim is kept forever, so deleting the point does not revoke it.
    """
    key = (claim.collection, claim.matches)
    if cache is not None and key in cache:  # fault seam: first answer kept forever
        return None if cache[key] else "unauthorized"
    try:
        found = lookup(claim.collection, claim.matches)
    except MissingCollection:
        return "forbidden"
    if cache is not None:
        cache[key] = found
    return None if found else "unauthorized"


def data_plane_lookup(data: Any) -> ValueLookup:
    """A :data:`ValueLookup` over the reference server's data plane (internal full access)."""

    def lookup(collection: str, matches: Sequence[tuple[str, Any]]) -> bool:
        from .data_plane import NotFound

        must = [{"key": key, "match": {"value": value}} for key, value in matches]
        try:
            result = data.scroll(collection, {"filter": {"must": must}, "limit": 1,
                                              "with_payload": False, "with_vector": False})
        except NotFound:
            raise MissingCollection(collection) from None
        return bool(result.points)

    return lookup

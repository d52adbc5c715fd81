"""JWT RBAC token validation (spec §5.1, §5.2, §2.4, §3): which tokens are accepted, and how others fail.

Each refusal test first shows its positive twin on the same server and call: a
token signed with the deployment's secret is accepted. Expiry is tested with
``exp`` minted in the past (10 min: far beyond the 30 s leeway, far inside an
"hours" leeway), never by sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from qdrant_conformance.fixtures import outcomes
from qdrant_conformance.fixtures.jwt_probe import definitely_allowed, inconclusive, probe, shown
from qdrant_conformance.fixtures.jwt_target import JwtTarget, jwt_target
from qdrant_conformance.fixtures.jwt_tokens import b64url, expires_in, fresh_secret, mint
from qdrant_conformance.fixtures.outcomes import Outcome, disabled, unsupported

pytestmark = pytest.mark.profiles("api-key", "jwt")

MSG_INVALID = "Invalid API key or JWT"
PROTOCOLS = ("rest", "grpc")


def _req(protocol: str, number: int) -> Any:
    return pytest.mark.requirement(f"JWT-{'REST' if protocol == 'rest' else 'GRPC'}-{number:03d}")


def _params(number: int, cases: tuple[str, ...] = ("",)) -> list[Any]:
    return [pytest.param(p, c, id=f"{p}-{c}" if c else p, marks=[_req(p, number), pytest.mark.protocol(p)])
            for p in PROTOCOLS for c in cases]


@pytest.fixture
def jwt(qdrant: Callable[[str], Any], target_options: Any) -> JwtTarget:
    return jwt_target(qdrant, target_options)


def _twin(jwt: JwtTarget, protocol: str, op: str = "read") -> None:
    """The positive twin: a properly signed manage token is accepted on the same call."""
    good = probe(jwt.server, protocol, mint({"access": "m"}, jwt.secret, name="jwt-twin"), op)
    if inconclusive(good):
        outcomes.inconclusive(f"a valid manage token got {shown(good)}")
    assert definitely_allowed(good), (
        f"positive twin: a manage token signed with the deployment's secret must be accepted; got {shown(good)}")


def _not_accepted(outcome: Outcome, what: str) -> None:
    assert not outcome.succeeded and not definitely_allowed(outcome), (
        f"{what} was accepted: {shown(outcome)} (expected a refusal)")


def _expect(outcome: Outcome, protocol: str, status: int, code: str, message: str | None, what: str) -> None:
    if protocol == "rest":
        ok = outcome.status == status and (message is None or outcome.text.strip() == message)
        want = f"HTTP {status}" + (f" with the body {message!r}" if message else "")
    else:
        ok = outcome.code == code and (message is None or outcome.text == message)
        want = code + (f" {message!r}" if message else "")
    assert ok, f"{what}: got {shown(outcome)}, expected {want}"


# -- signatures -------------------------------------------------------------------------------


@pytest.mark.parametrize(("protocol", "case"), _params(1))
def test_bad_signature_not_accepted(protocol: str, case: str, jwt: JwtTarget) -> None:
    _twin(jwt, protocol)
    _not_accepted(probe(jwt.server, protocol, mint({"access": "m"}, fresh_secret())),
                  "a manage token signed with an unknown secret")


@pytest.mark.parametrize(("protocol", "case"), _params(2))
def test_bad_signature_is_403_invalid_signature(protocol: str, case: str, jwt: JwtTarget) -> None:
    _twin(jwt, protocol)
    outcome = probe(jwt.server, protocol, mint({"access": "m"}, fresh_secret()))
    _expect(outcome, protocol, 403, "PERMISSION_DENIED", "InvalidSignature", "bad signature")


@pytest.mark.parametrize(("protocol", "case"), _params(3))
def test_read_only_key_is_not_a_secret(protocol: str, case: str, jwt: JwtTarget) -> None:
    if jwt.read_only_key is None:
        disabled("the target has no read-only key configured (give --read-only-key-file)")
    _twin(jwt, protocol, "manage")
    _not_accepted(probe(jwt.server, protocol, mint({"access": "m"}, jwt.read_only_key), "manage"),
                  "a manage token signed with the read-only key")


# -- expiry -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("protocol", "case"), _params(4))
def test_expired_token_not_accepted(protocol: str, case: str, jwt: JwtTarget) -> None:
    _twin(jwt, protocol)
    token = mint({"access": "m", "exp": expires_in(-600)}, jwt.secret)
    _not_accepted(probe(jwt.server, protocol, token), "a token expired 10 minutes ago")


@pytest.mark.parametrize(("protocol", "case"), _params(5))
def test_expiry_is_403_with_30s_leeway(protocol: str, case: str, jwt: JwtTarget) -> None:
    inside = probe(jwt.server, protocol, mint({"access": "m", "exp": expires_in(-5)}, jwt.secret))
    assert definitely_allowed(inside), (
        f"a token expired 5 s ago is inside Qdrant's 30 s leeway and must be accepted; got {shown(inside)}")
    outcome = probe(jwt.server, protocol, mint({"access": "m", "exp": expires_in(-600)}, jwt.secret))
    _expect(outcome, protocol, 403, "PERMISSION_DENIED", "ExpiredSignature", "expired token")


# -- algorithms and shapes ------------------------------------------------------------------------


def _alg_token(case: str, secret: str) -> str:
    claims = {"access": "m"}
    if case == "none":
        return mint(claims, None, alg="none")
    if case == "none-signed":
        return mint(claims, secret, alg="none", sign_as="HS256")
    if case == "rs256-hmac":
        return mint(claims, secret, alg="RS256", sign_as="HS256")  # algorithm confusion
    return mint(claims, secret, alg=case.upper())


@pytest.mark.parametrize(("protocol", "case"), _params(6, ("none", "none-signed")))
def test_alg_none_not_accepted(protocol: str, case: str, jwt: JwtTarget) -> None:
    _twin(jwt, protocol)
    _not_accepted(probe(jwt.server, protocol, _alg_token(case, jwt.secret)), f"an alg {case!r} manage token")


@pytest.mark.parametrize(("protocol", "case"), _params(7, ("hs384", "hs512", "rs256", "rs256-hmac")))
def test_other_algorithms_not_accepted(protocol: str, case: str, jwt: JwtTarget) -> None:
    _twin(jwt, protocol)
    _not_accepted(probe(jwt.server, protocol, _alg_token(case, jwt.secret)), f"a {case} manage token")


_MALFORMED = ("none", "hs512", "rs256-hmac", "two-segments", "bad-base64", "header-not-json",
              "access-rw-global", "exp-string", "collection-number")


def _malformed(case: str, secret: str) -> str:
    if case in ("none", "hs512", "rs256-hmac"):
        return _alg_token(case, secret)
    if case == "two-segments":
        return mint({"access": "m"}, secret, name="jwt-malformed").rsplit(".", 1)[0]
    head = b64url(b'{"alg":"HS256","typ":"JWT"}')
    if case == "bad-base64":  # validly signed, so the claims segment's decoding is what fails
        return mint(None, secret, segments=(head, b64url(b'{"access":"m"}') + "!"))
    if case == "header-not-json":
        return mint(None, secret, segments=(b64url(b"not-json"), b64url(b'{"access":"m"}')))
    claims: dict[str, Any] = {"access-rw-global": {"access": "rw"}, "exp-string": {"exp": "soon"},
                              "collection-number": {"access": [{"collection": 7, "access": "r"}]}}[case]
    return mint(claims, secret)


@pytest.mark.parametrize(("protocol", "case"), _params(8, _MALFORMED))
def test_not_a_jwt_is_401(protocol: str, case: str, jwt: JwtTarget) -> None:
    _twin(jwt, protocol)
    outcome = probe(jwt.server, protocol, _malformed(case, jwt.secret))
    _expect(outcome, protocol, 401, "UNAUTHENTICATED", MSG_INVALID, f"{case} token")


# -- Qdrant's claim validation ------------------------------------------------------------------


@pytest.mark.parametrize(("protocol", "case"), _params(9))
def test_payload_claim_refused(protocol: str, case: str, jwt: JwtTarget) -> None:
    null_payload = mint({"access": [{"collection": "qsc_any", "access": "r", "payload": None}]}, jwt.secret)
    twin = probe(jwt.server, protocol, null_payload)
    assert definitely_allowed(twin), f'"payload": null is absent and must be accepted; got {shown(twin)}'
    token = mint({"access": [{"collection": "qsc_any", "access": "r", "payload": {"user": "x"}}]}, jwt.secret)
    _expect(probe(jwt.server, protocol, token), protocol, 401, "UNAUTHENTICATED", None,
            "a token with a payload constraint")


@pytest.mark.parametrize(("protocol", "case"), _params(10))
def test_duplicate_collection_refused(protocol: str, case: str, jwt: JwtTarget) -> None:
    single = mint({"access": [{"collection": "qsc_any", "access": "r"}]}, jwt.secret)
    twin = probe(jwt.server, protocol, single)
    assert definitely_allowed(twin), f"a token listing one collection once must be accepted; got {shown(twin)}"
    token = mint({"access": [{"collection": "qsc_any", "access": "r"},
                             {"collection": "qsc_any", "access": "rw"}]}, jwt.secret)
    _expect(probe(jwt.server, protocol, token), protocol, 401, "UNAUTHENTICATED", None,
            "a token naming a collection twice")


@pytest.mark.parametrize(("protocol", "case"), _params(11))
def test_jwt_is_unknown_key_without_jwt_rbac(protocol: str, case: str, qdrant: Callable[[str], Any],
                                             target_options: Any) -> None:
    if not qdrant.capabilities.launches:
        disabled("needs a deployment with jwt_rbac off and a known manage key; an external target is one or the "
                 "other")
    server = qdrant("api-key")
    key = server.credentials.api_key
    twin = probe(server, protocol, None, headers=[("api-key", key)])
    assert definitely_allowed(twin), f"positive twin: the manage key must work; got {shown(twin)}"
    outcome = probe(server, protocol, mint({"access": "m"}, key))
    _expect(outcome, protocol, 401, "UNAUTHENTICATED", MSG_INVALID, "a signed token with jwt_rbac off")


@pytest.mark.parametrize(("protocol", "case"), _params(12, ("manage-key", "alt-key", "no-access-claim")))
def test_signed_tokens_accepted(protocol: str, case: str, jwt: JwtTarget) -> None:
    if case == "alt-key":
        if jwt.alt_secret is None:
            if jwt.external:
                disabled("the external target's alternate key is not known to the suite")
            unsupported(f"the alternate key signs tokens from Qdrant 1.17.0; the target is {jwt.server.version}")
        token = mint({"access": "m"}, jwt.alt_secret)
    elif case == "manage-key":
        token = mint({"access": "m"}, jwt.secret)
    else:
        token = mint({}, jwt.secret)
    refused = probe(jwt.server, protocol, mint({"access": "r"}, jwt.secret), "manage")
    _expect(refused, protocol, 403, "PERMISSION_DENIED", None, "negative twin: a global-read token on a manage call")
    outcome = probe(jwt.server, protocol, token, "manage")
    assert definitely_allowed(outcome), f"a {case} token must have manage access; got {shown(outcome)}"

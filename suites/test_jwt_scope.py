"""Collection tokens beyond the sweep: cross-collection references, listings, exact messages,
value_exists revocation, and SHOULD-level findings about what any Qdrant accepts (spec §5.2, §5.3).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from qdrant_conformance.fixtures.jwt_probe import definitely_allowed, probe, shown
from qdrant_conformance.fixtures.jwt_target import JwtTarget, jwt_target
from qdrant_conformance.fixtures.jwt_tokens import bearer, collection_claims, expires_in, mint
from qdrant_conformance.fixtures.outcomes import Outcome

pytestmark = pytest.mark.profiles("jwt")

PROTOCOLS = ("rest", "grpc")
MSG_STATEFUL = "Invalid JWT, stateful validation failed"
VECTOR = [0.1, 0.2, 0.3, 0.4]


def _params(number: int, cases: tuple[str, ...] = ("",)) -> list[Any]:
    out = []
    for p in PROTOCOLS:
        req = f"JWT-{'REST' if p == 'rest' else 'GRPC'}-{number:03d}"
        out += [pytest.param(p, c, id=f"{p}-{c}" if c else p,
                             marks=[pytest.mark.requirement(req), pytest.mark.protocol(p)]) for c in cases]
    return out


@dataclass
class Scope:
    jwt: JwtTarget
    main: str
    other: str

    def manage(self) -> list[tuple[str, str]]:
        return bearer(mint({"access": "m"}, self.jwt.secret, name="jwt-scope-m"))


@pytest.fixture(scope="module")
def _scope_names() -> Iterator[dict[str, Any]]:
    holder: dict[str, Any] = {}
    yield holder
    scope = holder.get("scope")
    if scope is not None:
        for name in (scope.main, scope.other):
            scope.jwt.server.rest().request("DELETE", f"/collections/{name}", headers=scope.manage())


@pytest.fixture
def scope(qdrant: Callable[[str], Any], target_options: Any, _scope_names: dict[str, Any]) -> Scope:
    jwt = jwt_target(qdrant, target_options)
    if "scope" not in _scope_names:
        stem = "qsc_jwt_" + uuid.uuid4().hex[:10]
        made = Scope(jwt, stem + "_main", stem + "_other")
        rest = jwt.server.rest()
        for name in (made.main, made.other):
            created = rest.request("PUT", f"/collections/{name}", headers=made.manage(),
                                   json={"vectors": {"size": 4, "distance": "Cosine"}})
            if not created.succeeded:
                raise RuntimeError(f"cannot create {name} with a manage token: {created.summary()}")
            points = [{"id": i, "vector": VECTOR, "payload": {"user": f"u{i}"}} for i in (1, 2)]
            added = rest.request("PUT", f"/collections/{name}/points?wait=true", headers=made.manage(),
                                 json={"points": points})
            if not added.succeeded:
                raise RuntimeError(f"cannot add points to {name}: {added.summary()}")
        _scope_names["scope"] = made
    return _scope_names["scope"]  # type: ignore[no-any-return]


def _recommend(s: Scope, protocol: str, token: str, case: str, lookup: str) -> Outcome:
    if protocol == "rest":
        path, body = {
            "recommend": ("/points/recommend", {"positive": [1], "limit": 1, "lookup_from": {"collection": lookup}}),
            "query": ("/points/query", {"query": {"recommend": {"positive": [1]}}, "limit": 1,
                                        "lookup_from": {"collection": lookup}}),
            "nested-prefetch": ("/points/query", {"prefetch": [{"prefetch": [{"query": {"recommend": {
                "positive": [1]}}, "lookup_from": {"collection": lookup}, "limit": 2}], "limit": 2}],
                "query": VECTOR, "limit": 1}),
        }[case]
        return s.jwt.server.rest().request("POST", f"/collections/{s.main}{path}", headers=bearer(token), json=body)
    from google.protobuf import json_format
    from qdrant_client import grpc as qg

    lookup_from = {"collectionName": lookup}
    if case == "recommend":
        msg: Any = json_format.ParseDict({"collectionName": s.main, "positive": [{"num": 1}], "limit": 1,
                                          "lookupFrom": lookup_from}, qg.RecommendPoints())
        return s.jwt.server.grpc().call("/qdrant.Points/Recommend", msg, metadata=bearer(token))
    rec = {"recommend": {"positive": [{"id": {"num": 1}}]}}
    body: dict[str, Any] = {"collectionName": s.main, "limit": 1}
    if case == "query":
        body.update(query=rec, lookupFrom=lookup_from)
    else:
        body.update(prefetch=[{"prefetch": [{"query": rec, "lookupFrom": lookup_from, "limit": 2}], "limit": 2}],
                    query={"nearest": {"dense": {"data": VECTOR}}})
    msg = json_format.ParseDict(body, qg.QueryPoints())
    return s.jwt.server.grpc().call("/qdrant.Points/Query", msg, metadata=bearer(token))


def _error_text(outcome: Outcome) -> str:
    if outcome.protocol == "grpc":
        return outcome.text
    try:
        return str(json.loads(outcome.body)["status"]["error"])
    except (ValueError, KeyError, TypeError):
        return outcome.text.strip()


def _forbidden(outcome: Outcome, message: str, what: str) -> None:
    ok = outcome.denied_forbidden and _error_text(outcome) == message
    want = ("HTTP 403" if outcome.protocol == "rest" else "PERMISSION_DENIED") + f" {message!r}"
    assert ok, f"{what}: got {shown(outcome)}, expected {want}"


@pytest.mark.parametrize(("protocol", "case"), _params(23, ("recommend", "query", "nested-prefetch")))
def test_cross_collection_reference_refused(protocol: str, case: str, scope: Scope) -> None:
    token = mint(collection_claims(scope.main, "r"), scope.jwt.secret)
    twin = _recommend(scope, protocol, token, case, scope.main)
    assert definitely_allowed(twin), (
        f"positive twin: {case} looking up the token's own collection must be allowed; got {shown(twin)}")
    outcome = _recommend(scope, protocol, token, case, scope.other)
    _forbidden(outcome, f"Forbidden: Access to collection {scope.other} is required",
               f"{case} with lookup_from naming a collection outside the token")


def _listed(scope: Scope, protocol: str, token: str) -> tuple[Outcome, set[str]]:
    if protocol == "rest":
        outcome = scope.jwt.server.rest().request("GET", "/collections", headers=bearer(token))
        try:
            names = {c["name"] for c in json.loads(outcome.body)["result"]["collections"]}
        except (ValueError, KeyError, TypeError):
            names = set()
        return outcome, names
    from qdrant_client import grpc as qg

    outcome, reply = scope.jwt.server.grpc().call_typed("/qdrant.Collections/List", qg.ListCollectionsRequest(),
                                                        qg.ListCollectionsResponse, metadata=bearer(token))
    return outcome, {c.name for c in reply.collections} if reply is not None else set()


@pytest.mark.parametrize(("protocol", "case"), _params(24))
def test_listing_is_filtered(protocol: str, case: str, scope: Scope) -> None:
    full, everything = _listed(scope, protocol, mint({"access": "r"}, scope.jwt.secret))
    assert {scope.main, scope.other} <= everything, (
        f"positive twin: a global-read token lists both collections; got {shown(full)}")
    outcome, seen = _listed(scope, protocol, mint(collection_claims(scope.main, "r"), scope.jwt.secret))
    assert definitely_allowed(outcome), f"a collection token's listing is filtered, not refused; got {shown(outcome)}"
    assert scope.main in seen and scope.other not in seen and seen <= everything, (
        f"a token for {scope.main} must list only its collections; it saw {sorted(seen)}")


@pytest.mark.requirement("JWT-REST-025")
def test_telemetry_cut_down_and_metrics_refused(scope: Scope) -> None:
    token = mint(collection_claims(scope.main, "rw"), scope.jwt.secret)
    rest = scope.jwt.server.rest()
    telemetry = rest.request("GET", "/telemetry", headers=bearer(token))
    assert telemetry.status == 200, f"a collection token gets /telemetry; got {shown(telemetry)}"
    result = json.loads(telemetry.body).get("result") or {}
    shown_keys = sorted(k for k in ("requests", "memory", "cluster") if k in result)
    assert not shown_keys, f"telemetry for a collection token must omit {shown_keys}"
    metrics_twin = rest.request("GET", "/metrics", headers=bearer(mint({"access": "r"}, scope.jwt.secret)))
    assert metrics_twin.status == 200, f"positive twin: a global-read token reads /metrics; got {shown(metrics_twin)}"
    _forbidden(rest.request("GET", "/metrics", headers=bearer(token)), "Forbidden: Global access is required",
               "/metrics with a collection token")


def _upsert(scope: Scope, protocol: str, token: str, collection: str) -> Outcome:
    if protocol == "rest":
        return scope.jwt.server.rest().request("PUT", f"/collections/{collection}/points?wait=true",
                                               headers=bearer(token),
                                               json={"points": [{"id": 9, "vector": VECTOR}]})
    from google.protobuf import json_format
    from qdrant_client import grpc as qg

    msg = json_format.ParseDict({"collectionName": collection, "wait": True, "points": [
        {"id": {"num": 9}, "vectors": {"vector": {"data": VECTOR}}}]}, qg.UpsertPoints())
    return scope.jwt.server.grpc().call("/qdrant.Points/Upsert", msg, metadata=bearer(token))


def _snapshot(scope: Scope, protocol: str, token: str) -> Outcome:
    if protocol == "rest":
        return scope.jwt.server.rest().request("GET", f"/collections/{scope.main}/snapshots", headers=bearer(token))
    from qdrant_client import grpc as qg

    return scope.jwt.server.grpc().call("/qdrant.Snapshots/List",
                                        qg.ListSnapshotsRequest(collection_name=scope.main), metadata=bearer(token))


@pytest.mark.parametrize(("protocol", "case"), _params(26, ("write-with-r", "prw-snapshots", "not-listed")))
def test_collection_refusal_messages(protocol: str, case: str, scope: Scope) -> None:
    secret = scope.jwt.secret
    if case == "write-with-r":
        twin = _upsert(scope, protocol, mint(collection_claims(scope.main, "rw"), secret), scope.main)
        outcome = _upsert(scope, protocol, mint(collection_claims(scope.main, "r"), secret), scope.main)
        message = f"Forbidden: Write access to collection {scope.main} is required"
    elif case == "prw-snapshots":
        if scope.jwt.server.version_tuple < (1, 12, 6):
            from qdrant_conformance.fixtures.outcomes import unsupported

            unsupported(f"prw exists from Qdrant 1.12.6; the target is {scope.jwt.server.version}")
        twin = _upsert(scope, protocol, mint(collection_claims(scope.main, "prw"), secret), scope.main)
        outcome = _snapshot(scope, protocol, mint(collection_claims(scope.main, "prw"), secret))
        message = f"Forbidden: Only points access is allowed for collection {scope.main}"
    else:
        twin = _upsert(scope, protocol, mint(collection_claims(scope.main, "rw"), secret), scope.main)
        outcome = _upsert(scope, protocol, mint(collection_claims(scope.main, "rw"), secret), scope.other)
        message = f"Forbidden: Access to collection {scope.other} is required"
    assert definitely_allowed(twin), f"positive twin: the point write is allowed; got {shown(twin)}"
    _forbidden(outcome, message, case)


# -- value_exists revocation --------------------------------------------------------------------------


def _stateful_token(scope: Scope, user: str, collection: str | None = None) -> str:
    return mint({"access": "r", "value_exists": {"collection": collection or scope.main,
                                                 "matches": [{"key": "user", "value": user}]}}, scope.jwt.secret)


def _set_user_point(scope: Scope, point: int, user: str, present: bool) -> None:
    rest = scope.jwt.server.rest()
    if present:
        done = rest.request("PUT", f"/collections/{scope.main}/points?wait=true", headers=scope.manage(),
                            json={"points": [{"id": point, "vector": VECTOR, "payload": {"user": user}}]})
    else:
        done = rest.request("POST", f"/collections/{scope.main}/points/delete?wait=true", headers=scope.manage(),
                            json={"points": [point]})
    if not done.succeeded:
        raise RuntimeError(f"cannot change the revocation point with a manage token: {done.summary()}")


@pytest.mark.parametrize(("protocol", "case"), _params(30))
def test_value_exists_revocation(protocol: str, case: str, scope: Scope) -> None:
    point = 100 + PROTOCOLS.index(protocol)
    user = "qsc-" + uuid.uuid4().hex[:8]
    _set_user_point(scope, point, user, True)
    token = _stateful_token(scope, user)
    before = probe(scope.jwt.server, protocol, token)
    assert definitely_allowed(before), f"a value_exists token must work while its point exists; got {shown(before)}"
    again = probe(scope.jwt.server, protocol, token)
    assert definitely_allowed(again), f"and on the next request too; got {shown(again)}"
    _set_user_point(scope, point, user, False)
    after = probe(scope.jwt.server, protocol, token)
    assert not definitely_allowed(after) and not after.succeeded, (
        f"after its point was deleted the same token must be refused on the next request; got {shown(after)}")


@pytest.mark.parametrize(("protocol", "case"), _params(31, ("no-match", "missing-collection")))
def test_value_exists_failure_codes(protocol: str, case: str, scope: Scope) -> None:
    twin = probe(scope.jwt.server, protocol, _stateful_token(scope, "u1"))
    assert definitely_allowed(twin), f"positive twin: a matching value_exists token works; got {shown(twin)}"
    if case == "no-match":
        outcome = probe(scope.jwt.server, protocol, _stateful_token(scope, "qsc-nobody-" + uuid.uuid4().hex[:6]))
        want_status, want_code = 401, "UNAUTHENTICATED"
    else:
        outcome = probe(scope.jwt.server, protocol, _stateful_token(scope, "u1", scope.main + "_absent"))
        want_status, want_code = 403, "PERMISSION_DENIED"
    if protocol == "rest":
        ok = outcome.status == want_status and outcome.text.strip() == MSG_STATEFUL
    else:
        ok = outcome.code == want_code and outcome.text == MSG_STATEFUL
    assert ok, f"{case}: got {shown(outcome)}, expected {want_status}/{want_code} {MSG_STATEFUL!r}"


# -- SHOULD-level findings (Qdrant itself does not meet them: warnings with remediation) -------------


@pytest.mark.requirement("JWT-ANY-010")
def test_finding_token_without_exp(scope: Scope) -> None:
    outcome = probe(scope.jwt.server, "rest", mint({"access": "r"}, scope.jwt.secret))
    assert not definitely_allowed(outcome), (
        "the deployment accepts a signed JWT without exp: such a token never expires. Remediation: always set exp "
        "in your token issuer, keep lifetimes short, rotate api_key/alt_api_key to revoke tokens without exp")


@pytest.mark.requirement("JWT-ANY-011")
def test_finding_token_without_access_is_admin(scope: Scope) -> None:
    outcome = probe(scope.jwt.server, "rest", mint({"exp": expires_in(300)}, scope.jwt.secret), "manage")
    assert not definitely_allowed(outcome), (
        "a signed JWT without an access claim has full manage access. Remediation: make your issuer always set "
        "access explicitly and limit who holds the signing key")


@pytest.mark.requirement("JWT-ANY-012")
def test_finding_lifetime_above_maximum(scope: Scope, target_options: Any) -> None:
    limit = target_options.jwt_max_lifetime
    token = mint({"access": "r", "exp": expires_in(limit + 3600)}, scope.jwt.secret)
    outcome = probe(scope.jwt.server, "rest", token)
    assert not definitely_allowed(outcome), (
        f"the deployment accepts a JWT valid for more than {limit} s (--jwt-max-lifetime). Remediation: cap exp in "
        "your token issuer and rotate the signing key to revoke long-lived tokens")

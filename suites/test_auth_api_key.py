"""API-key authentication over REST and gRPC (spec §2-§3; requirements AUTH-*).

Every refusal check runs next to its positive twin on the same server: the
right key is accepted where the missing or wrong one is refused, so a dead or
broken server can never pass "rejects a bad key".
"""

from __future__ import annotations

import secrets

import pytest

from qdrant_conformance.fixtures.hardening import empty_key_cause
from qdrant_conformance.fixtures.outcomes import DENIED, INCONCLUSIVE, Outcome, harness_error, inconclusive, note
from qdrant_conformance.fixtures.secrets import stand_in

pytestmark = pytest.mark.profiles("api-key", "tls")

req = pytest.mark.requirement

#: Protected REST routes probed without a credential: what an attacker reads first.
PROTECTED_REST = [
    ("GET", "/collections"),
    ("GET", "/aliases"),
    ("GET", "/telemetry"),
    ("GET", "/metrics"),
    ("GET", "/cluster"),
    ("GET", "/snapshots"),
    ("GET", "/issues"),
    ("GET", "/logger"),
]
#: Protected gRPC methods whose request message is empty.
PROTECTED_GRPC = [
    "/qdrant.Collections/List",
    "/qdrant.Collections/ListAliases",
    "/qdrant.Snapshots/ListFull",
]
HEALTH_REST = ["/healthz", "/livez", "/readyz"]
#: What each health endpoint may answer (spec §2.5): /readyz is 503 while shards are still loading.
HEALTH_ANSWERS: dict[str, list[tuple[int, str]]] = {
    "/healthz": [(200, "healthz check passed")],
    "/livez": [(200, "healthz check passed")],
    "/readyz": [(200, "all shards are ready"), (503, "some shards are not ready")],
}
HEALTH_GRPC = ["/qdrant.Qdrant/HealthCheck", "/grpc.health.v1.Health/Check"]

MSG_MISSING = "Must provide an API key or an Authorization bearer token"
MSG_INVALID = "Invalid API key or JWT"


def wrong_key() -> str:
    return "qsc-wrong-" + secrets.token_urlsafe(24)


def near_misses(key: str) -> list[str]:
    """Fresh random keys of the real key's length (and one longer, one shorter) in its character class.

    Never a slice or an edit of the real key: a "wrong key" that is 49 of its 50
    characters would hand most of a production key to every proxy that logs refusals.
    """
    return [stand_in(key), stand_in(key, len(key) + 1), stand_in(key, max(len(key) - 1, 1))]


@pytest.fixture
def keyed(qdrant):
    """The server configured with API keys (profile ``api-key``), with its manage key present."""
    server = qdrant("api-key")
    if not server.credentials.api_key:
        harness_error("the api-key profile has no manage key: give --api-key-file for an external target")
    return server


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def _describe(outcomes: list[Outcome]) -> str:
    return "; ".join(o.summary() for o in outcomes)


def _twins_allowed(twins: list[Outcome]) -> None:
    """The positive twins must be *allowed* (spec §5.5): a refused twin fails the test.

    A twin with no definite answer (5xx, 501, UNIMPLEMENTED, no answer) shows nothing, so
    the refusals next to it cannot pass: the test ends as an error (see :func:`_settle`).
    """
    refused = [o for o in twins if o.allowance == DENIED]
    assert not refused, f"the manage key itself is refused, so refusals prove nothing: {_describe(refused)}"


def _settle(twins: list[Outcome]) -> None:
    """After the refusal assertions held: a pass needs every twin conclusive."""
    undecided = [o for o in twins if o.allowance == INCONCLUSIVE]
    if undecided:
        inconclusive("the manage key got no definite answer here, so the refusals prove nothing: "
                     + _describe(undecided))


# -- REST -----------------------------------------------------------------


@req("AUTH-REST-001")
def test_rest_refuses_requests_without_credential(keyed):
    rest = keyed.rest()
    # The twin: with the key each route is at least not refused (a server may lack a feature).
    accepted = [rest.request(m, p, headers=keyed.key_headers()) for m, p in PROTECTED_REST]
    _twins_allowed(accepted)
    open_routes = []
    for method, path in PROTECTED_REST:
        outcome = rest.request(method, path)
        if outcome.succeeded:
            open_routes.append(f"{method} {path}")
    assert not open_routes, (
        "these routes answer without any credential (the instance is open): " + ", ".join(open_routes)
        + empty_key_cause(keyed)
    )
    _settle(accepted)


@req("AUTH-REST-002")
def test_rest_refuses_wrong_key(keyed):
    rest = keyed.rest()
    assert rest.request("GET", "/collections", headers=keyed.key_headers()).succeeded, "manage key refused"
    accepted = []
    for presented in (wrong_key(), *near_misses(keyed.credentials.api_key), "x"):
        for headers in ({"api-key": presented}, _bearer(presented)):
            outcome = rest.request("GET", "/collections", headers=headers)
            if outcome.succeeded:
                accepted.append(outcome.request)
    assert not accepted, f"wrong keys were accepted: {accepted}"


@req("AUTH-REST-003")
def test_rest_missing_credential_is_401_with_qdrant_body(keyed):
    rest = keyed.rest()
    assert rest.request("GET", "/collections", headers=keyed.key_headers()).succeeded
    outcome = rest.request("GET", "/collections")
    assert outcome.status == 401, outcome.summary()
    assert outcome.text == MSG_MISSING, outcome.summary()
    assert "www-authenticate" not in outcome.headers, "Qdrant sends no WWW-Authenticate header (spec §2.4)"


@req("AUTH-REST-004")
def test_rest_wrong_key_is_401_with_qdrant_body(keyed):
    rest = keyed.rest()
    assert rest.request("GET", "/collections", headers=keyed.key_headers()).succeeded
    outcome = rest.request("GET", "/collections", headers={"api-key": wrong_key()})
    assert outcome.status == 401, outcome.summary()
    assert outcome.text == MSG_INVALID, outcome.summary()


@req("AUTH-REST-005")
def test_rest_legacy_refusals_are_403(keyed):
    rest = keyed.rest()
    assert rest.request("GET", "/collections", headers=keyed.key_headers()).succeeded
    for headers in ({}, {"api-key": wrong_key()}):
        outcome = rest.request("GET", "/collections", headers=headers)
        assert outcome.status == 403, outcome.summary()


@req("AUTH-REST-006")
def test_rest_accepts_key_in_api_key_header(keyed):
    rest = keyed.rest()
    for name in ("api-key", "Api-Key", "API-KEY"):  # header names are case-insensitive
        outcome = rest.request("GET", "/collections", headers={name: keyed.credentials.api_key})
        assert outcome.succeeded, outcome.summary()


@req("AUTH-REST-007")
def test_rest_accepts_key_as_bearer(keyed):
    outcome = keyed.rest().request("GET", "/collections", headers=_bearer(keyed.credentials.api_key))
    assert outcome.succeeded, outcome.summary()


@req("AUTH-REST-008")
def test_rest_api_key_header_wins_over_bearer(keyed):
    rest = keyed.rest()
    key = keyed.credentials.api_key
    assert rest.request("GET", "/collections", headers=_bearer(key)).succeeded, "valid Bearer alone refused"
    for presented in (wrong_key(), ""):
        outcome = rest.request("GET", "/collections", headers={"api-key": presented, **_bearer(key)})
        assert outcome.status == 401, f"api-key={'empty' if not presented else 'wrong'}: {outcome.summary()}"


@req("AUTH-REST-009")
def test_rest_bearer_prefix_is_exact(keyed):
    rest = keyed.rest()
    key = keyed.credentials.api_key
    assert rest.request("GET", "/collections", headers=_bearer(key)).succeeded
    for value in (f"bearer {key}", f"BEARER {key}", f"Bearer:{key}", f"Basic {key}", f"Token {key}"):
        outcome = rest.request("GET", "/collections", headers={"authorization": value})
        assert outcome.status == 401, outcome.summary()
        assert outcome.text == MSG_MISSING, outcome.summary()


@req("AUTH-REST-010")
def test_rest_key_not_accepted_from_query_or_cookie(keyed):
    rest = keyed.rest()
    key = keyed.credentials.api_key
    assert rest.request("GET", "/collections", headers=keyed.key_headers()).succeeded
    for path in (f"/collections?api-key={key}", f"/collections?api_key={key}", f"/collections?token={key}"):
        outcome = rest.request("GET", path)
        assert not outcome.succeeded, "a key in the query string was accepted"
    outcome = rest.request("GET", "/collections", headers={"cookie": f"api-key={key}"})
    assert not outcome.succeeded, "a key in a cookie was accepted"


@req("AUTH-REST-011")
def test_rest_health_endpoints_need_no_credential(keyed):
    rest = keyed.rest()
    assert rest.request("GET", "/collections").denied, "protected route not protected: nothing to compare"
    problems = []
    for path in HEALTH_REST:
        accepted = HEALTH_ANSWERS[path]
        for headers in ({}, {"api-key": wrong_key()}):
            outcome = rest.request("GET", path, headers=headers)
            if (outcome.status, outcome.text.strip()) not in accepted:
                problems.append(f"{outcome.summary()}; Qdrant: " + " or ".join(f"{c} {b!r}" for c, b in accepted))
    assert not problems, "health endpoints answer without a credential (spec §2.5): " + "; ".join(problems)


@req("AUTH-REST-012")
def test_rest_refusal_does_not_echo_key(keyed):
    rest = keyed.rest()
    presented = wrong_key()
    assert rest.request("GET", "/collections", headers=keyed.key_headers()).succeeded
    for headers in ({"api-key": presented}, _bearer(presented)):
        outcome = rest.request("GET", "/collections", headers=headers)
        assert outcome.denied, outcome.summary()
        leaked = presented in outcome.text or any(presented in v for v in outcome.headers.values())
        assert not leaked, "the refusal echoes the presented key"


@req("AUTH-REST-013")
def test_official_client_rest(keyed):
    from qdrant_client import QdrantClient
    from qdrant_client.http.exceptions import UnexpectedResponse

    kwargs = {"url": keyed.rest_url, "prefer_grpc": False, "check_compatibility": False, "timeout": 10}
    if keyed.tls:
        kwargs["verify"] = keyed.ssl_context()
    with _quiet_insecure_key_warning():
        good = QdrantClient(api_key=keyed.credentials.api_key, **kwargs)
        try:
            listed = good.get_collections()
            note(f"qdrant-client REST get_collections() [credential: manage] at {keyed.rest_url} -> "
                 f"{len(listed.collections)} collection(s)")
        finally:
            good.close()
        anonymous = QdrantClient(**kwargs)
        try:
            with pytest.raises(UnexpectedResponse) as info:
                anonymous.get_collections()
            note(f"qdrant-client REST get_collections() [credential: none] -> UnexpectedResponse "
                 f"HTTP {info.value.status_code} {info.value.content[:200]!r}")
            assert info.value.status_code == 401
        finally:
            anonymous.close()


# -- gRPC -----------------------------------------------------------------


def _grpc_ok(server, method: str) -> Outcome:
    return server.grpc().call(method, b"", metadata=[("api-key", server.credentials.api_key)])


@req("AUTH-GRPC-001")
def test_grpc_refuses_calls_without_credential(keyed):
    grpc = keyed.grpc()
    twins = [_grpc_ok(keyed, m) for m in PROTECTED_GRPC]
    _twins_allowed(twins)
    open_methods = [m for m in PROTECTED_GRPC if grpc.call(m, b"").succeeded]
    assert not open_methods, ("these gRPC methods answer without any credential: " + ", ".join(open_methods)
                              + empty_key_cause(keyed))
    _settle(twins)


@req("AUTH-GRPC-002")
def test_grpc_refuses_wrong_key(keyed):
    grpc = keyed.grpc()
    assert _grpc_ok(keyed, PROTECTED_GRPC[0]).succeeded
    key = keyed.credentials.api_key
    accepted = []
    for presented in (wrong_key(), *near_misses(key)):
        for metadata in ([("api-key", presented)], [("authorization", f"Bearer {presented}")]):
            outcome = grpc.call(PROTECTED_GRPC[0], b"", metadata=metadata)
            if outcome.succeeded:
                accepted.append(outcome.request)
    assert not accepted, f"wrong keys were accepted: {accepted}"


@req("AUTH-GRPC-003")
def test_grpc_refusals_are_unauthenticated_with_qdrant_messages(keyed):
    grpc = keyed.grpc()
    assert _grpc_ok(keyed, PROTECTED_GRPC[0]).succeeded
    missing = grpc.call(PROTECTED_GRPC[0], b"")
    assert missing.code == "UNAUTHENTICATED" and missing.text == MSG_MISSING, missing.summary()
    wrong = grpc.call(PROTECTED_GRPC[0], b"", metadata=[("api-key", wrong_key())])
    assert wrong.code == "UNAUTHENTICATED" and wrong.text == MSG_INVALID, wrong.summary()


@req("AUTH-GRPC-004")
def test_grpc_legacy_refusals_are_permission_denied(keyed):
    grpc = keyed.grpc()
    assert _grpc_ok(keyed, PROTECTED_GRPC[0]).succeeded
    for metadata in ([], [("api-key", wrong_key())]):
        outcome = grpc.call(PROTECTED_GRPC[0], b"", metadata=metadata)
        assert outcome.code == "PERMISSION_DENIED", outcome.summary()


@req("AUTH-GRPC-005")
def test_grpc_accepts_key_in_metadata(keyed):
    for method in PROTECTED_GRPC:
        outcome = _grpc_ok(keyed, method)
        assert outcome.succeeded, outcome.summary()


@req("AUTH-GRPC-006")
def test_grpc_bearer_and_precedence(keyed):
    grpc = keyed.grpc()
    key = keyed.credentials.api_key
    bearer = ("authorization", f"Bearer {key}")
    outcome = grpc.call(PROTECTED_GRPC[0], b"", metadata=[bearer])
    assert outcome.succeeded, outcome.summary()
    for presented in (wrong_key(), ""):
        outcome = grpc.call(PROTECTED_GRPC[0], b"", metadata=[("api-key", presented), bearer])
        assert outcome.code == "UNAUTHENTICATED", outcome.summary()


@req("AUTH-GRPC-007")
def test_grpc_health_methods_need_no_credential(keyed):
    grpc = keyed.grpc()
    assert grpc.call(PROTECTED_GRPC[0], b"").denied, "protected method not protected: nothing to compare"
    for method in HEALTH_GRPC:
        for metadata in ([], [("api-key", wrong_key())]):
            outcome = grpc.call(method, b"", metadata=metadata)
            assert outcome.succeeded, outcome.summary()


@req("AUTH-GRPC-008")
def test_grpc_health_needs_credential_before_1_15_1(keyed):
    assert _grpc_ok(keyed, HEALTH_GRPC[0]).succeeded, "HealthCheck refused even with the manage key"
    outcome = keyed.grpc().call(HEALTH_GRPC[0], b"")
    assert outcome.denied, outcome.summary()


@req("AUTH-GRPC-009")
def test_grpc_refusal_does_not_echo_key(keyed):
    grpc = keyed.grpc()
    presented = wrong_key()
    assert _grpc_ok(keyed, PROTECTED_GRPC[0]).succeeded
    for metadata in ([("api-key", presented)], [("authorization", f"Bearer {presented}")]):
        outcome = grpc.call(PROTECTED_GRPC[0], b"", metadata=metadata)
        assert outcome.denied, outcome.summary()
        leaked = presented in outcome.text or any(presented in v for v in outcome.headers.values())
        assert not leaked, "the gRPC refusal echoes the presented key"


@req("AUTH-GRPC-010")
def test_official_client_grpc(keyed):
    import grpc as grpclib
    from qdrant_client import QdrantClient

    host, port = keyed.grpc_target.rsplit(":", 1)
    kwargs = {"host": host.strip("[]"), "grpc_port": int(port), "prefer_grpc": True,
              "check_compatibility": False, "timeout": 10, "https": keyed.tls}
    if keyed.tls:
        kwargs["grpc_options"] = {"root_certificates": keyed.tls_material.ca_pem,
                                  "grpc.ssl_target_name_override": "localhost"}
    with _quiet_insecure_key_warning():
        good = QdrantClient(api_key=keyed.credentials.api_key, **kwargs)
        try:
            listed = good.get_collections()
            note(f"qdrant-client gRPC get_collections() [credential: manage] at {keyed.grpc_target} -> "
                 f"{len(listed.collections)} collection(s)")
        finally:
            good.close()
        anonymous = QdrantClient(**kwargs)
        try:
            with pytest.raises(grpclib.RpcError) as info:
                anonymous.get_collections()
            note(f"qdrant-client gRPC get_collections() [credential: none] -> {info.value.code().name} "
                 f"{str(info.value.details())[:200]!r}")
            assert info.value.code() == grpclib.StatusCode.UNAUTHENTICATED
        finally:
            anonymous.close()


# -- transport ----------------------------------------------------------------


@req("AUTH-ANY-001")
def test_api_key_only_accepted_over_tls(qdrant, target_options):
    """SHOULD: a key sent in the clear can be read by anyone on the path.

    An external deployment is judged as declared; for a target the suite
    starts, the ``tls`` profile shows whether the server can keep keys off
    plaintext (no plaintext listener beside TLS).
    """
    declared = not qdrant.capabilities.launches
    server = qdrant("api-key" if declared and qdrant.offers("api-key") else "tls")
    key = server.credentials.api_key
    assert key, "no API key configured"
    if not server.tls:
        outcome = server.rest().request("GET", "/collections", headers={"api-key": key})
        assert not outcome.succeeded, (
            f"the API key is accepted over plain HTTP at {server.rest_url}: enable TLS (service.enable_tls)"
        )
        return
    assert server.rest().request("GET", "/collections", headers={"api-key": key}).succeeded, (
        "the key is not accepted over TLS, so the plaintext check proves nothing"
    )
    plain_url = server.rest_url.replace("https://", "http://", 1)
    plain = server.new_rest(ssl_context=None, url=plain_url)
    try:
        outcome = plain.request("GET", "/collections", headers={"api-key": key})
    finally:
        plain.close()
    assert not outcome.succeeded, f"the API key is also accepted over plain HTTP on {plain_url}"
    grpc_plain = server.new_grpc(tls=False)
    try:
        g = grpc_plain.call(PROTECTED_GRPC[0], b"", metadata=[("api-key", key)])
    finally:
        grpc_plain.close()
    assert not g.succeeded, f"the API key is accepted over plaintext gRPC on {server.grpc_target}"


class _quiet_insecure_key_warning:
    """qdrant-client warns when a key goes over plain HTTP; the suite reports that itself (AUTH-ANY-001)."""

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.filterwarnings("ignore", message=".*insecure connection.*")
        warnings.filterwarnings("ignore", message=".*unsecure connection.*")

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)

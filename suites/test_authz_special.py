"""Authorization at the edges: unknown paths, path tricks, normalisation, CORS, hygiene, plaintext keys.

The sweep (``test_authz_sweep.py``) covers every route in the access table;
these tests cover requests that match no row: paths that only look like a
whitelisted one, encodings, preflights, unknown gRPC methods and malformed
credentials (spec §2.2, §2.5, §2.6, §3, §10). Every refusal check sends the
manage key the same way as its positive twin.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from qdrant_conformance.fixtures.catalog.access import MSG_MISSING
from qdrant_conformance.fixtures.outcomes import INCONCLUSIVE, Outcome, harness_error, inconclusive
from qdrant_conformance.fixtures.secrets import REDACTOR

pytestmark = pytest.mark.profiles("api-key", "dashboard", "tls")

req = pytest.mark.requirement
PROFILE = "api-key"
ORIGIN = "https://qsc-cors-probe.example"


#: Without and with the Web UI's static content: what a path under /dashboard reaches depends on it
#: (spec §1.1, §2.5, §9b).
WEB_UI_PROFILES = ["api-key", "dashboard"]


def keyed_server(qdrant: Callable[[str], Any], name: str) -> Any:
    server = qdrant(name)
    if not server.credentials.api_key:
        harness_error(f"the {name} profile has no manage key: give --api-key-file for an external target")
    return server


@pytest.fixture
def keyed(qdrant: Callable[[str], Any]) -> Any:
    return keyed_server(qdrant, PROFILE)


def manage(server: Any) -> list[tuple[str, str]]:
    return [("api-key", server.credentials.api_key)]


def shown(outcome: Outcome) -> str:
    return REDACTOR.redact(outcome.summary())


def fail_with(title: str, problems: list[str], undecided: list[str] | None = None) -> None:
    """Fail on definite problems; otherwise an undecided positive twin makes the test an error, not a pass."""
    if problems:
        pytest.fail(REDACTOR.redact(title + "\n  - " + "\n  - ".join(problems)), pytrace=False)
    if undecided:
        inconclusive(REDACTOR.redact("the positive twin got no definite answer (HTTP < 500 other than "
                                     "401/403, or gRPC OK/INVALID_ARGUMENT/NOT_FOUND/FAILED_PRECONDITION/"
                                     "ALREADY_EXISTS), so a refusal here proves nothing:\n  - "
                                     + "\n  - ".join(undecided)))


def twin(server: Any, raw_path: bytes, method: str = "GET", undecided: list[str] | None = None) -> str | None:
    """The manage key's answer on the same request: refused means the refusal proves nothing.

    An inconclusive answer (5xx, no answer) is added to ``undecided`` instead.
    """
    outcome = server.rest().request(method, "/", raw_path=raw_path, headers=manage(server))
    line = f"{method} {raw_path.decode()} with the manage key (positive twin): {shown(outcome)}"
    if outcome.allowance == INCONCLUSIVE:
        if undecided is not None:
            undecided.append(line)
        return None
    return None if outcome.allowed else line


# -- unknown paths and path tricks (spec §2.5) ----------------------------------------------------

UNKNOWN_PATHS = [
    ("GET", b"/qsc-no-such-route"),
    ("POST", b"/qsc-no-such-route"),
    ("GET", b"/collections/qsc-any/qsc-no-such-route"),
    ("GET", b"/telemetryX"),
    ("DELETE", b"/metrics/qsc"),
]

LOOKALIKES = [
    b"/dashboard%2f..%2fcollections",  # Qdrant's own regression case (test_dashboard_whitelist_bypass.py)
    b"/dashboard/../collections",
    b"/dashboardX",
    b"/readyzX",
    b"/readyz/x",
    b"/livez/x",
    b"/livezX",
    b"/healthzX",
    b"/healthz/../collections",
    b"/readyz/%2e%2e/collections",
]


@req("AUTHZ-REST-011")
def test_unknown_paths_get_401_before_routing(keyed: Any) -> None:
    rest = keyed.rest()
    problems: list[str] = []
    undecided: list[str] = []
    for method, path in UNKNOWN_PATHS:
        outcome = rest.request(method, "/", raw_path=path)
        if not outcome.denied_unauthenticated:
            problems.append(f"{method} {path.decode()} without a credential: {shown(outcome)}; Qdrant: 401")
        broken = twin(keyed, path, method, undecided)
        if broken:
            problems.append(broken)
    fail_with("paths that match no route must be refused by authentication, not routed:", problems, undecided)


#: DELETEs that would reach ``DELETE /collections/{name}`` if a lookalike path were resolved after auth.
LOOKALIKE_DELETES = [
    "/dashboard/../collections/{name}",
    "/dashboard%2f..%2fcollections%2f{name}",
    "/dashboard/../../collections/{name}",
    "/readyz/../collections/{name}",
    "/healthz/../collections/{name}",
    "/livez/%2e%2e/collections/{name}",
]


@contextmanager
def probe_collection(server: Any, prefix: str) -> Iterator[str]:
    """A fresh collection made with the manage key, so data reached without one can be recognised."""
    name = prefix + secrets.token_hex(5)
    created = server.rest().request("PUT", f"/collections/{name}", headers=manage(server),
                                    json={"vectors": {"size": 4, "distance": "Cosine"}})
    if not created.succeeded:
        pytest.fail(REDACTOR.redact(f"cannot create a collection with the manage key: {created.summary()}"))
    try:
        yield name
    finally:
        server.rest().request("DELETE", f"/collections/{name}", headers=manage(server))


def data_envelope(outcome: Outcome) -> bool:
    """A 2xx whose body is Qdrant's JSON data envelope (``{"result": ...}``, spec §2.4)."""
    if not outcome.succeeded:
        return False
    try:
        body = json.loads(outcome.body)
    except ValueError:
        return False
    return isinstance(body, dict) and "result" in body


@req("AUTHZ-REST-012")
@pytest.mark.parametrize("profile_name", WEB_UI_PROFILES)
def test_lookalike_paths_serve_no_data_and_change_nothing(qdrant: Callable[[str], Any], profile_name: str) -> None:
    """The security half of the whitelist edges: whatever the status, nothing is served or done.

    Real Qdrant v1.18.3 with static/ answers GET /dashboard/../collections 404 (empty) without a
    credential (spec §9b), and before v1.18.2 /readyzX skipped auth into a 404 (spec §2.5): neither
    is a bypass. The exact statuses are AUTHZ-REST-019's.
    """
    server = keyed_server(qdrant, profile_name)
    rest = server.rest()
    problems: list[str] = []
    undecided: list[str] = []
    with probe_collection(server, "qsc_authz_lookalike_") as name:
        listed = rest.request("GET", "/collections", headers=manage(server))
        if listed.allowance == INCONCLUSIVE:
            undecided.append(f"GET /collections with the manage key (positive twin): {shown(listed)}")
        elif not (listed.succeeded and name.encode() in listed.body):
            problems.append(f"GET /collections with the manage key does not list the probe collection "
                            f"(positive twin): {shown(listed)}")
        for path in [*LOOKALIKES, b"/dashboard/../../collections"]:
            outcome = rest.request("GET", "/", raw_path=path)
            if name.encode() in outcome.body or data_envelope(outcome):
                problems.append(f"GET {path.decode()} without a credential returned data: {shown(outcome)}")
        for template in LOOKALIKE_DELETES:
            path = template.format(name=name)
            outcome = rest.request("DELETE", "/", raw_path=path.encode())
            if data_envelope(outcome):
                problems.append(f"DELETE {path} without a credential was carried out: {shown(outcome)}")
        kept = rest.request("GET", f"/collections/{name}", headers=manage(server))
        if not kept.succeeded:
            problems.append(f"after the DELETEs above without a credential, the probe collection is gone: "
                            f"{shown(kept)}")
    fail_with(f"paths that only look like whitelisted ones must not reach data ({profile_name} profile):",
              problems, undecided)


#: Paths under /dashboard that name no file (spec §9b).
WEB_UI_MISSES = [b"/dashboard/../collections", b"/dashboard/qsc-no-such-file"]


@req("AUTHZ-REST-019")
@pytest.mark.parametrize("profile_name", WEB_UI_PROFILES)
def test_lookalike_paths_get_qdrants_status(qdrant: Callable[[str], Any], profile_name: str) -> None:
    server = keyed_server(qdrant, profile_name)
    present = server.web_ui_present()
    if present is None:
        pytest.fail(REDACTOR.redact(
            "cannot tell whether the target serves the Web UI: GET /dashboard without a credential got "
            f"{shown(server.rest().request('GET', '/dashboard'))}; Qdrant answers 200 when its static "
            "content exists and 401 when it does not (spec §2.5)"))
    rest = server.rest()
    problems: list[str] = []
    undecided: list[str] = []
    for path in dict.fromkeys([*LOOKALIKES, *WEB_UI_MISSES]):
        if present and path in WEB_UI_MISSES:
            # The UI's file handler answers these, credential or not (spec §9b).
            for who, headers in (("without a credential", []), ("with the manage key", manage(server))):
                outcome = rest.request("GET", "/", raw_path=path, headers=headers)
                if not (outcome.status == 404 and outcome.body == b""):
                    problems.append(f"GET {path.decode()} {who}: {shown(outcome)}; "
                                    "Qdrant with static content: 404, empty body")
            continue
        outcome = rest.request("GET", "/", raw_path=path)
        if not outcome.denied_unauthenticated:
            problems.append(f"GET {path.decode()} without a credential: {shown(outcome)}; Qdrant: 401")
        broken = twin(server, path, undecided=undecided)
        if broken:
            problems.append(broken)
    state = "with" if present else "without"
    fail_with(f"lookalike paths ({state} the Web UI's static content) must get Qdrant's answers:", problems,
              undecided)


VARIANTS = [
    b"//collections",
    b"/collections/",
    b"/collections//",
    b"///collections",
    b"/%63ollections",
    b"/healthz/../collections",
    b"/readyz/%2e%2e/collections",
    b"/livez/..%2fcollections",
    b"/./collections",
]


@req("AUTHZ-REST-013")
def test_path_variants_never_serve_data_without_a_credential(keyed: Any) -> None:
    rest = keyed.rest()
    real = rest.request("GET", "/collections", headers=manage(keyed))
    problems = []
    undecided = []
    if real.allowance == INCONCLUSIVE:
        undecided.append(f"GET /collections with the manage key (positive twin): {shown(real)}")
    elif not real.succeeded:
        problems.append(f"GET /collections with the manage key (positive twin): {shown(real)}")
    for path in VARIANTS:
        outcome = rest.request("GET", "/", raw_path=path)
        if outcome.succeeded:
            problems.append(f"GET {path.decode()} without a credential: {shown(outcome)}; must not succeed")
    fail_with("encoded or normalised variants of a protected path answered without a credential:", problems,
              undecided)


@req("AUTHZ-REST-014")
def test_normalised_health_paths_stay_whitelisted(keyed: Any) -> None:
    rest = keyed.rest()
    problems = []
    for path in (b"/healthz/", b"//healthz", b"//healthz/", b"/livez/", b"/readyz/"):
        outcome = rest.request("GET", "/", raw_path=path)
        ok = {200, 503} if path.startswith((b"/readyz",)) else {200}
        if outcome.status not in ok:
            problems.append(f"GET {path.decode()} without a credential: {shown(outcome)}; Qdrant: 200")
    fail_with("NormalizePath runs before auth, so these are the whitelisted health routes:", problems)


# -- CORS (spec §2.6, §10) ------------------------------------------------------------------------


def preflight(server: Any, path: str, method: str) -> Outcome:
    return server.rest().request("OPTIONS", path, headers=[
        ("origin", ORIGIN), ("access-control-request-method", method),
        ("access-control-request-headers", "api-key, content-type")])


@pytest.fixture
def cors_collection(keyed: Any) -> Iterator[str]:
    with probe_collection(keyed, "qsc_authz_cors_") as name:
        yield name


@req("AUTHZ-REST-015")
def test_cors_preflight_is_answered_without_a_credential(keyed: Any) -> None:
    problems = []
    for path, method in (("/collections", "GET"), ("/collections/qsc-any/points/search", "POST")):
        outcome = preflight(keyed, path, method)
        allow = outcome.headers.get("access-control-allow-origin")
        if not outcome.succeeded or allow not in (ORIGIN, "*"):
            problems.append(f"preflight OPTIONS {path} for {method}: {shown(outcome)}, "
                            f"Access-Control-Allow-Origin {allow!r}; Qdrant: 2xx echoing the origin")
    fail_with("CORS is on by default and answers preflights before auth:", problems)


@req("AUTHZ-REST-016")
def test_cors_preflight_carries_no_data_and_does_nothing(keyed: Any, cors_collection: str) -> None:
    rest = keyed.rest()
    problems = []
    listed = rest.request("GET", "/collections", headers=manage(keyed))
    if not (listed.succeeded and cors_collection.encode() in listed.body):
        problems.append(f"GET /collections with the manage key does not list the probe collection "
                        f"(positive twin): {shown(listed)}")
    for path, method in (("/collections", "GET"), (f"/collections/{cors_collection}", "GET"),
                         (f"/collections/{cors_collection}", "DELETE")):
        outcome = preflight(keyed, path, method)
        if cors_collection.encode() in outcome.body or b'"result"' in outcome.body:
            problems.append(f"preflight OPTIONS {path} for {method} carried data: {shown(outcome)}")
    exists = rest.request("GET", f"/collections/{cors_collection}", headers=manage(keyed))
    if not exists.succeeded:
        problems.append(f"after a preflight for DELETE the collection is gone: {shown(exists)}")
    fail_with("a CORS preflight must only describe what is allowed:", problems)


@req("AUTHZ-REST-017")
def test_options_without_preflight_headers_needs_a_credential(keyed: Any) -> None:
    rest = keyed.rest()
    problems = []
    bare = rest.request("OPTIONS", "/collections")
    if not (bare.status == 401 and bare.text.strip() == MSG_MISSING):
        problems.append(f"OPTIONS /collections without a credential: {shown(bare)}; Qdrant: 401 {MSG_MISSING!r}")
    origin_only = rest.request("OPTIONS", "/collections", headers=[("origin", ORIGIN)])
    if origin_only.status != 401:
        problems.append(f"OPTIONS /collections with only Origin: {shown(origin_only)}; Qdrant: 401")
    keyed_options = rest.request("OPTIONS", "/collections", headers=manage(keyed))
    undecided = []
    if keyed_options.allowance == INCONCLUSIVE:
        undecided.append(f"OPTIONS /collections with the manage key (positive twin): {shown(keyed_options)}")
    elif not keyed_options.allowed:
        problems.append(f"OPTIONS /collections with the manage key (positive twin): {shown(keyed_options)}")
    fail_with("an OPTIONS that is not a preflight reaches authentication (spec §2.6):", problems, undecided)


# -- plaintext keys (SHOULD) -----------------------------------------------------------------------


@req("AUTHZ-REST-018")
def test_secondary_keys_only_accepted_over_tls(qdrant: Callable[[str], Any], target_options: Any) -> None:
    """SHOULD: the read-only and alternate keys read data too; in the clear anyone on the path has them.

    As in AUTH-ANY-001: an external deployment is judged as declared; a target the
    suite starts is judged by its ``tls`` profile.
    """
    declared = not qdrant.capabilities.launches
    server = qdrant(PROFILE if declared and qdrant.offers(PROFILE) else "tls")
    creds = server.credentials
    keys = {name: key for name, key in (("read-only", creds.read_only_api_key), ("alternate", creds.alt_api_key))
            if key}
    if not keys:
        harness_error("no read-only or alternate key configured: nothing to judge")
    problems = []
    if not server.tls:
        for name, key in keys.items():
            outcome = server.rest().request("GET", "/collections", headers=[("api-key", key)])
            if outcome.succeeded:
                problems.append(f"the {name} key is accepted over plain HTTP at {server.rest_url}")
        fail_with("enable TLS (service.enable_tls): API keys travel in the clear", problems)
        return
    plain_url = server.rest_url.replace("https://", "http://", 1)
    plain = server.new_rest(ssl_context=None, url=plain_url)
    grpc_plain = server.new_grpc(tls=False)
    try:
        for name, key in keys.items():
            over_tls = server.rest().request("GET", "/collections", headers=[("api-key", key)])
            if not over_tls.succeeded:
                problems.append(f"the {name} key is not accepted over TLS (positive twin): {shown(over_tls)}")
            if plain.request("GET", "/collections", headers=[("api-key", key)]).succeeded:
                problems.append(f"the {name} key is also accepted over plain HTTP on {plain_url}")
            if grpc_plain.call("/qdrant.Collections/List", b"", metadata=[("api-key", key)]).succeeded:
                problems.append(f"the {name} key is accepted over plaintext gRPC on {server.grpc_target}")
    finally:
        plain.close()
        grpc_plain.close()
    fail_with("keys must not be accepted in the clear:", problems)


# -- gRPC: unknown methods (spec §3) ---------------------------------------------------------------

UNKNOWN_METHODS = ["/qdrant.Points/QscNoSuchMethod", "/qdrant.QscNoSuchService/Call", "/grpc.qsc.v1.Nothing/Do"]


@req("AUTHZ-GRPC-010")
def test_unknown_grpc_methods_are_refused_by_auth(keyed: Any) -> None:
    grpc = keyed.grpc()
    expected = "UNAUTHENTICATED" if keyed.version_tuple >= (1, 9, 0) else "PERMISSION_DENIED"
    problems: list[str] = []
    undecided: list[str] = []
    for method in UNKNOWN_METHODS:
        outcome = grpc.call(method, b"")
        if outcome.code != expected:
            problems.append(f"{method} without a credential: {shown(outcome)}; Qdrant: {expected}")
        keyed_call = grpc.call(method, b"", metadata=manage(keyed))
        # For a method the server does not have, UNIMPLEMENTED is the definite answer past auth.
        if keyed_call.code == "UNIMPLEMENTED" or keyed_call.allowed:
            continue
        line = f"{method} with the manage key (positive twin): {shown(keyed_call)}; Qdrant: UNIMPLEMENTED"
        (undecided if keyed_call.allowance == INCONCLUSIVE else problems).append(line)
    fail_with("authentication runs before routing, so unknown methods do not reveal themselves:", problems,
              undecided)


# -- hygiene: malformed credentials are not echoed (spec §2.2, §2.4) -------------------------------


def _malformed(value: str) -> list[list[tuple[str, str]]]:
    return [
        [("api-key", value)],
        [("authorization", f"Bearer {value}")],
        [("authorization", f"bearer {value}")],
        [("authorization", f"Bearer:{value}")],
        [("authorization", f"Basic {value}")],
        [("api-key", value + " " + value)],
        [("api-key", value * 40)],
        [("api-key", ""), ("authorization", f"Bearer {value}")],
    ]


@req("AUTHZ-ANY-002")
def test_refusals_do_not_echo_malformed_credentials(keyed: Any) -> None:
    value = "qsc-echo-probe-" + secrets.token_urlsafe(24)
    REDACTOR.register("echo-probe", value)
    needle = value.encode()
    rest, grpc = keyed.rest(), keyed.grpc()
    problems = []
    undecided = []
    twin_rest = rest.request("GET", "/collections", headers=manage(keyed))
    twin_grpc = grpc.call("/qdrant.Collections/List", b"", metadata=manage(keyed))
    for twin_outcome in (twin_rest, twin_grpc):
        if twin_outcome.allowance == INCONCLUSIVE:
            undecided.append(f"the manage key (positive twin): {shown(twin_outcome)}")
        elif not twin_outcome.succeeded:
            problems.append(f"the manage key is refused (positive twin): {shown(twin_outcome)}")
    for headers in _malformed(value):
        shape = ", ".join(f"{k}: <{len(v)} chars>" for k, v in headers)
        for outcome in (rest.request("GET", "/collections", headers=headers),
                        grpc.call("/qdrant.Collections/List", b"", metadata=headers)):
            if not outcome.answered:
                problems.append(f"{outcome.protocol} [{shape}]: no answer to inspect ({outcome.refused})")
                continue
            haystack = outcome.body + json.dumps(outcome.headers).encode()
            if needle in haystack:
                problems.append(f"{outcome.protocol} [{shape}]: the response contains the presented value")
            if outcome.succeeded:
                problems.append(f"{outcome.protocol} [{shape}]: a malformed credential succeeded: {shown(outcome)}")
    fail_with("refusals must not repeat what the client presented:", problems, undecided)

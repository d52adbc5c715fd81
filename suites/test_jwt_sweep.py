"""The JWT access sweep: every access-table row, over REST and gRPC, with a token per role.

Roles (spec §5.2, §5.3): global ``r`` and ``m`` tokens, tokens for the row's
collection with ``r`` / ``rw`` / ``prw`` (prw from v1.12.6), and an ``rw``
token for another collection. What each role may do comes from
``fixtures/catalog/jwt_access.yaml`` (keyed by access-table row id; spec §5.5
matrix). "Allowed" means a definite non-auth answer; a 5xx, UNIMPLEMENTED or
silence is inconclusive and reported as an error, never as a pass. Every
refusal check also requires the ``m`` token to be allowed on the same row (its
positive twin).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from qdrant_conformance.fixtures import outcomes
from qdrant_conformance.fixtures.catalog.access import AccessRow, load_access_table
from qdrant_conformance.fixtures.catalog.access_requests import (
    Names,
    grpc_request_bytes,
    grpc_request_class,
    multipart_upload,
    rest_body,
    rest_path,
)
from qdrant_conformance.fixtures.catalog.jwt_access import ROLES, JwtRow, load_jwt_access
from qdrant_conformance.fixtures.jwt_probe import definitely_allowed, inconclusive, shown
from qdrant_conformance.fixtures.jwt_target import JwtTarget, jwt_target
from qdrant_conformance.fixtures.jwt_tokens import bearer, collection_claims, mint
from qdrant_conformance.fixtures.outcomes import Outcome, disabled, no_evidence, note, record, unsupported
from qdrant_conformance.fixtures.secrets import REDACTOR

pytestmark = pytest.mark.profiles("jwt")

PRW_SINCE = (1, 12, 6)



@dataclass(frozen=True)
class Case:
    row: AccessRow
    jwt: JwtRow
    protocol: str
    check: str  # deny | allow | agree

    @property
    def id(self) -> str:
        return f"{self.row.id}-{self.protocol}-{self.check}"

    @property
    def requirement(self) -> str:
        if self.check == "agree":
            return "JWT-ANY-001"
        proto = "REST" if self.protocol == "rest" else "GRPC"
        return f"JWT-{proto}-{'020' if self.check == 'deny' else '021'}"


def _build() -> list[Case]:
    jwt_rows = load_jwt_access()
    cases: list[Case] = []
    for row in load_access_table():
        jrow = jwt_rows[row.id]
        for protocol, present in (("rest", row.rest is not None), ("grpc", row.grpc is not None)):
            if not present:
                continue
            if "N" in jrow.expect.values():
                cases.append(Case(row, jrow, protocol, "deny"))
            cases.append(Case(row, jrow, protocol, "allow"))
        if row.rest is not None and row.grpc is not None:
            cases.append(Case(row, jrow, "any", "agree"))
    return cases


CASES = _build()


@dataclass
class SweepState:
    jwt: JwtTarget
    names: Names
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    answers: dict[tuple[str, str], dict[str, Outcome]] = field(default_factory=dict)

    def roles(self) -> list[str]:
        have_prw = self.jwt.server.version_tuple >= PRW_SINCE
        return [r for r in ROLES if r != "coll_prw" or have_prw]

    def token(self, role: str, collection: str) -> str:
        key = (role, collection)
        if key not in self.tokens:
            secret = self.jwt.secret
            if role in ("r", "m"):
                claims: dict[str, Any] = {"access": role}
            elif role == "other":
                claims = collection_claims(self.names.main + "_other", "rw")
            else:
                claims = collection_claims(collection, role.removeprefix("coll_"))
            self.tokens[key] = mint(claims, secret, name=f"jwt-{role}")
        return self.tokens[key]

    def exchanges(self, row: AccessRow, protocol: str) -> dict[str, Outcome]:
        key = (row.id, protocol)
        if key not in self.answers:
            collection = self.names.collection_for(row)
            send = self._rest if protocol == "rest" else self._grpc
            # Recorded by each test that judges them (_show), not only by the first that sends them.
            with no_evidence():
                self.answers[key] = {role: send(row, bearer(self.token(role, collection)), collection)
                                     for role in self.roles()}
        return self.answers[key]

    def _rest(self, row: AccessRow, headers: list[tuple[str, str]], collection: str) -> Outcome:
        assert row.rest is not None
        client = self.jwt.server.rest()
        if row.multipart:
            content, ctype = multipart_upload()
            return client.request(row.rest.method, rest_path(row, self.names),
                                  headers=[*headers, ("content-type", ctype)], content=content)
        return client.request(row.rest.method, rest_path(row, self.names), headers=headers,
                              json=rest_body(row, self.names))

    def _grpc(self, row: AccessRow, headers: list[tuple[str, str]], collection: str) -> Outcome:
        assert row.grpc is not None
        raw = grpc_request_bytes(row, self.names)
        if not raw and row.request_hex is None and grpc_request_class(row.grpc) is None and (
                row.grpc.startswith(("/qdrant.StorageRead/", "/qdrant.ShardSnapshots/"))):
            # No shipped message class: these requests start with collection_name (1) and shard_id (2).
            name = collection.encode()
            raw = b"\x0a" + bytes([len(name)]) + name + b"\x10\x00"
        return self.jwt.server.grpc().call(row.grpc, raw, metadata=headers)


def _manage(server: Any) -> list[tuple[str, str]]:
    return [("api-key", server.credentials.api_key)] if server.credentials.api_key else []


def _setup(jwt: JwtTarget, names: Names) -> None:
    from qdrant_conformance.fixtures.clients.rest import RestClient

    token = mint({"access": "m"}, jwt.secret, name="jwt-setup")
    with RestClient(jwt.server.rest_url, ssl_context=jwt.server.ssl_context(), timeout=60.0) as rest:
        made = rest.request("PUT", f"/collections/{names.main}", headers=bearer(token),
                            json={"vectors": {"size": 4, "distance": "Cosine"}})
        if not made.succeeded:
            raise RuntimeError(f"cannot create the JWT sweep's collection with a manage token: {made.summary()}")
        points = [{"id": i, "vector": [0.1 * i, 0.2, 0.3, 0.4], "payload": {"color": "red"}} for i in (1, 2, 3)]
        added = rest.request("PUT", f"/collections/{names.main}/points?wait=true", headers=bearer(token),
                             json={"points": points})
        if not added.succeeded:
            raise RuntimeError(f"cannot add the JWT sweep's points: {added.summary()}")
    from qdrant_conformance.fixtures.clients.grpc import GrpcClient

    client = jwt.server.grpc()
    warm = GrpcClient(client.target, root_certificates=client.root_certificates, timeout=60.0)
    try:
        warm.call("/qdrant.Collections/List", b"", metadata=bearer(token))
    finally:
        warm.close()


def _snapshot_names(rest: Any, path: str, headers: list[tuple[str, str]]) -> list[str]:
    outcome = rest.request("GET", path, headers=headers)
    try:
        result = json.loads(outcome.body).get("result") or []
    except (ValueError, AttributeError):
        return []
    return [s["name"] for s in result if isinstance(s, dict) and isinstance(s.get("name"), str)]


def _cleanup(state: SweepState, full_before: set[str]) -> None:
    """Best effort: what accepted calls created (snapshots, alias, metadata key, collections)."""
    token = mint({"access": "m"}, state.jwt.secret, name="jwt-cleanup")
    headers = bearer(token)
    rest = state.jwt.server.rest()
    names = state.names
    for name in _snapshot_names(rest, f"/collections/{names.main}/snapshots", headers):
        rest.request("DELETE", f"/collections/{names.main}/snapshots/{name}", headers=headers)
    for name in _snapshot_names(rest, f"/collections/{names.main}/shards/0/snapshots", headers):
        rest.request("DELETE", f"/collections/{names.main}/shards/0/snapshots/{name}", headers=headers)
    for name in set(_snapshot_names(rest, "/snapshots", headers)) - full_before:
        rest.request("DELETE", f"/snapshots/{name}", headers=headers)
    rest.request("POST", "/collections/aliases", headers=headers,
                 json={"actions": [{"delete_alias": {"alias_name": names.alias}}]})
    rest.request("DELETE", f"/cluster/metadata/keys/{names.metadata_key}", headers=headers)
    for collection in (names.main, names.scratch):
        rest.request("DELETE", f"/collections/{collection}", headers=headers)


@pytest.fixture(scope="module")
def jwt_sweep(server_pool: Any, target_options: Any) -> Iterator[SweepState | None]:
    """The module's collections and answers on the JWT target, or ``None`` when it has none."""
    from qdrant_conformance.fixtures.servers import ProfileUnavailable

    if not server_pool.target.offers("jwt"):
        yield None
        return
    try:
        server_pool.get("jwt")
    except ProfileUnavailable:
        yield None
        return
    state: SweepState | None = None
    full_before: set[str] = set()

    def start(jwt: JwtTarget) -> SweepState:
        nonlocal state, full_before
        if state is None:
            state = SweepState(jwt, Names.unique("jwt"))
            token = mint({"access": "m"}, jwt.secret, name="jwt-setup")
            full_before = set(_snapshot_names(jwt.server.rest(), "/snapshots", bearer(token)))
            _setup(jwt, state.names)
        return state

    yield start  # type: ignore[misc]
    if state is not None:
        _cleanup(state, full_before)


Problem = tuple[str, str, str]


def _judge(case: Case, answers: dict[str, Outcome]) -> tuple[list[Problem], list[Problem]]:
    """(definite mismatches, inconclusive answers) for the roles this check judges."""
    problems: list[Problem] = []
    unclear: list[Problem] = []
    want = "N" if case.check == "deny" else "Y"
    for role, outcome in answers.items():
        if case.jwt.expect.get(role) != want:
            continue
        if want == "Y":
            if (case.jwt.unimplemented_ok and outcome.code == "UNIMPLEMENTED") or case.row.answered_past_auth(outcome):
                continue
            if definitely_allowed(outcome):
                continue
            target = unclear if inconclusive(outcome) else problems
            target.append((role, shown(outcome), "allowed: a definite non-auth answer"))
        else:
            if outcome.denied_forbidden or (case.protocol == "grpc" and outcome.denied_unauthenticated):
                continue
            target = unclear if inconclusive(outcome) else problems
            expected = "HTTP 403" if case.protocol == "rest" else "PERMISSION_DENIED (or UNAUTHENTICATED)"
            target.append((role, shown(outcome), f"refused: {expected}"))
    if case.check == "deny":
        twin = answers["m"]
        if not definitely_allowed(twin) and not (case.jwt.unimplemented_ok and twin.code == "UNIMPLEMENTED") \
                and not case.row.answered_past_auth(twin):
            (unclear if inconclusive(twin) else problems).append(
                ("m (positive twin)", shown(twin), "allowed: refusals prove nothing when the manage token fails too"))
    return problems, unclear


def _agreement(answers_rest: dict[str, Outcome], answers_grpc: dict[str, Outcome]) -> tuple[list[Problem], int]:
    problems: list[Problem] = []
    compared = 0
    for role, rest in answers_rest.items():
        grpc = answers_grpc.get(role)
        if grpc is None or inconclusive(rest) or inconclusive(grpc):
            continue
        compared += 1
        if definitely_allowed(rest) != definitely_allowed(grpc):
            problems.append((role, f"REST {shown(rest)} / gRPC {shown(grpc)}", "the same verdict on both"))
    return problems, compared


def _report(case: Case, problems: list[Problem], label: str) -> str:
    target = case.row.rest if case.protocol == "rest" else case.row.grpc
    lines = [f"{target or case.row.id} ({case.row.id}, {case.protocol}): {len(problems)} {label} "
             f"[{case.requirement}; kind {case.jwt.kind}]"]
    lines += [f"  - token role: {role} | got: {seen} | expected: {want}" for role, seen, want in problems]
    if case.jwt.note:
        lines.append(f"  note: {case.jwt.note}")
    return REDACTOR.redact("\n".join(lines))


def _param(case: Case) -> Any:
    marks = [pytest.mark.requirement(case.requirement)]
    if case.protocol != "any":
        marks.append(pytest.mark.protocol(case.protocol))
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_jwt_access(case: Case, qdrant: Callable[[str], Any], target_options: Any, jwt_sweep: Any,
                    request: pytest.FixtureRequest) -> None:
    jwt = jwt_target(qdrant, target_options)
    if jwt_sweep is None:
        disabled("no JWT target")
    row = case.row
    if row.disruptive and not jwt.server.capabilities.may_disrupt:
        disabled(f"{row.id} changes server-wide state; pass --allow-disruptive to include it")
    version = jwt.server.version_tuple
    if not row.exists_at(version):
        unsupported(f"{row.id} is in Qdrant from {row.since}; the target is {jwt.server.version}")
    state = jwt_sweep(jwt)
    if case.check == "agree":
        rest_answers, grpc_answers = state.exchanges(row, "rest"), state.exchanges(row, "grpc")
        _show(rest_answers)
        _show(grpc_answers)
        problems, compared = _agreement(rest_answers, grpc_answers)
        if problems:
            pytest.fail(_report(case, problems, "REST/gRPC disagreement(s)"), pytrace=False)
        if compared == 0:
            outcomes.inconclusive(f"no role got a definite answer on both transports for {row.id}")
        return
    answers = state.exchanges(row, case.protocol)
    _show(answers)
    problems, unclear = _judge(case, answers)
    if problems:
        pytest.fail(_report(case, problems + unclear, "mismatch(es) with Qdrant"), pytrace=False)
    if unclear:
        outcomes.inconclusive(_report(case, unclear, "answer(s) neither allowed nor refused"))


def _show(answers: dict[str, Outcome]) -> None:
    """Put the row's exchanges into this test's evidence, each labelled with its token role."""
    for role, outcome in answers.items():
        record(replace(outcome, request=f"[token: {role}] {outcome.request}"))


@pytest.mark.requirement("JWT-ANY-002")
def test_no_token_or_secret_in_responses(qdrant: Callable[[str], Any], target_options: Any,
                                         jwt_sweep: Any) -> None:
    jwt = jwt_target(qdrant, target_options)
    if jwt_sweep is None:
        disabled("no JWT target")
    state = jwt_sweep(jwt)
    version = jwt.server.version_tuple
    for row in load_access_table():
        if not row.exists_at(version) or (row.disruptive and not jwt.server.capabilities.may_disrupt):
            continue
        for protocol, present in (("rest", row.rest is not None), ("grpc", row.grpc is not None)):
            if present:
                state.exchanges(row, protocol)
    secrets = [jwt.secret, *(s for s in (jwt.alt_secret,) if s), *state.tokens.values()]
    leaks = []
    for (row_id, protocol), answers in state.answers.items():
        for role, outcome in answers.items():
            haystack = outcome.body + "\n".join(f"{k}: {v}" for k, v in outcome.headers.items()).encode(
                "utf-8", "replace")
            if any(s.encode() in haystack for s in secrets):
                leaks.append(f"{row_id} ({protocol}) with the {role} token")
    assert state.answers, "no exchanges to inspect"
    scanned = sum(len(answers) for answers in state.answers.values())
    note(f"scanned {scanned} answers on {len(state.answers)} row/protocol pairs for {len(secrets)} secrets "
         f"(the JWT secrets and every minted token): {len(leaks)} containing one")
    assert not leaks, "responses that contain a token or the JWT secret: " + ", ".join(leaks[:10])

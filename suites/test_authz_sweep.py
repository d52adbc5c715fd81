"""The authorization sweep: every access-table row, over REST and gRPC, with every credential class.

Each row of ``fixtures/catalog/access_table.yaml`` is called once per protocol
with each credential class (no credential, an unknown key, the read-only key,
the manage key, the manage key as ``Authorization: Bearer``, the alternate key)
and the answers are kept for the module. Each pytest test then judges one
(row, protocol, requirement) on those answers and lists every mismatch with
the route or method, the credential class, what came back and what Qdrant
does (spec §2-§4).

Refusal checks always look at the manage key's answer on the same row too (its
positive twin): a dead or broken server fails them instead of passing "the
read-only key is refused". "Allowed" is three-valued (``Outcome.allowance``): a
twin or an allowed credential that gets a 5xx, UNIMPLEMENTED or no answer
decides nothing, and the row is reported *error*, never pass.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from qdrant_conformance.fixtures.catalog.access import (
    CREDENTIALS,
    FORBIDDEN_MANAGE,
    MSG_INVALID,
    MSG_MISSING,
    AccessRow,
    load_access_table,
    sweep_coverage,
)
from qdrant_conformance.fixtures.catalog.access_requests import (
    Names,
    grpc_request_bytes,
    multipart_upload,
    rest_body,
    rest_path,
)
from qdrant_conformance.fixtures.outcomes import (
    DENIED,
    INCONCLUSIVE,
    Outcome,
    disabled,
    harness_error,
    inconclusive,
    no_evidence,
    record,
    unsupported,
)
from qdrant_conformance.fixtures.secrets import REDACTOR

pytestmark = pytest.mark.profiles("api-key")

__all__ = ["CASES", "case_ids", "sweep_coverage"]

PROFILE = "api-key"
V1_7 = (1, 7, 0)
V1_9 = (1, 9, 0)

# -- which checks apply to which row --------------------------------------------------------

#: check → (REST requirement, gRPC requirement)
REQUIREMENTS: dict[str, tuple[str, str]] = {
    "unauth": ("AUTHZ-REST-001", "AUTHZ-GRPC-001"),
    "unauth_401": ("AUTHZ-REST-002", "AUTHZ-GRPC-002"),
    "unauth_403": ("AUTHZ-REST-003", "AUTHZ-GRPC-003"),
    "ro_write": ("AUTHZ-REST-004", "AUTHZ-GRPC-004"),
    "ro_write_403": ("AUTHZ-REST-005", "AUTHZ-GRPC-005"),
    "manage": ("AUTHZ-REST-006", "AUTHZ-GRPC-006"),
    "alt": ("AUTHZ-REST-007", "AUTHZ-GRPC-007"),
    "ro_read": ("AUTHZ-REST-008", "AUTHZ-GRPC-008"),
    "whitelist": ("AUTHZ-REST-010", "AUTHZ-GRPC-009"),
    "hygiene": ("AUTHZ-ANY-001", "AUTHZ-ANY-001"),
}


@dataclass(frozen=True)
class Case:
    row: AccessRow
    protocol: str  # "rest" | "grpc"
    check: str

    @property
    def id(self) -> str:
        return f"{self.row.id}-{self.protocol}-{self.check}"

    @property
    def requirement(self) -> str:
        if self.check == "whitelist" and self.protocol == "rest" and _base_id(self.row.id) == "root":
            return "AUTHZ-REST-009"  # `/` was whitelisted before the health routes existed (spec §9)
        rest_req, grpc_req = REQUIREMENTS[self.check]
        return rest_req if self.protocol == "rest" else grpc_req

    @property
    def target(self) -> str:
        """What the failure message names: the route or the method."""
        if self.protocol == "rest":
            return str(self.row.rest)
        return str(self.row.grpc)


def checks_for(row: AccessRow) -> list[str]:
    if row.access == "none":
        checks = ["whitelist"]
    else:
        checks = ["unauth", "unauth_401", "unauth_403"]
        if row.ro_checked and row.access == "manage":
            checks.append("ro_write")
            if row.exact_refusal:
                checks.append("ro_write_403")
        if row.ro_checked and row.access == "read":
            checks.append("ro_read")
    return [*checks, "manage", "alt", "hygiene"]


def _can_apply(case: Case) -> bool:
    """False when no Qdrant version has both the row and the requirement (e.g. a pre-v1.9.0
    answer on a route added later): such a test could only ever be reported unsupported."""
    from qdrant_conformance.fixtures.catalog import load_requirements
    from qdrant_conformance.fixtures.catalog.access import parse

    until = load_requirements()[case.requirement].until
    return not (until and case.row.since and parse(case.row.since) >= parse(until))


#: Bench only (``python -m bench``, its sweep section): the table's rows this many times over, the copies
#: with distinct ids (``<id>~bench<k>``) so each is sent and judged on its own; how the sweep's time grows
#: per row is fitted from 1x, 2x and 4x. Unset (every normal run): the table as it is.
ROW_FACTOR_ENV = "QSC_BENCH_ROW_FACTOR"
BENCH_COPY = "~bench"


def _row_factor() -> int:
    raw = os.environ.get(ROW_FACTOR_ENV, "").strip()
    if not raw:
        return 1
    if not raw.isdigit() or not 1 <= int(raw) <= 64:
        raise ValueError(f"{ROW_FACTOR_ENV} must be a whole number from 1 to 64, not {raw!r}")
    return int(raw)


def sweep_rows() -> tuple[AccessRow, ...]:
    """The rows the sweep sends: the access table, repeated only under :data:`ROW_FACTOR_ENV`."""
    rows = load_access_table()
    copies = tuple(replace(row, id=f"{row.id}{BENCH_COPY}{k}") for k in range(2, _row_factor() + 1) for row in rows)
    return rows + copies


def _base_id(row_id: str) -> str:
    return row_id.split(BENCH_COPY, 1)[0]


def _build_cases() -> list[Case]:
    cases: list[Case] = []
    for row in sweep_rows():
        for protocol, present in (("rest", row.rest is not None), ("grpc", row.grpc is not None)):
            if present:
                cases.extend(c for c in (Case(row, protocol, check) for check in checks_for(row))
                             if _can_apply(c))
    return cases


CASES: list[Case] = _build_cases()


def case_ids() -> list[str]:
    """The parametrised ids of the sweep's tests (the meta-tests compare them with the table)."""
    return [c.id for c in CASES]


# -- the exchanges, once per (row, protocol) ------------------------------------------------


@dataclass
class SweepState:
    """One module's collections, credentials and answers; made on the first test that needs them."""

    server: Any
    names: Names
    wrong_key: str
    answers: dict[tuple[str, str], dict[str, Outcome]] = field(default_factory=dict)
    grpc_results: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def presented(self) -> dict[str, str]:
        """Credential class → the key it presents (only the keys this server has)."""
        creds = self.server.credentials
        keys = {"wrong": self.wrong_key, "manage": creds.api_key, "manage_bearer": creds.api_key,
                "alt": creds.alt_api_key, "read_only": creds.read_only_api_key}
        return {cls: key for cls, key in keys.items() if key}

    def headers(self, cls: str) -> list[tuple[str, str]]:
        if cls == "none":
            return []
        key = self.presented().get(cls)
        if key is None:
            return []
        if cls == "manage_bearer":
            return [("authorization", f"Bearer {key}")]
        return [("api-key", key)]

    def classes(self) -> list[str]:
        have = self.presented()
        return [c for c in CREDENTIALS if c == "none" or c in have]

    def exchanges(self, row: AccessRow, protocol: str) -> dict[str, Outcome]:
        key = (row.id, protocol)
        if key not in self.answers:
            send = self._rest if protocol == "rest" else self._grpc
            # Sent once, shown by every test that judges them (see :func:`show`).
            with no_evidence():
                self.answers[key] = {cls: send(row, cls) for cls in self.classes()}
        return self.answers[key]

    def _rest(self, row: AccessRow, cls: str) -> Outcome:
        assert row.rest is not None
        headers = self.headers(cls)
        client = self.server.rest()
        path = rest_path(row, self.names)
        if row.multipart:
            content, ctype = multipart_upload()
            return client.request(row.rest.method, path, headers=[*headers, ("content-type", ctype)],
                                  content=content)
        body = rest_body(row, self.names)
        return client.request(row.rest.method, path, headers=headers, json=body)

    def _grpc(self, row: AccessRow, cls: str) -> Outcome:
        assert row.grpc is not None
        outcome, raw = self.server.grpc().call_bytes(
            row.grpc, grpc_request_bytes(row, self.names), metadata=self.headers(cls))
        if raw is not None and cls in ("manage", "manage_bearer", "alt"):
            self.grpc_results[(row.id, cls)] = raw
        return outcome


def _manage(server: Any) -> list[tuple[str, str]]:
    return [("api-key", server.credentials.api_key)]


SETUP_TIMEOUT_S = 60.0


def _setup_collection(server: Any, names: Names) -> None:
    """Create the main collection with three points, with the manage key.

    A client of its own with a long timeout: the first data request to a freshly
    started server may be slow (a loaded machine, a lazily loaded storage layer),
    and that is no verdict about authorization.
    """
    from qdrant_conformance.fixtures.clients.rest import RestClient

    headers = _manage(server)
    with RestClient(server.rest_url, ssl_context=server.ssl_context(), timeout=SETUP_TIMEOUT_S) as rest:
        created = rest.request("PUT", f"/collections/{names.main}", headers=headers,
                               json={"vectors": {"size": 4, "distance": "Cosine"}})
        if not created.succeeded:
            raise RuntimeError(f"cannot create the sweep's collection with the manage key: {created.summary()}")
        points = [
            {"id": 1, "vector": [0.1, 0.2, 0.3, 0.4], "payload": {"color": "red"}},
            {"id": 2, "vector": [0.2, 0.1, 0.4, 0.3], "payload": {"color": "green"}},
            {"id": 3, "vector": [0.4, 0.3, 0.1, 0.2], "payload": {"color": "red"}},
        ]
        upserted = rest.request("PUT", f"/collections/{names.main}/points?wait=true", headers=headers,
                                json={"points": points})
        if not upserted.succeeded:
            raise RuntimeError(f"cannot add the sweep's points with the manage key: {upserted.summary()}")
        # The gRPC side may load lazily too; one call with a long deadline before the sweep's 5 s ones.
        from qdrant_conformance.fixtures.clients.grpc import GrpcClient

        grpc_client = server.grpc()
        warm = GrpcClient(grpc_client.target, root_certificates=grpc_client.root_certificates,
                          timeout=SETUP_TIMEOUT_S)
        try:
            warm.call("/qdrant.Collections/List", b"", metadata=headers)
        finally:
            warm.close()


def _snapshot_name(outcome: Outcome) -> str | None:
    if not outcome.succeeded or outcome.protocol != "rest":
        return None
    try:
        result = json.loads(outcome.body).get("result")
    except (ValueError, AttributeError):
        return None
    name = result.get("name") if isinstance(result, dict) else None
    return name if isinstance(name, str) else None


def _grpc_snapshot_name(raw: bytes) -> str | None:
    from qdrant_client.grpc import CreateSnapshotResponse

    try:
        name = CreateSnapshotResponse.FromString(raw).snapshot_description.name
    except Exception:  # a target may answer anything; cleanup is best effort
        return None
    return name or None


def _cleanup(state: SweepState) -> None:
    """Best effort: remove what accepted manage calls created (snapshots, alias, metadata key, collections)."""
    server, names = state.server, state.names
    rest = server.rest()
    headers = _manage(server)
    for (row_id, protocol), answers in state.answers.items():
        for cls in ("manage", "manage_bearer", "alt"):
            outcome = answers.get(cls)
            name = _snapshot_name(outcome) if outcome is not None else None
            if protocol == "grpc" and (row_id, cls) in state.grpc_results:
                name = _grpc_snapshot_name(state.grpc_results[(row_id, cls)])
            if not name:
                continue
            base = _base_id(row_id)
            if base == "create_full_snapshot":
                rest.request("DELETE", f"/snapshots/{name}", headers=headers)
            elif base == "create_snapshot":
                rest.request("DELETE", f"/collections/{names.main}/snapshots/{name}", headers=headers)
            elif base == "create_shard_snapshot":
                rest.request("DELETE", f"/collections/{names.main}/shards/0/snapshots/{name}", headers=headers)
    rest.request("POST", "/collections/aliases", headers=headers,
                 json={"actions": [{"delete_alias": {"alias_name": names.alias}}]})
    rest.request("DELETE", f"/cluster/metadata/keys/{names.metadata_key}", headers=headers)
    for collection in (names.main, names.scratch):
        rest.request("DELETE", f"/collections/{collection}", headers=headers)


@pytest.fixture(scope="module")
def sweep_state(server_pool: Any) -> Iterator[SweepState | None]:
    """The module's state on the ``api-key`` server, or ``None`` when the target cannot offer it.

    Tests still ask ``qdrant("api-key")`` first: that reports them disabled or
    unsupported exactly as the plugin decides.
    """
    from qdrant_conformance.fixtures.servers import ProfileUnavailable

    try:
        server = server_pool.get(PROFILE)
    except ProfileUnavailable:
        yield None
        return
    if not server.credentials.api_key:
        yield None
        return
    wrong = "qsc-wrong-" + secrets.token_urlsafe(32)
    REDACTOR.register("wrong-api-key", wrong)
    state = SweepState(server=server, names=Names.unique(), wrong_key=wrong)
    _setup_collection(server, state.names)
    try:
        yield state
    finally:
        _cleanup(state)


# -- judging the answers ----------------------------------------------------------------------

Problem = tuple[str, str, str]  # (credential class, what came back, what Qdrant does)


def got(outcome: Outcome) -> str:
    if outcome.refused is not None:
        return f"no answer (transport: {outcome.refused})"
    text = outcome.text.replace("\n", " ")
    if len(text) > 160:
        text = text[:160] + "..."
    if outcome.protocol == "rest":
        ctype = outcome.headers.get("content-type", "-")
        return f"HTTP {outcome.status} [{ctype}] {text!r}"
    return f"{outcome.code} {text!r}"


def _twin(answers: dict[str, Outcome]) -> list[Problem]:
    """A manage key refused on the row: the refusal of the other credentials proves nothing.

    An inconclusive twin (5xx, UNIMPLEMENTED, no answer) is not a problem of the server's
    auth; :func:`undecided` turns it into an error instead of a pass.
    """
    manage = answers.get("manage")
    if manage is None:
        return [("manage", "not sent", "the manage key's answer, to show the route works at all")]
    if manage.allowance == DENIED:
        return [("manage (positive twin)", got(manage),
                 "not refused: a refusal of the other credentials proves nothing when the manage key "
                 "is refused too")]
    return []


def check_unauth(case: Case, answers: dict[str, Outcome], version: tuple[int, int, int]) -> list[Problem]:
    problems = [(cls, got(answers[cls]), "not a success (no 2xx / OK)")
                for cls in ("none", "wrong") if answers[cls].succeeded]
    return problems + _twin(answers)


def check_unauth_401(case: Case, answers: dict[str, Outcome], version: tuple[int, int, int]) -> list[Problem]:
    problems: list[Problem] = []
    for cls, message in (("none", MSG_MISSING), ("wrong", MSG_INVALID)):
        outcome = answers[cls]
        if case.protocol == "rest":
            ok = outcome.status == 401 and outcome.text.strip() == message
            expected = f"HTTP 401 with the bare body {message!r}"
        else:
            ok = outcome.code == "UNAUTHENTICATED" and outcome.text == message
            expected = f"UNAUTHENTICATED {message!r}"
        if not ok:
            problems.append((cls, got(outcome), expected))
    return problems


def check_unauth_403(case: Case, answers: dict[str, Outcome], version: tuple[int, int, int]) -> list[Problem]:
    expected = "HTTP 403" if case.protocol == "rest" else "PERMISSION_DENIED"
    return [(cls, got(answers[cls]), expected) for cls in ("none", "wrong")
            if not answers[cls].denied_forbidden] + _twin(answers)


def _needs_read_only(answers: dict[str, Outcome]) -> Outcome:
    outcome = answers.get("read_only")
    if outcome is None:
        disabled("the target has no read-only key configured (give --read-only-key-file)")
    return outcome


def _legacy_get(case: Case, version: tuple[int, int, int]) -> None:
    # v1.7.0-v1.8.x let the read-only key call any REST GET (spec §4 History).
    if case.protocol == "rest" and version < V1_9 and case.row.rest is not None and case.row.rest.method == "GET":
        unsupported(f"before v1.9.0 the read-only key could call every REST GET; the target is "
                    f"{'.'.join(map(str, version))}")


def check_ro_write(case: Case, answers: dict[str, Outcome], version: tuple[int, int, int]) -> list[Problem]:
    _legacy_get(case, version)
    outcome = _needs_read_only(answers)
    problems: list[Problem] = []
    if outcome.succeeded:
        problems.append(("read_only", got(outcome), "not a success: the route needs manage access"))
    return problems + _twin(answers)


def check_ro_write_403(case: Case, answers: dict[str, Outcome], version: tuple[int, int, int]) -> list[Problem]:
    outcome = _needs_read_only(answers)
    if case.protocol == "grpc":
        if outcome.code == "PERMISSION_DENIED" and outcome.text == FORBIDDEN_MANAGE:
            return []
        return [("read_only", got(outcome), f"PERMISSION_DENIED {FORBIDDEN_MANAGE!r}")]
    refusal = case.row.refusal_at(version)
    if outcome.status != 403:
        return [("read_only", got(outcome), f"HTTP 403 with {FORBIDDEN_MANAGE!r} ({refusal} body)")]
    if refusal == "text":
        ctype = outcome.headers.get("content-type", "")
        if outcome.text.strip() != FORBIDDEN_MANAGE or not ctype.startswith("text/plain"):
            return [("read_only", got(outcome), f"HTTP 403 text/plain with the bare body {FORBIDDEN_MANAGE!r}")]
        return []
    if refusal == "json":
        expected = f'HTTP 403 JSON {{"status":{{"error":"{FORBIDDEN_MANAGE}"}},"time":...}}'
        try:
            data = json.loads(outcome.body)
        except ValueError:
            return [("read_only", got(outcome), expected)]
        status = data.get("status") if isinstance(data, dict) else None
        if not isinstance(status, dict) or status.get("error") != FORBIDDEN_MANAGE or "result" in data:
            return [("read_only", got(outcome), expected)]
        return []
    if FORBIDDEN_MANAGE not in outcome.text:
        return [("read_only", got(outcome), f"HTTP 403 naming {FORBIDDEN_MANAGE!r}")]
    return []


def _allowed_for(answers: dict[str, Outcome], classes: tuple[str, ...]) -> list[Problem]:
    return [(cls, got(answers[cls]), "a definite answer past authentication (no 401/403, UNAUTHENTICATED, "
             "PERMISSION_DENIED)") for cls in classes if cls in answers and answers[cls].allowance == DENIED]


def check_manage(case: Case, answers: dict[str, Outcome], version: tuple[int, int, int]) -> list[Problem]:
    classes = ("manage", "manage_bearer") if version >= V1_7 else ("manage",)
    return _allowed_for(answers, classes)


def check_alt(case: Case, answers: dict[str, Outcome], version: tuple[int, int, int]) -> list[Problem]:
    if "alt" not in answers:
        disabled("the target has no alternate key configured (give --alt-key-file)")
    return _allowed_for(answers, ("alt",))


def check_ro_read(case: Case, answers: dict[str, Outcome], version: tuple[int, int, int]) -> list[Problem]:
    _needs_read_only(answers)
    return _allowed_for(answers, ("read_only",))


def check_whitelist(case: Case, answers: dict[str, Outcome], version: tuple[int, int, int]) -> list[Problem]:
    problems: list[Problem] = []
    for cls in ("none", "wrong"):
        outcome = answers[cls]
        if case.protocol == "grpc":
            if outcome.code != "OK":
                problems.append((cls, got(outcome), "OK: the method is whitelisted and ignores credentials"))
            continue
        accepted = {200, 503} if _base_id(case.row.id) == "readyz" else {200}
        if outcome.status not in accepted:
            want = " or ".join(str(s) for s in sorted(accepted))
            problems.append((cls, got(outcome), f"HTTP {want}: the route is whitelisted and ignores credentials"))
    return problems


def check_hygiene(case: Case, answers: dict[str, Outcome], version: tuple[int, int, int],
                  presented: dict[str, str]) -> list[Problem]:
    problems: list[Problem] = []
    if not any(o.answered for o in answers.values()):
        return [("all", "no answer to any credential", "answers to inspect")]
    for cls, outcome in answers.items():
        haystack = outcome.body + b"\n" + "\n".join(f"{k}: {v}" for k, v in outcome.headers.items()).encode(
            "utf-8", "replace")
        for key_cls in ("wrong", "manage", "alt", "read_only"):
            key = presented.get(key_cls)
            if key and key.encode() in haystack:
                problems.append((cls, f"the response contains the {key_cls} key", "no key in any response"))
    return problems


#: check → the credential classes whose answer must be *allowed* for the check to decide anything:
#: the positive twin of a refusal check, or the credential an allowance check is about.
DECIDING: dict[str, tuple[str, ...]] = {
    "unauth": ("manage",),
    "unauth_403": ("manage",),
    "ro_write": ("manage",),
    "manage": ("manage", "manage_bearer"),
    "alt": ("alt",),
    "ro_read": ("read_only",),
}


def undecided(case: Case, answers: dict[str, Outcome], version: tuple[int, int, int]) -> list[Problem]:
    """Deciding answers that were neither allowed nor denied (5xx, UNIMPLEMENTED, no answer)."""
    classes = DECIDING.get(case.check, ())
    if case.check == "manage" and version < V1_7:
        classes = ("manage",)
    return [(cls, got(answers[cls]), "a definite answer: HTTP < 500 other than 401/403, or gRPC OK, "
             "INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ALREADY_EXISTS")
            for cls in classes if cls in answers and answers[cls].allowance == INCONCLUSIVE
            # Qdrant's own answer past authentication on this row (e.g. Health/Watch, spec §3;
            # a cluster-only route on a single node).
            and not case.row.answered_past_auth(answers[cls])]


CHECKS: dict[str, Callable[[Case, dict[str, Outcome], tuple[int, int, int]], list[Problem]]] = {
    "unauth": check_unauth,
    "unauth_401": check_unauth_401,
    "unauth_403": check_unauth_403,
    "ro_write": check_ro_write,
    "ro_write_403": check_ro_write_403,
    "manage": check_manage,
    "alt": check_alt,
    "ro_read": check_ro_read,
    "whitelist": check_whitelist,
}


def report(case: Case, problems: list[Problem], what: str = "mismatch(es) with Qdrant") -> str:
    lines = [f"{case.target} ({case.row.id}, {case.protocol}): {len(problems)} {what} "
             f"[{case.requirement}; access {case.row.access}; {case.row.source}]"]
    lines += [f"  - {case.target} | credential: {cls} | got: {seen} | expected: {want}"
              for cls, seen, want in problems]
    if case.row.note:
        lines.append(f"  note: {case.row.note}")
    # Keys never reach a failure message, whatever a server echoed.
    return REDACTOR.redact("\n".join(lines))


def show(answers: dict[str, Outcome]) -> None:
    """Put the row's exchanges into this test's evidence, each labelled with its credential class."""
    for cls, outcome in answers.items():
        record(replace(outcome, request=f"[credential: {cls}] {outcome.request}"))


def _param(case: Case) -> Any:
    # No xdist_group mark: without pytest-xdist loaded it is an unknown marker, which
    # `--strict` (pytest's alias of --strict-markers) turns into a collection error.
    return pytest.param(case, id=case.id, marks=[pytest.mark.requirement(case.requirement),
                                                 pytest.mark.protocol(case.protocol)])


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_authz(case: Case, qdrant: Callable[[str], Any], sweep_state: SweepState | None,
               target_options: Any) -> None:
    server = qdrant(PROFILE)  # reports disabled/unsupported as the plugin decides
    if case.row.disruptive and not server.capabilities.may_disrupt:
        # A conformance run must not reset quotas or recover the cluster of a production deployment.
        disabled(f"{case.target} changes server-wide state; pass --allow-disruptive to include it")
    if sweep_state is None:
        harness_error("the api-key profile has no manage key: give --api-key-file for an external target")
    version = server.version_tuple
    row = case.row
    if not row.exists_at(version):
        basis = "first release not pinned down; " if row.since_basis == "conservative" else ""
        unsupported(f"{case.target} is in Qdrant from {row.since} ({basis}the target is {server.version})")
    if case.check == "whitelist" and row.access_at(version) != "none":
        unsupported(f"{case.target} is whitelisted from Qdrant {row.whitelisted_since}; "
                    f"the target is {server.version}")
    answers = sweep_state.exchanges(row, case.protocol)
    show(answers)
    if case.check == "hygiene":
        problems = check_hygiene(case, answers, version, sweep_state.presented())
    else:
        problems = CHECKS[case.check](case, answers, version)
    if problems:
        pytest.fail(report(case, problems), pytrace=False)
    if case.check != "hygiene":
        unknown = undecided(case, answers, version)
        if unknown:
            # Neither pass nor fail: a route that answers 501 cannot show who may call it.
            inconclusive(report(case, unknown, "answer(s) that decide nothing"))

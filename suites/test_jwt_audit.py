"""The audit trail of JWT calls (spec §10, §5.2 ``subject``; audit v1.17.0+, refused logins v1.17.1+).

With the audit log on (the ``jwt`` profile sets ``audit.enabled``; an external
deployment is checked when its ``POST /audit/logs`` answers), each transport
makes a known allowed call and a known refused call with a collection token
carrying a fresh ``subject``, and a login with a badly signed token carrying a
fresh tracing id. The log, read back with the manage key through
``POST /audit/logs`` and, for a node launched here, from ``./storage/audit``
in its work dir, must hold an entry for each with the right ``auth_type``,
``subject`` and ``result``, and no key or token anywhere. Qdrant writes the
log through a background writer, so entries are polled for, with a deadline.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from qdrant_conformance.fixtures.jwt_probe import definitely_allowed, inconclusive, shown
from qdrant_conformance.fixtures.jwt_target import JwtTarget, jwt_target
from qdrant_conformance.fixtures.jwt_tokens import bearer, collection_claims, expires_in, fresh_secret, mint
from qdrant_conformance.fixtures.outcomes import Outcome, disabled
from qdrant_conformance.fixtures.outcomes import inconclusive as end_inconclusive
from qdrant_conformance.fixtures.secrets import REDACTOR

pytestmark = pytest.mark.profiles("jwt")

PROTOCOLS = ("rest", "grpc")
AUDIT_SINCE = (1, 17, 0)
POLL_S = 15.0
#: A compact JWS: what any token looks like, whoever minted it.
JWT_SHAPE = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
TRACING_HEADER = "x-request-id"


def _params(number: int) -> list[Any]:
    return [pytest.param(p, id=p, marks=[pytest.mark.requirement(f"JWT-{'REST' if p == 'rest' else 'GRPC'}-"
                                                                 f"{number:03d}"), pytest.mark.protocol(p)])
            for p in PROTOCOLS]


@dataclass
class Calls:
    """One transport's known calls and what the audit log should say about them."""

    subject: str
    allowed: Outcome
    refused: Outcome
    login_tracing: str
    login: Outcome


@dataclass
class Trail:
    jwt: JwtTarget
    collection: str
    calls: dict[str, Calls] = field(default_factory=dict)
    scrape_subject: str = ""
    scrape: Outcome | None = None
    off: str | None = None  # why the log cannot be read: POST /audit/logs's answer
    #: POST /audit/logs is absent (404: the access table dates it conservatively from 1.19.0), so
    #: the log is read from the files of a node launched here.
    via_files: bool = False

    def manage(self) -> list[tuple[str, str]]:
        return [("api-key", self.jwt.secret)]

    def read(self, filters: dict[str, str], limit: int = 1000) -> tuple[Outcome, list[dict[str, Any]]]:
        if self.via_files:
            return self._read_files(filters, limit)
        outcome = self.jwt.server.rest().request("POST", "/audit/logs", headers=self.manage(),
                                                 json={"filters": filters, "limit": limit})
        try:
            entries = json.loads(outcome.body)["result"]["entries"]
        except (ValueError, KeyError, TypeError):
            return outcome, []
        return outcome, [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []

    def poll(self, filters: dict[str, str], done: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        """Entries matching ``filters`` once ``done`` holds for them, or the last ones read at the deadline."""
        deadline = time.monotonic() + POLL_S
        while True:
            outcome, entries = self.read(filters)
            if not outcome.succeeded:
                end_inconclusive(f"POST /audit/logs with the manage key got {shown(outcome)}")
            if done(entries) or time.monotonic() > deadline:
                return entries
            time.sleep(0.1)

    def _read_files(self, filters: dict[str, str], limit: int) -> tuple[Outcome, list[dict[str, Any]]]:
        entries: list[dict[str, Any]] = []
        for _, data in self.files():
            for line in data.decode("utf-8", "replace").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict) and all(str(entry.get(k)) == v for k, v in filters.items()):
                    entries.append(entry)
        body = json.dumps({"result": {"entries": entries}}).encode()
        # Same shape as the endpoint's answer, so callers need not care where the entries came from.
        files_outcome = Outcome(protocol="rest", request="audit files", status=200, body=body)
        return files_outcome, list(reversed(entries))[:limit]

    def files_dir(self) -> Any:
        """``./storage/audit`` in the work dir of a process-launched node (Qdrant's default ``audit.dir``)."""
        workdir = None if self.jwt.external else getattr(self.jwt.server, "workdir", None)
        if workdir is None or not (workdir / "storage").is_dir():
            return None
        return workdir / "storage" / "audit"

    def files(self) -> list[tuple[str, bytes]]:
        """The raw audit files of a node launched here (``./storage/audit`` in its work dir)."""
        folder = self.files_dir()
        if folder is None or not folder.is_dir():
            return []
        return [(p.name, p.read_bytes()) for p in sorted(folder.iterdir())
                if p.is_file() and p.name.startswith("audit") and p.name.endswith(".log")]


def _tag(kind: str) -> str:
    return f"qsc-audit-{kind}-{secrets.token_hex(6)}"


def _rest_calls(trail: Trail) -> Calls:
    rest, c = trail.jwt.server.rest(), trail.collection
    subject = _tag("rest")
    token = mint({**collection_claims(c, "r"), "subject": subject, "exp": expires_in(3600)}, trail.jwt.secret,
                 name="jwt-audit")
    allowed = rest.request("GET", f"/collections/{c}", headers=bearer(token))
    refused = rest.request("PUT", f"/collections/{c}/points?wait=true", headers=bearer(token),
                           json={"points": [{"id": 9, "vector": [0.1, 0.2, 0.3, 0.4]}]})
    tracing = _tag("login")
    bad = mint({"access": "m", "subject": _tag("unverified")}, fresh_secret(), name="jwt-audit-bad")
    login = rest.request("GET", f"/collections/{c}", headers=[*bearer(bad), (TRACING_HEADER, tracing)])
    return Calls(subject, allowed, refused, tracing, login)


def _grpc_calls(trail: Trail) -> Calls:
    from qdrant_client import grpc as qg

    client, c = trail.jwt.server.grpc(), trail.collection
    subject = _tag("grpc")
    token = mint({**collection_claims(c, "r"), "subject": subject, "exp": expires_in(3600)}, trail.jwt.secret,
                 name="jwt-audit")
    allowed = client.call("/qdrant.Collections/Get", qg.GetCollectionInfoRequest(collection_name=c),
                          metadata=bearer(token))
    point = qg.PointStruct(id=qg.PointId(num=9), vectors=qg.Vectors(vector=qg.Vector(data=[0.1, 0.2, 0.3, 0.4])))
    refused = client.call("/qdrant.Points/Upsert", qg.UpsertPoints(collection_name=c, wait=True, points=[point]),
                          metadata=bearer(token))
    tracing = _tag("login")
    bad = mint({"access": "m", "subject": _tag("unverified")}, fresh_secret(), name="jwt-audit-bad")
    login = client.call("/qdrant.Collections/Get", qg.GetCollectionInfoRequest(collection_name=c),
                        metadata=[*bearer(bad), (TRACING_HEADER, tracing)])
    return Calls(subject, allowed, refused, tracing, login)


@pytest.fixture(scope="module")
def _trail_holder() -> Iterator[dict[str, Trail]]:
    holder: dict[str, Trail] = {}
    yield holder
    trail = holder.get("trail")
    if trail is not None:
        trail.jwt.server.rest().request("DELETE", f"/collections/{trail.collection}", headers=trail.manage())


@pytest.fixture
def trail(qdrant: Callable[[str], Any], target_options: Any, _trail_holder: dict[str, Trail]) -> Trail:
    """The known calls, made once per module; ends *disabled* when an external target's log is off."""
    jwt = jwt_target(qdrant, target_options)
    if "trail" not in _trail_holder:
        made = Trail(jwt, "qsc_jwt_audit_" + secrets.token_hex(5))
        probe, _ = made.read({}, limit=1)
        if probe.status == 404 and made.files_dir() is not None:
            made.via_files = True
        elif probe.status == 404:
            made.off = "404: the endpoint is absent and the audit files are out of reach"
        elif not probe.succeeded:
            made.off = shown(probe)
        if made.off is None:
            rest = jwt.server.rest()
            created = rest.request("PUT", f"/collections/{made.collection}", headers=made.manage(),
                                   json={"vectors": {"size": 4, "distance": "Cosine"}})
            if not created.succeeded:
                raise RuntimeError(f"cannot create {made.collection} with the manage key: {created.summary()}")
            made.calls = {"rest": _rest_calls(made), "grpc": _grpc_calls(made)}
            made.scrape_subject = _tag("scrape")
            scraper = mint({"access": "r", "subject": made.scrape_subject}, jwt.secret, name="jwt-audit")
            made.scrape = rest.request("GET", "/telemetry", headers=bearer(scraper))
        _trail_holder["trail"] = made
    found = _trail_holder["trail"]
    if found.off is not None:
        if jwt.external or found.off.startswith("404"):
            disabled(f"the deployment's audit log is off or unreadable (POST /audit/logs: {found.off})")
        pytest.fail(f"the jwt profile turns audit.enabled on, but POST /audit/logs with the manage key got "
                    f"{found.off}", pytrace=False)
    return found


def _precondition(outcome: Outcome, want_allowed: bool, what: str) -> None:
    if inconclusive(outcome):
        end_inconclusive(f"{what} got {shown(outcome)}")
    if definitely_allowed(outcome) != want_allowed:
        end_inconclusive(f"{what} was {'refused' if want_allowed else 'allowed'} ({shown(outcome)}), so the log "
                         "has no such entry to look for (the JWT access checks judge that call)")


def _show(entries: list[dict[str, Any]]) -> str:
    keep = ("method", "api", "auth_type", "subject", "collection", "result", "error")
    return REDACTOR.redact(json.dumps([{k: e.get(k) for k in keep if k in e} for e in entries[:5]]))


@pytest.mark.parametrize("protocol", _params(40))
def test_allowed_call_is_audited(protocol: str, trail: Trail) -> None:
    calls = trail.calls[protocol]
    _precondition(calls.allowed, True, "the collection token's read of its own collection")
    entries = trail.poll({"subject": calls.subject}, lambda es: any(e.get("result") == "ok" for e in es))
    ok = [e for e in entries if e.get("result") == "ok"]
    assert ok, (f"no audit entry with result ok for an allowed call by subject {calls.subject!r}; "
                f"entries with that subject: {_show(entries)}")
    wrong = [e for e in ok if e.get("auth_type") != "Jwt" or e.get("subject") != calls.subject]
    assert not wrong, f"the allowed call's entry must say auth_type Jwt and the token's subject: {_show(wrong)}"


@pytest.mark.parametrize("protocol", _params(41))
def test_refused_call_is_audited(protocol: str, trail: Trail) -> None:
    calls = trail.calls[protocol]
    _precondition(calls.refused, False, "the read-only collection token's write")
    entries = trail.poll({"subject": calls.subject}, lambda es: any(e.get("result") == "denied" for e in es))
    denied = [e for e in entries if e.get("result") == "denied"]
    assert denied, (f"no audit entry with result denied for a refused call by subject {calls.subject!r}; "
                    f"entries with that subject: {_show(entries)}")
    wrong = [e for e in denied if e.get("auth_type") != "Jwt" or not e.get("error")]
    assert not wrong, f"the refused call's entry must say auth_type Jwt and carry the error: {_show(wrong)}"


@pytest.mark.parametrize("protocol", _params(42))
def test_refused_login_is_audited(protocol: str, trail: Trail) -> None:
    calls = trail.calls[protocol]
    _precondition(calls.login, False, "a token signed with an unknown secret")
    entries = trail.poll({"tracing_id": calls.login_tracing}, bool)
    assert entries, (f"no audit entry for a refused login carrying {TRACING_HEADER}: {calls.login_tracing} "
                     "(refused logins are logged from Qdrant 1.17.1, with the tracing id)")
    wrong = [e for e in entries if e.get("result") != "denied" or e.get("auth_type") != "None"
             or e.get("subject") is not None]
    assert not wrong, ("a refused login's entry must say result denied, auth_type None, and no subject (the "
                       f"token's claims were never trusted): {_show(wrong)}")


@pytest.mark.requirement("JWT-ANY-041")
def test_telemetry_scrape_not_audited(trail: Trail) -> None:
    assert trail.scrape is not None
    _precondition(trail.scrape, True, "GET /telemetry with a global read token")
    # The same poll that finds the allowed call's entry shows the log is being written by now.
    rest = trail.calls["rest"]
    trail.poll({"subject": rest.subject}, lambda es: any(e.get("result") == "ok" for e in es))
    _, entries = trail.read({"subject": trail.scrape_subject})
    assert not entries, f"GET /telemetry was written to the audit log: {_show(entries)}"


@pytest.mark.requirement("JWT-ANY-040")
def test_no_key_or_token_in_audit_log(trail: Trail) -> None:
    for calls in trail.calls.values():
        # Both known calls have landed, whatever the log says of them (the other checks judge that); this
        # one looks for credentials in everything written.
        trail.poll({"subject": calls.subject}, lambda es: len(es) >= 2)
    outcome, entries = trail.read({}, limit=10000)
    assert entries, f"POST /audit/logs returned no entries at all after the known calls: {shown(outcome)}"
    sources = [("POST /audit/logs", outcome.body), *trail.files()]
    known = [s.encode() for s in REDACTOR.secrets() if len(s) >= 8]
    leaks = []
    for where, data in sources:
        if any(s in data for s in known):
            leaks.append(f"{where}: a key or token this run used")
        if JWT_SHAPE.search(data):
            leaks.append(f"{where}: a JWT-shaped string")
    assert not leaks, "the audit log holds credentials: " + "; ".join(leaks)

"""The typed input of every report: requirements, test records and one run.

The pytest plugin builds a :class:`RunResult`; the verdict logic and the
writers only read it. ``to_dict``/``from_dict`` round-trip through the field
names that ``results.json`` publishes, so a stored run can be re-read by
``reports.compare``. Values are checked on construction: a malformed record is
a harness bug and must surface before it turns into a verdict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qdrant_conformance.reports.errors import ReportInputError
from qdrant_conformance.reports.severity import SEVERITIES

SCHEMA_VERSION = 1

#: Outcomes of one test, in the order the aggregate gives them precedence. ``info`` is an
#: observation (a test of an INFO-level requirement that saw what it records): never a finding.
OUTCOMES: tuple[str, ...] = ("error", "fail", "warning", "info", "pass", "unsupported", "disabled")
#: Shown for a requirement that has no record at all; never counted as an outcome.
NOT_RUN = "not run"
#: Shown for a failing requirement an active waiver covers; the records keep what the target did.
WAIVED = "waived"
LEVELS: tuple[str, ...] = ("MUST", "SHOULD", "INFO")
KINDS: tuple[str, ...] = ("security", "compatibility")
PROTOCOLS: tuple[str, ...] = ("rest", "grpc", "p2p", "any")
GATES: tuple[str, ...] = ("secure", "compatible", "both")


def _need_str(data: Mapping[str, Any], key: str, where: str, *, empty_ok: bool = False) -> str:
    value = data.get(key)
    if not isinstance(value, str) or (not empty_ok and not value.strip()):
        raise ReportInputError(f"{where}: field {key!r} must be a non-empty string, got {value!r}")
    return value


def _opt_str(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ReportInputError(f"{where}: field {key!r} must be a string or null, got {value!r}")
    return value


def _need_choice(value: object, choices: tuple[str, ...], what: str, where: str) -> str:
    if value not in choices:
        raise ReportInputError(f"{where}: {what} must be one of {', '.join(choices)}; got {value!r}")
    return str(value)


def _need_mapping(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ReportInputError(f"{where}: field {key!r} must be an object, got {type(value).__name__}")
    return dict(value)


def _need_list(data: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ReportInputError(f"{where}: field {key!r} must be a list, got {type(value).__name__}")
    return value


def _need_record(item: object, where: str) -> Mapping[str, Any]:
    if not isinstance(item, Mapping):
        raise ReportInputError(f"{where}: expected an object, got {type(item).__name__}")
    return item


def family_of(requirement_id: str) -> str:
    """``AUTH-REST-001`` → ``AUTH`` (the catalog's ID convention)."""
    return requirement_id.split("-", 1)[0]


@dataclass(frozen=True)
class Requirement:
    """One catalog entry: a single MUST/SHOULD/INFO sentence the target is held to.

    The one requirement type of the project: ``fixtures.catalog`` builds it from
    the YAML files, the plugin gates and maps outcomes with it, verdicts and
    writers read it. ``to_dict`` publishes what ``results.json`` carries; ``fix``
    and ``level_when`` stay with the catalog (a run's records already hold the
    level its declarations gave, and a fix note is in a failure's reason).
    """

    id: str
    family: str
    text: str
    level: str
    kind: str
    protocol: str
    since: str
    until: str | None
    source: str
    # Optional so that a catalog (or a results.json) written before these fields still loads.
    severity: str | None = None
    remediation: str = ""
    #: Set when ``since`` is the release that *fixed* a security flaw (advisory or fix commit, spec §9),
    #: rather than the one that introduced a feature: a target claiming an older release is still
    #: checked, and a failure names it a vulnerable release.
    fix: str | None = None
    #: ``(declaration, level)`` pairs: the level this requirement has in a run where the user made
    #: that declaration (e.g. ``--no-browser-clients`` makes an INFO observation a SHOULD).
    level_when: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        where = f"requirement {self.id!r}"
        if self.severity is not None:
            _need_choice(self.severity, SEVERITIES, "severity", where)
        if not self.id or any(c.isspace() for c in self.id):
            raise ReportInputError(f"requirement id {self.id!r} is empty or contains whitespace")
        if not self.text.strip() or not self.family.strip():
            raise ReportInputError(f"{where}: text and family must not be empty")
        _need_choice(self.level, LEVELS, "level", where)
        _need_choice(self.kind, KINDS, "kind", where)
        _need_choice(self.protocol, PROTOCOLS, "protocol", where)
        for _declaration, level in self.level_when:
            _need_choice(level, LEVELS, "level_when level", where)

    @property
    def is_should(self) -> bool:
        return self.level == "SHOULD"

    @property
    def is_info(self) -> bool:
        return self.level == "INFO"

    @property
    def is_fix(self) -> bool:
        return self.fix is not None

    def for_run(self, declarations: frozenset[str]) -> Requirement:
        """This requirement as a run with ``declarations`` holds it (its level may change)."""
        for declaration, level in self.level_when:
            if declaration in declarations:
                return dataclasses.replace(self, level=level)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "family": self.family,
            "text": self.text,
            "level": self.level,
            "kind": self.kind,
            "protocol": self.protocol,
            "since": self.since,
            "until": self.until,
            "source": self.source,
            "severity": self.severity,
            "remediation": self.remediation,
        }

    @classmethod
    def from_dict(cls, data: object) -> Requirement:
        d = _need_record(data, "requirement")
        rid = _need_str(d, "id", "requirement")
        where = f"requirement {rid}"
        since = d.get("since", "")
        return cls(
            id=rid,
            family=_opt_str(d, "family", where) or family_of(rid),
            text=_need_str(d, "text", where),
            level=_need_str(d, "level", where),
            kind=_need_str(d, "kind", where),
            protocol=_need_str(d, "protocol", where),
            # YAML turns an unquoted 1.10 into a float; keep what the catalog meant.
            since=str(since) if since is not None else "",
            until=None if d.get("until") is None else str(d.get("until")),
            source=_opt_str(d, "source", where) or "",
            severity=_opt_str(d, "severity", where),
            remediation=_opt_str(d, "remediation", where) or "",
        )


@dataclass(frozen=True)
class TestRecord:
    """The outcome of one test (one pytest node) against one requirement."""

    __test__ = False  # not a pytest test class, despite the name

    nodeid: str
    name: str
    classname: str
    requirement: str
    protocol: str
    outcome: str
    reason: str = ""
    evidence: list[str] = field(default_factory=list)
    duration: float = 0.0
    profile: str | None = None

    def __post_init__(self) -> None:
        where = f"test record {self.nodeid!r}"
        if not self.nodeid.strip():
            raise ReportInputError("test record with an empty nodeid")
        _need_choice(self.outcome, OUTCOMES, "outcome", where)
        if self.protocol:
            _need_choice(self.protocol, PROTOCOLS, "protocol", where)
        if self.duration < 0:
            raise ReportInputError(f"{where}: negative duration {self.duration}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "name": self.name,
            "classname": self.classname,
            "requirement": self.requirement,
            "protocol": self.protocol,
            "outcome": self.outcome,
            "reason": self.reason,
            "evidence": list(self.evidence),
            "duration": self.duration,
            "profile": self.profile,
        }

    @classmethod
    def from_dict(cls, data: object) -> TestRecord:
        d = _need_record(data, "test record")
        nodeid = _need_str(d, "nodeid", "test record")
        where = f"test record {nodeid}"
        evidence = _need_list(d, "evidence", where)
        if not all(isinstance(line, str) for line in evidence):
            raise ReportInputError(f"{where}: evidence must be a list of strings")
        duration = d.get("duration", 0.0)
        if not isinstance(duration, int | float) or isinstance(duration, bool):
            raise ReportInputError(f"{where}: duration must be a number, got {duration!r}")
        return cls(
            nodeid=nodeid,
            name=_opt_str(d, "name", where) or "",
            classname=_opt_str(d, "classname", where) or "",
            requirement=_opt_str(d, "requirement", where) or "",
            protocol=_opt_str(d, "protocol", where) or "",
            outcome=_need_str(d, "outcome", where),
            reason=_opt_str(d, "reason", where) or "",
            evidence=list(evidence),
            duration=float(duration),
            profile=_opt_str(d, "profile", where),
        )


@dataclass(frozen=True)
class BaselineEntry:
    """One waiver: a requirement the operator knowingly lets fail, on which targets, until when.

    An entry read from an old baseline file has no ``expires`` and no
    ``owner``; reports flag it as deprecated.
    """

    id: str
    reason: str
    target: str | None = None  # fnmatch glob over the target's label, URLs, image or binary
    expires: str | None = None  # YYYY-MM-DD: the last day the waiver applies (UTC)
    owner: str | None = None

    @property
    def legacy(self) -> bool:
        """Read from an old flat baseline file: no expiry."""
        return self.expires is None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "reason": self.reason}
        for key in ("target", "expires", "owner"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    @classmethod
    def from_dict(cls, data: object) -> BaselineEntry:
        d = _need_record(data, "baseline entry")
        rid = _need_str(d, "id", "baseline entry")
        where = f"baseline entry {rid}"
        return cls(
            id=rid,
            reason=_need_str(d, "reason", where),
            target=_opt_str(d, "target", where),
            expires=_opt_str(d, "expires", where),
            owner=_opt_str(d, "owner", where),
        )


@dataclass
class RunResult:
    """Everything one run produced; the single input of verdicts and writers."""

    run_id: str
    started_at: str
    finished_at: str
    suite_version: str
    target: dict[str, Any]
    target_version: str | None
    tool_versions: dict[str, str]
    strict: bool
    gate: str
    requirements: list[Requirement]
    records: list[TestRecord]
    baseline: list[BaselineEntry] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    #: --severity-threshold: the gate counts only findings at or above it (None: every failure).
    severity_threshold: str | None = None
    #: Set by :func:`reports.scrub.scrub_run` on the copy it returns; not published.
    scrubbed: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("run_id", "started_at", "finished_at", "suite_version"):
            if not str(getattr(self, name)).strip():
                raise ReportInputError(f"run {self.run_id!r}: field {name!r} must not be empty")
        _need_choice(self.gate, GATES, "gate", f"run {self.run_id!r}")
        if self.severity_threshold is not None:
            _need_choice(self.severity_threshold, SEVERITIES, "severity_threshold", f"run {self.run_id!r}")
        if self.schema_version != SCHEMA_VERSION:
            raise ReportInputError(
                f"run {self.run_id!r}: schema_version {self.schema_version} is not supported "
                f"(this suite reads {SCHEMA_VERSION})"
            )
        seen: set[str] = set()
        for req in self.requirements:
            if req.id in seen:
                raise ReportInputError(f"run {self.run_id!r}: requirement {req.id} listed twice")
            seen.add(req.id)

    def requirement_index(self) -> dict[str, Requirement]:
        return {req.id: req for req in self.requirements}

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "run_id": self.run_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "suite_version": self.suite_version,
            "target": dict(self.target),
            "target_version": self.target_version,
            "tool_versions": dict(self.tool_versions),
            "strict": self.strict,
            "gate": self.gate,
            "requirements": [req.to_dict() for req in self.requirements],
            "records": [rec.to_dict() for rec in self.records],
            "baseline": [entry.to_dict() for entry in self.baseline],
            "extras": dict(self.extras),
            "severity_threshold": self.severity_threshold,
        }

    @classmethod
    def from_dict(cls, data: object) -> RunResult:
        """Read a run back; keys a writer adds (``verdicts``, ``matrix``, ...) are ignored."""
        d = _need_record(data, "run")
        where = "run"
        schema_version = d.get("schema_version")
        if not isinstance(schema_version, int) or isinstance(schema_version, bool):
            raise ReportInputError(f"{where}: field 'schema_version' must be an integer")
        strict = d.get("strict", False)
        if not isinstance(strict, bool):
            raise ReportInputError(f"{where}: field 'strict' must be true or false, got {strict!r}")
        tool_versions = _need_mapping(d, "tool_versions", where)
        return cls(
            schema_version=schema_version,
            run_id=_need_str(d, "run_id", where),
            started_at=_need_str(d, "started_at", where),
            finished_at=_need_str(d, "finished_at", where),
            suite_version=_need_str(d, "suite_version", where),
            target=_need_mapping(d, "target", where),
            target_version=_opt_str(d, "target_version", where),
            tool_versions={str(k): "unknown" if v is None else str(v) for k, v in tool_versions.items()},
            strict=strict,
            gate=_need_str(d, "gate", where),
            requirements=[Requirement.from_dict(r) for r in _need_list(d, "requirements", where)],
            records=[TestRecord.from_dict(r) for r in _need_list(d, "records", where)],
            baseline=[BaselineEntry.from_dict(b) for b in _need_list(d, "baseline", where)],
            extras=_need_mapping(d, "extras", where),
            severity_threshold=_opt_str(d, "severity_threshold", where),
        )

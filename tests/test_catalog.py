"""The requirement catalog is well formed and every requirement has a test, and every test a requirement."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from qdrant_conformance.fixtures.catalog import SEVERITIES, CatalogError, load_requirements, run_requirements
from qdrant_conformance.fixtures.catalog import _entry as parse_entry

ROOT = Path(__file__).resolve().parents[1]


def collected_requirements() -> dict[str, list[str]]:
    """Requirement id → the suite test ids that name it (from a real collection)."""
    code = (
        "import sys, pytest\n"
        "class P:\n"
        "    def __init__(self): self.found = {}\n"
        "    def pytest_collection_finish(self, session):\n"
        "        for item in session.items:\n"
        "            for m in item.iter_markers('requirement'):\n"
        "                self.found.setdefault(m.args[0], []).append(item.nodeid)\n"
        "p = P()\n"
        "rc = pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', 'suites/'], plugins=[p])\n"
        "import json; print('JSON' + json.dumps(p.found))\n"
        "sys.exit(0 if rc in (0, 5) else rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("JSON"))
    import json

    return dict(json.loads(line[4:]))


def test_every_requirement_has_a_test_and_every_test_a_requirement():
    catalog = load_requirements()
    found = collected_requirements()
    untested = sorted(set(catalog) - set(found))
    unknown = sorted(set(found) - set(catalog))
    assert not unknown, f"tests name requirements missing from the catalog: {unknown}"
    assert not untested, f"requirements without a test: {untested}"


def test_catalog_entries_are_complete():
    catalog = load_requirements()
    assert len(catalog) >= 20
    for req in catalog.values():
        assert req.text.endswith("."), req.id
        if req.level == "INFO":
            # An observation says what it records; it never reads as a MUST.
            assert "MUST" not in req.text and "recorded for information" in req.text.lower(), req.id
        else:
            assert ("MUST" in req.text) or ("SHOULD" in req.text), f"{req.id}: say MUST or SHOULD"
        if req.level == "SHOULD" or "SHOULD" in dict(req.level_when).values():
            assert "SHOULD" in req.text, req.id


def test_a_declaration_sets_the_level_of_an_observation():
    catalog = run_requirements()
    declared = run_requirements(frozenset({"no_browser_clients"}))
    assert catalog["HARD-REST-013"].level == "INFO" and declared["HARD-REST-013"].level == "SHOULD"
    # Nothing else changes with the declaration.
    assert {rid for rid in catalog if catalog[rid] != declared[rid]} == {"HARD-REST-013"}
    base = {"id": "HARD-REST-099", "text": "x is recorded for information.", "level": "INFO", "kind": "security",
            "protocol": "rest", "since": "1.0.0", "source": "s"}
    with pytest.raises(CatalogError, match="level_when"):
        parse_entry({**base, "level_when": {"browser_clients": "SHOULD"}}, "t[0]")
    with pytest.raises(CatalogError, match="level_when"):
        parse_entry({**base, "level_when": {"no_browser_clients": "MAY"}}, "t[0]")
    assert parse_entry({**base, "level_when": {"no_browser_clients": "MUST"}}, "t[0]").level == "INFO"


def test_every_requirement_has_a_severity_and_a_remediation():
    # The findings in every report carry both; a requirement without them cannot be acted on.
    catalog = load_requirements()
    unrated = sorted(rid for rid, req in catalog.items() if req.severity not in SEVERITIES)
    unfixed = sorted(rid for rid, req in catalog.items() if len(req.remediation) < 20)
    assert not unrated, f"requirements without a severity (rubric: fixtures/catalog/README.md): {unrated}"
    assert not unfixed, f"requirements without a remediation: {unfixed}"
    # A security MUST that lets anyone in is never rated below high.
    for rid in ("AUTH-REST-001", "AUTH-GRPC-001", "AUTHZ-REST-001", "AUTHZ-GRPC-001"):
        assert catalog[rid].severity == "critical", rid


def test_catalog_severity_and_remediation_are_checked_when_present():
    base = {"id": "AUTH-REST-001", "text": "x MUST y.", "level": "MUST", "kind": "security", "protocol": "rest",
            "since": "1.0.0", "source": "s"}
    assert parse_entry(base, "t[0]").severity is None  # a requirement from another branch still loads
    with pytest.raises(CatalogError, match="severity 'urgent'"):
        parse_entry({**base, "severity": "urgent"}, "t[0]")
    with pytest.raises(CatalogError, match="empty remediation"):
        parse_entry({**base, "severity": "high", "remediation": " "}, "t[0]")


@pytest.mark.parametrize(
    "raw, problem",
    [
        ({"id": "auth-rest-1"}, "bad requirement id"),
        ({"id": "AUTH-REST-001", "text": "x"}, "lacks"),
        ({"id": "AUTH-REST-001", "text": "x", "level": "MAY", "kind": "security", "protocol": "rest",
          "since": "1.0.0", "source": "s"}, "bad level"),
    ],
)
def test_malformed_entries_are_rejected(raw, problem):
    with pytest.raises(CatalogError, match=problem):
        parse_entry(raw, "test.yaml[0]")


def test_the_catalog_builds_the_one_requirement_type_the_reports_read():
    # One type from YAML to report: no dict in between, nothing for the reports to re-derive.
    from qdrant_conformance.reports.model import Requirement
    from qdrant_conformance.reports.scrub import scrub_run

    catalog = load_requirements()
    assert all(type(req) is Requirement for req in catalog.values())
    fixed = next(req for req in catalog.values() if req.is_fix)
    declared = catalog["HARD-REST-013"]
    assert declared.level_when
    # The published fields round-trip; fix and level_when stay with the catalog (results.json never had them).
    assert Requirement.from_dict(fixed.to_dict()) == dataclasses.replace(fixed, fix=None, level_when=())
    assert set(fixed.to_dict()) == {"id", "family", "text", "level", "kind", "protocol", "since", "until",
                                     "source", "severity", "remediation"}
    from qdrant_conformance.reports.model import RunResult

    run = RunResult(run_id="r", started_at="t", finished_at="t", suite_version="0", target={}, target_version=None,
                    tool_versions={}, strict=False, gate="secure", requirements=[fixed, declared], records=[])
    assert scrub_run(run).requirements == [fixed, declared]  # scrubbing keeps every field of the catalog's objects

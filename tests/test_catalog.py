"""The requirement catalog is well formed and every requirement has a test, and every test a requirement."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.catalog import CatalogError, load_requirements
from fixtures.catalog import _entry as parse_entry

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
        assert ("MUST" in req.text) or ("SHOULD" in req.text), f"{req.id}: say MUST or SHOULD"
        if req.level == "SHOULD":
            assert "SHOULD" in req.text, req.id


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

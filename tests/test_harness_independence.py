"""The harness and the reference server are written independently (docs/DESIGN.md): neither imports the other.

The one exception is the fault catalog, ``reference_server.faults``: pure data the harness
reads to validate ``--reference-fault`` and to serve a certificate fault's leaf. The import
rules for ``fixtures/``, ``reports/`` and ``reference_server/`` are in ``tests/test_layering.py``;
here: the suites, and the two values both sides know (the default version, how a version reads).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

import qdrant_conformance.reference_server as reference_server
from qdrant_conformance.fixtures.version import REFERENCE_DEFAULT_VERSION, parse_version
from qdrant_conformance.reference_server.versioning import parse_version as server_parse_version

ROOT = Path(__file__).resolve().parents[1]
#: What the harness may import of the reference server.
ALLOWED = {"reference_server.faults"}
NAMESPACE = "qdrant_conformance."


def _imports(path: Path) -> set[str]:
    """Absolute module names ``path`` imports (``from reference_server import faults``: ``reference_server.faults``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.removeprefix(NAMESPACE) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            module = node.module.removeprefix(NAMESPACE)
            found |= {f"{module}.{alias.name}" if module == "reference_server" else module for alias in node.names}
    return found


def test_suites_and_conftest_import_only_the_fault_catalog() -> None:
    """``tests/test_layering.py`` holds ``fixtures/`` and ``reports/`` to this; the suites and conftest too."""
    files = [*sorted((ROOT / "suites").glob("*.py")), ROOT / "conftest.py"]
    wrong = {str(p.relative_to(ROOT)): sorted(m for m in _imports(p)
                                             if m.split(".")[0] == "reference_server" and m not in ALLOWED)
             for p in files}
    wrong = {path: names for path, names in wrong.items() if names}
    assert not wrong, f"suites import the reference server's internals: {wrong}"


def test_harness_knows_the_reference_servers_default_version() -> None:
    assert REFERENCE_DEFAULT_VERSION == reference_server.DEFAULT_VERSION


@pytest.mark.parametrize("text", ["1.19.0", "v1.9", "1.7", "2", "1.19.0-rc1", "1.18.3+build.7", " 1.2.3 ",
                                  "1.2.3.4", "x1.2", "", "1.a.0", "1..0"])
def test_harness_and_server_read_versions_alike(text: str) -> None:
    """Two parsers on purpose (independence); they must agree, or a gate and the server would disagree."""
    def read(parse: Callable[[str], tuple[int, int, int]]) -> tuple[int, int, int] | None:
        try:
            return parse(text)
        except ValueError:
            return None

    assert read(parse_version) == read(server_parse_version)

"""Every profile a suite module asks for by name is in its ``pytest.mark.profiles`` declaration.

The declaration is what the run starts in the background as it begins
(``ServerPool.prefetch``); a profile missing from it still works, but starts
late, inside the test that first asks for it. Names computed at run time
(``qdrant(name)``) are not seen here; the declaration lists them by hand.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from qdrant_conformance.fixtures.profiles import profile

SUITES = sorted((Path(__file__).resolve().parents[1] / "suites").glob("test_*.py"))


def _declared(tree: ast.Module) -> set[str]:
    for node in tree.body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark"
                                                 for t in node.targets)
                and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Attribute)
                and node.value.func.attr == "profiles"):
            return {a.value for a in node.value.args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    return set()


def _named(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)):
            continue
        func = node.func
        if (isinstance(func, ast.Name) and func.id == "qdrant") or (
                isinstance(func, ast.Attribute) and func.attr == "get"
                and isinstance(func.value, ast.Name) and func.value.id == "server_pool"):
            names.add(node.args[0].value)
    return names


@pytest.mark.parametrize("path", SUITES, ids=[p.name for p in SUITES])
def test_named_profiles_are_declared(path: Path) -> None:
    tree = ast.parse(path.read_text())
    declared, named = _declared(tree), _named(tree)
    assert named <= declared, f"{path.name}: profiles used but not in pytest.mark.profiles: {sorted(named - declared)}"
    for name in declared:
        profile(name)  # an unknown profile name raises

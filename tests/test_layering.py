"""The dependency map stays a map: who may import whom, no circles, no oversized modules.

Read from source with :mod:`ast`, so nothing here is imported or run.

How imports count:

- **Module-level imports** (anywhere outside a function body, including under ``try`` or a
  module-level ``if``) are edges of the import graph, and the graph must have no circle. An
  import of ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``, so it is an edge to each
  of those packages too (except the importing module's own ancestors, which are already
  loading).
- **Imports under ``if TYPE_CHECKING:``** never run: they are no edge and break no rule.
- **Function-local imports** run when the function is called, after every module-level import
  finished, so they cannot form an import-time circle and are left out of the circle check.
  They still count for the direction rules (``reports/`` importing the harness inside a
  function is as much a dependency as at the top).
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("fixtures", "reports", "reference_server")
MAX_LINES = 400
#: Installed (and imported) under this namespace; module names here leave it off.
NAMESPACE = "qdrant_conformance."
#: What a module over :data:`MAX_LINES` must say in its first docstring.
OVER_LIMIT_NOTE = "Over 400 lines:"


@dataclass(frozen=True)
class Import:
    importer: str  # module name, e.g. "fixtures.plugin"
    target: str  # the module (or package) imported, e.g. "reports.model"
    names: tuple[str, ...]  # for ``from X import a, b``: ("a", "b"); empty for ``import X``
    module_level: bool
    line: int


@functools.cache
def modules() -> dict[str, Path]:
    """Every module of our packages by dotted name (a package by its own name, for ``__init__.py``)."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _is_package(name: str) -> bool:
    return modules()[name].name == "__init__.py"


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, in_function: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _type_checking(child.test):
            for other in child.orelse:
                yield from _walk(other, in_function)
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, in_function
        nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        yield from _walk(child, nested)


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return (node.module or "").removeprefix(NAMESPACE)
    base = importer.split(".")
    if not _is_package(importer):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


@functools.cache
def imports() -> tuple[Import, ...]:
    found: list[Import] = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, in_function in _walk(tree, False):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.append(Import(name, alias.name.removeprefix(NAMESPACE), (), not in_function, node.lineno))
            else:
                target = _resolve(name, node)
                found.append(Import(name, target, tuple(a.name for a in node.names), not in_function, node.lineno))
    return tuple(found)


def _ours(target: str) -> bool:
    return target.split(".", 1)[0] in PACKAGES


def _edges(imp: Import) -> set[str]:
    """The modules of ours that executing ``imp`` loads directly (the module, its packages, submodules named)."""
    known = modules()
    if not _ours(imp.target):
        return set()
    loaded: set[str] = set()
    parts = imp.target.split(".")
    for i in range(1, len(parts) + 1):
        prefix = ".".join(parts[:i])
        if prefix in known:
            loaded.add(prefix)
    for name in imp.names:  # ``from pkg import submodule``
        if f"{imp.target}.{name}" in known:
            loaded.add(f"{imp.target}.{name}")
    own = imp.importer.split(".")
    ancestors = {".".join(own[:i]) for i in range(1, len(own))}
    return loaded - ancestors - {imp.importer}


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in modules()}
    for imp in imports():
        if imp.module_level:
            graph[imp.importer] |= _edges(imp)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _where(imp: Import) -> str:
    return f"{modules()[imp.importer].relative_to(ROOT)}:{imp.line} imports {imp.target}"


def _in(package: str, name: str) -> bool:
    return name == package or name.startswith(package + ".")


# ---------------------------------------------------------------------------
# the rules


def test_the_packages_are_parsed() -> None:
    assert {"fixtures.plugin", "reports.model", "reference_server.server"} <= set(modules())
    assert any(imp.importer == "fixtures.catalog" and imp.target == "reports.model" for imp in imports())


def _server_only(circle: list[str]) -> bool:
    return all(_in("reference_server", name) for name in circle)


def test_no_import_circle() -> None:
    found = [c for c in circles(import_graph()) if not _server_only(c)]
    assert not found, "module-level import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_no_import_circle_in_the_reference_server() -> None:
    found = [c for c in circles(import_graph()) if _server_only(c)]
    assert not found, "module-level import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_circle_check_sees_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_reports_import_neither_harness_nor_server() -> None:
    bad = [_where(imp) for imp in imports()
           if _in("reports", imp.importer) and (_in("fixtures", imp.target) or _in("reference_server", imp.target))]
    assert not bad, "reports/ must stand alone (the harness imports reports, never the reverse):\n" + "\n".join(bad)


def test_reference_server_does_not_import_the_harness_or_reports() -> None:
    bad = [_where(imp) for imp in imports()
           if _in("reference_server", imp.importer) and (_in("fixtures", imp.target) or _in("reports", imp.target))]
    assert not bad, "\n".join(bad)


#: The one module of the reference server the harness reads: the fault catalog, data only (``--reference-fault``
#: validation, a certificate fault's leaf); importing it loads nothing else of the server.
HARNESS_MAY_READ = frozenset({"reference_server.faults"})


def test_harness_does_not_import_the_reference_server() -> None:
    bad = [_where(imp) for imp in imports() if _in("fixtures", imp.importer) and _in("reference_server", imp.target)
           and imp.target not in HARNESS_MAY_READ]
    assert not bad, "the harness and the reference server are written independently (docs/DESIGN.md):\n" + "\n".join(
        bad
    )


def _suite_imports() -> Iterator[tuple[Path, ast.ImportFrom]]:
    for path in sorted((ROOT / "suites").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and _in("fixtures", node.module):
                yield path, node


def _private_names(path: Path, node: ast.ImportFrom) -> list[str]:
    private = [a.name for a in node.names if a.name.startswith("_")]
    private += [part for part in (node.module or "").split(".") if part.startswith("_") and part != "__init__"]
    return [f"{path.relative_to(ROOT)}:{node.lineno} from {node.module} import {name}" for name in private]


def test_suites_import_no_private_harness_name() -> None:
    bad = [line for path, node in _suite_imports() for line in _private_names(path, node)]
    assert not bad, "suites use the harness's public names only:\n" + "\n".join(bad)


def test_the_private_name_check_sees_one() -> None:
    node = ast.parse("from fixtures.plugin import _gate_version, PROFILES_KEY").body[0]
    assert isinstance(node, ast.ImportFrom)
    assert _private_names(ROOT / "suites" / "x.py", node) == ["suites/x.py:1 from fixtures.plugin import _gate_version"]


#: The target kinds (``--target``): suites ask a target what it can do, never which kind it is.
TARGET_KINDS = frozenset({"process", "binary", "docker", "external"})


def _kind_tests(path: Path, tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        named = any(isinstance(o, ast.Attribute) and o.attr in ("kind", "target") for o in operands)
        kinds = [o.value for o in operands if isinstance(o, ast.Constant) and o.value in TARGET_KINDS]
        if named and kinds:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} tests the target kind {kinds[0]!r}")
    return found


def test_suites_ask_capabilities_not_target_kinds() -> None:
    bad = [line for path in sorted((ROOT / "suites").glob("*.py"))
           for line in _kind_tests(path, ast.parse(path.read_text(encoding="utf-8")))]
    assert not bad, "\n".join(bad)


def test_the_kind_check_sees_one() -> None:
    tree = ast.parse('if server.launcher.kind == "docker" or opts.target != "external" or x == "docker": pass')
    assert len(_kind_tests(ROOT / "suites" / "x.py", tree)) == 2


def _too_long(text: str) -> bool:
    """Over :data:`MAX_LINES` lines, and the module's docstring does not say why."""
    if text.count("\n") <= MAX_LINES:
        return False
    doc = ast.get_docstring(ast.parse(text)) or ""
    return not any(OVER_LIMIT_NOTE in line for line in doc.splitlines())


def _oversized() -> list[str]:
    return [f"{path.relative_to(ROOT)}: {path.read_text(encoding='utf-8').count(chr(10))} lines, "
            f"no '{OVER_LIMIT_NOTE} <why>' in its docstring"
            for path in sorted(modules().values()) if _too_long(path.read_text(encoding="utf-8"))]


def test_the_size_check_reads_the_reason() -> None:
    body = "x = 1\n" * (MAX_LINES + 1)
    assert _too_long('"""A module."""\n' + body)
    assert not _too_long('"""A module.\n\nOver 400 lines: one table, read as a whole.\n"""\n' + body)
    assert not _too_long(body[: 6 * MAX_LINES])


def test_modules_of_fixtures_and_reports_stay_small() -> None:
    bad = [line for line in _oversized() if not _owned_elsewhere(line)]
    assert not bad, "split along a seam, or say why at the top:\n" + "\n".join(bad)


#: Oversized modules another part of issue 11 splits (r11b: reference_server/); none left in fixtures/.
_ELSEWHERE: tuple[str, ...] = ()


def _owned_elsewhere(line: str) -> bool:
    return line.startswith(_ELSEWHERE)


def test_no_module_over_the_limit_without_a_reason() -> None:
    bad = _oversized()
    assert not bad, "\n".join(bad)

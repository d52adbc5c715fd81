"""Meta-tests of the access table and the authorization sweep built on it.

Like Qdrant's own auth tests (anchors §A), the table is data and these tests
hold it to the API: every route and method qdrant-client knows is in it, every
request in it is valid, and every row is exercised by the sweep. They also
show that the sweep's checks fail on a dead or wide-open server.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import qdrant_client

from qdrant_conformance.fixtures.catalog import load_requirements
from qdrant_conformance.fixtures.catalog.access import (
    AccessRow,
    AccessTableError,
    _row,
    grpc_rows,
    load_access_table,
    normalise_template,
    parse,
    rest_rows,
    sweep_coverage,
)
from qdrant_conformance.fixtures.catalog.access_requests import (
    Names,
    grpc_request_bytes,
    grpc_request_class,
    rest_body,
    rest_path,
)
from qdrant_conformance.fixtures.outcomes import Outcome

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ROOT / "suites" / "test_authz_sweep.py"


# -- what qdrant-client knows ------------------------------------------------------------------


@functools.cache
def client_rest_routes() -> dict[tuple[str, str], str | None]:
    """(METHOD, template) → the pydantic body model name, from an AST parse of qdrant-client's API modules.

    Each generated ``_build_for_*`` method calls ``api_client.request(method=..., url=...)``
    and passes its body through ``jsonable_encoder(<param>)``; the parameter's
    annotation names the request model.
    """
    api_dir = Path(qdrant_client.__file__).parent / "http" / "api"
    routes: dict[tuple[str, str], str | None] = {}
    for path in sorted(api_dir.glob("*_api.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef) or not fn.name.startswith("_build_for_"):
                continue
            annotations = {a.arg: a.annotation for a in fn.args.args}
            method = url = model = None
            for node in ast.walk(fn):
                if not isinstance(node, ast.Call):
                    continue
                if isinstance(node.func, ast.Name) and node.func.id == "jsonable_encoder" and node.args:
                    arg = node.args[0]
                    ann = annotations.get(arg.id) if isinstance(arg, ast.Name) else None
                    if isinstance(ann, ast.Attribute):
                        model = ann.attr
                if isinstance(node.func, ast.Attribute) and node.func.attr == "request":
                    kw = {k.arg: k.value for k in node.keywords}
                    if "method" in kw and "url" in kw:
                        method, url = ast.literal_eval(kw["method"]), ast.literal_eval(kw["url"])
            if method and url:
                routes[(method, normalise_template(url))] = model
    return routes


def client_grpc_methods() -> list[str]:
    import importlib

    import qdrant_client.grpc as package

    methods = []
    for module_path in sorted(Path(package.__file__).parent.glob("*_pb2.py")):
        module = importlib.import_module(f"{package.__name__}.{module_path.stem}")
        for service in module.DESCRIPTOR.services_by_name.values():
            methods.extend(f"/{service.full_name}/{m.name}" for m in service.methods)
    return methods


def test_qdrant_client_surface_is_what_the_table_was_written_against():
    # If qdrant-client grows or shrinks, the table must be revisited, not silently pass.
    assert len(client_rest_routes()) == 69
    assert len(client_grpc_methods()) == 51


def test_every_qdrant_client_rest_route_is_in_the_table():
    table = {r.rest.template_key for r in rest_rows() if r.rest}
    missing = sorted(f"{m} {p}" for m, p in client_rest_routes() if (m, p) not in table)
    assert not missing, f"REST routes qdrant-client knows but the access table lacks: {missing}"


def test_every_qdrant_client_grpc_method_is_in_the_table():
    table = {r.grpc for r in grpc_rows()}
    missing = sorted(m for m in client_grpc_methods() if m not in table)
    assert not missing, f"gRPC methods qdrant-client knows but the access table lacks: {missing}"


def test_table_covers_the_server_only_surface_the_spec_names():
    rest = {f"{r.rest.method} {normalise_template(r.rest.path)}" for r in rest_rows() if r.rest}
    grpc = {r.grpc for r in grpc_rows()}
    wanted_rest = [
        "POST /collections/{}/points/search", "POST /collections/{}/points/search/batch",
        "POST /collections/{}/points/search/groups", "POST /collections/{}/points/recommend",
        "POST /collections/{}/points/recommend/batch", "POST /collections/{}/points/recommend/groups",
        "POST /collections/{}/points/discover", "POST /collections/{}/points/discover/batch",
        "GET /metrics", "GET /telemetry", "GET /cluster", "GET /cluster/telemetry", "GET /cluster/metadata/keys",
        "GET /cluster/metadata/keys/{}", "PUT /cluster/metadata/keys/{}", "DELETE /cluster/metadata/keys/{}",
        "GET /issues", "DELETE /issues", "GET /logger", "POST /logger", "GET /debugger", "PATCH /debugger",
        "GET /profiler/slow_requests", "GET /stacktrace", "POST /audit/logs", "GET /collections/{}/memory",
        "POST /collections/{}/truncate_unapplied_wal", "GET /collections/{}/shards/{}/snapshot",
        "GET /collections/{}/shards/{}/snapshot/partial/manifest",
        "POST /collections/{}/shards/{}/snapshot/partial/create",
        "POST /collections/{}/shards/{}/snapshot/partial/recover",
        "POST /collections/{}/shards/{}/snapshot/partial/recover_from",
        "POST /collections/{}/shards/{}/points", "POST /collections/{}/shards/{}/points/scroll",
        "POST /collections/{}/shards/{}/points/count",
    ]
    wanted_grpc = [
        *(f"/qdrant.StorageRead/{m}" for m in ("ListFiles", "FileExists", "FileLength", "ReadBytes",
                                                 "ReadBytesStream", "ReadWhole", "ReadBatch")),
        *(f"/qdrant.ShardSnapshots/{m}" for m in ("Create", "List", "Delete", "Recover")),
        "/qdrant.Quotas/Get", "/qdrant.Quotas/Update",
        "/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ]
    assert not [r for r in wanted_rest if r not in rest], "server-only REST routes missing"
    assert not [g for g in wanted_grpc if g not in grpc], "server-only gRPC methods missing"
    counts = sweep_coverage()
    assert counts["rest_routes"] >= 90 and counts["grpc_methods"] >= 50, counts


# -- well-formed ---------------------------------------------------------------------------------


def test_table_loads_with_unique_ids_and_valid_values():
    rows = load_access_table()
    assert len({r.id for r in rows}) == len(rows)
    assert {r.access for r in rows} <= {"none", "read", "manage"}
    for row in rows:
        assert row.source.strip(), row.id
        if row.since_basis == "conservative" or row.exact_refusal is False or row.ro_checked is False:
            assert row.note or "spec" in row.source, f"{row.id}: say why in a note"


@pytest.mark.parametrize("raw, problem", [
    ({"id": "x", "access": "write", "source": "s", "rest": {"method": "GET", "path": "/x"}}, "access"),
    ({"id": "x", "access": "read", "source": "s"}, "needs rest, grpc"),
    ({"id": "x", "access": "read", "rest": {"method": "GET", "path": "/x"}}, "source"),
    ({"id": "x", "access": "read", "source": "s", "rest": {"method": "GET", "path": "/c/{collection_name}"}},
     "names none"),
    ({"id": "x", "access": "read", "source": "s", "grpc": "qdrant.Points/Get"}, "method path"),
    ({"id": "x", "access": "read", "source": "s", "grpc": "/a.B/C", "refusal": "xml"}, "refusal"),
    ({"id": "x", "access": "read", "source": "s", "grpc": "/a.B/C", "since": "1.9"}, "X.Y.Z"),
    ({"id": "x", "access": "read", "source": "s", "grpc": "/a.B/C", "colour": "red"}, "unknown fields"),
])
def test_loader_rejects_malformed_rows(raw, problem):
    with pytest.raises(AccessTableError, match=problem):
        _row(raw, 0)


def test_loader_rejects_duplicate_routes(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(
        "rows:\n"
        "- {id: a, access: read, source: s, rest: {method: GET, path: /collections}}\n"
        "- {id: b, access: read, source: s, rest: {method: GET, path: /collections/}}\n")
    with pytest.raises(AccessTableError, match="duplicate REST route"):
        load_access_table(path)


@pytest.mark.parametrize("row", grpc_rows(), ids=lambda r: r.id)
def test_grpc_requests_parse_into_their_message_classes(row: AccessRow):
    assert row.grpc is not None
    cls = grpc_request_class(row.grpc)
    names = Names.unique("meta")
    data = grpc_request_bytes(row, names)  # ParseDict raises on unknown fields
    if cls is not None:
        message = cls.FromString(data)
        if row.collection:
            assert names.collection_for(row).encode() in data, f"{row.id}: collection not substituted"
        if any(f.name == "collection_name" for f in cls.DESCRIPTOR.fields):
            assert message.collection_name, f"{row.id}: a request without a collection is not valid"
    else:
        assert not row.request, f"{row.id}: untyped methods can only send an empty or raw request"
    assert b"${" not in data


def _validate(model_name: str, body: Any) -> None:
    from pydantic import TypeAdapter
    from qdrant_client.http import models

    model = getattr(models, model_name)
    TypeAdapter(model).validate_python(body)


REST_WITH_MODELS = [(r, m) for r in rest_rows() for key, m in client_rest_routes().items()
                    if r.rest and r.rest.template_key == key and m]


@pytest.mark.parametrize("row, model", REST_WITH_MODELS, ids=lambda v: v.id if isinstance(v, AccessRow) else v)
def test_rest_bodies_validate_against_qdrant_client_models(row: AccessRow, model: str):
    names = Names.unique("meta")
    body = rest_body(row, names)
    assert body is not None, f"{row.id}: {row.rest} takes a {model} body; the table sends none"
    _validate(model, body)
    assert "${" not in str(body)


def test_rest_rows_without_a_client_model_are_known():
    # Bodies we cannot validate against qdrant-client: the legacy point routes and
    # server-only ones. Listed so a new unvalidated body is a deliberate choice.
    modelled = {r.id for r, _ in REST_WITH_MODELS}
    unvalidated = sorted(r.id for r in rest_rows() if r.body is not None and r.id not in modelled)
    assert unvalidated == sorted([
        "audit_logs", "discover_batch_points", "discover_points", "partial_snapshot_create",
        "partial_snapshot_recover_from", "recommend_batch_points", "recommend_point_groups", "recommend_points",
        "search_batch_points", "search_point_groups", "search_points", "shard_count_points",
        "shard_get_points", "shard_scroll_points", "update_cluster_metadata_key", "update_debugger",
        "update_logger",
    ])


def test_rest_paths_fill_every_placeholder():
    names = Names.unique("meta")
    for row in rest_rows():
        path = rest_path(row, names)
        assert "{" not in path and "}" not in path, row.id
        if row.collection:
            assert names.collection_for(row) in path or "${collection}" in str(row.body), row.id


def test_destructive_rows_use_the_scratch_collection():
    # Rows that delete, overwrite or recover a whole collection must never touch the main one.
    for row_id in ("delete_collection", "create_collection", "recover_from_snapshot", "upload_snapshot",
                   "recover_shard_snapshot", "upload_shard_snapshot", "partial_snapshot_recover",
                   "partial_snapshot_recover_from", "truncate_unapplied_wal"):
        row = next(r for r in load_access_table() if r.id == row_id)
        assert row.collection == "scratch", row_id


def test_spec_anchors_hold_in_the_table():
    # A few lines of spec §3/§4 restated independently, so an edit to the table that
    # contradicts them fails here too.
    by_id = {r.id: r for r in load_access_table()}
    assert by_id["stream_shard_snapshot"].access == "manage" and by_id["stream_shard_snapshot"].refusal == "text"
    for upload in ("upload_snapshot", "upload_shard_snapshot", "partial_snapshot_recover"):
        assert by_id[upload].refusal == "text" and by_id[upload].refusal_since == "1.18.1"
    for read in ("metrics", "telemetry", "get_issues", "get_logger", "cluster_status", "get_snapshot",
                 "get_full_snapshot", "get_shard_snapshot", "list_full_snapshots", "storage_read_read_whole"):
        assert by_id[read].access == "read", read
    for manage in ("clear_issues", "update_logger", "get_debugger", "stacktrace", "audit_logs",
                   "update_quotas", "recover_current_peer", "remove_peer", "batch_update"):
        assert by_id[manage].access == "manage", manage
    whitelisted = {r.id for r in load_access_table() if r.access == "none"}
    assert whitelisted == {"root", "healthz", "livez", "readyz", "health_check", "grpc_health_check"}
    assert by_id["reflection_v1"].access == "read"
    assert by_id["storage_read_list_files"].since == "1.18.0"


# -- the sweep exercises every row ---------------------------------------------------------------


def _sweep_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("qsc_authz_sweep_under_test", SWEEP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is built.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def collected_sweep_ids(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = tmp_path_factory.mktemp("collect-reports")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "--report-dir", str(out), str(SWEEP)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    # The plugin judges a collect-only session as "nothing ran" (exit 3); collection itself worked
    # when pytest did not report a usage or collection error (exit 2 or 4).
    assert proc.returncode in (0, 3, 5), proc.stdout[-3000:] + proc.stderr[-3000:]
    ids = re.findall(r"test_authz\[([^\]]+)\]", proc.stdout)
    assert ids, proc.stdout[-2000:]
    return ids


def test_every_row_and_protocol_is_exercised_by_the_sweep(collected_sweep_ids):
    seen = {tuple(i.split("-")[:2]) for i in collected_sweep_ids}
    wanted = {(r.id, "rest") for r in rest_rows()} | {(r.id, "grpc") for r in grpc_rows()}
    missing = sorted("-".join(w) for w in wanted - seen)
    assert not missing, f"access-table rows the sweep never calls: {missing}"


def test_sweep_applies_every_check_a_row_calls_for(collected_sweep_ids):
    ids = set(collected_sweep_ids)
    problems = []
    for row in load_access_table():
        for proto in [p for p, present in (("rest", row.rest), ("grpc", row.grpc)) if present]:
            wanted = {"manage", "alt", "hygiene"}
            if row.access == "none":
                wanted.add("whitelist")
            else:
                wanted |= {"unauth", "unauth_401"}
                # The pre-v1.9.0 answer only for rows that existed before v1.9.0.
                if row.since is None or parse(row.since) < (1, 9, 0):
                    wanted.add("unauth_403")
                if row.access == "manage" and row.ro_checked:
                    wanted.add("ro_write")
                    if row.exact_refusal:
                        wanted.add("ro_write_403")
                if row.access == "read" and row.ro_checked:
                    wanted.add("ro_read")
            problems += [f"{row.id}-{proto}-{c}" for c in sorted(wanted) if f"{row.id}-{proto}-{c}" not in ids]
    assert not problems, f"sweep tests missing: {problems}"


def test_sweep_ids_match_the_importable_case_list(collected_sweep_ids):
    module = _sweep_module()
    assert sorted(module.case_ids()) == sorted(collected_sweep_ids)
    assert module.sweep_coverage() == sweep_coverage()


def test_sweep_requirements_are_in_the_catalog():
    module = _sweep_module()
    catalog = load_requirements()
    used = {case.requirement for case in module.CASES}
    assert used <= set(catalog)
    authz = {rid for rid in catalog if rid.startswith("AUTHZ-")}
    special = {"AUTHZ-REST-011", "AUTHZ-REST-012", "AUTHZ-REST-013", "AUTHZ-REST-014", "AUTHZ-REST-015",
               "AUTHZ-REST-016", "AUTHZ-REST-017", "AUTHZ-REST-018", "AUTHZ-REST-019", "AUTHZ-REST-020",
               "AUTHZ-REST-021", "AUTHZ-REST-022", "AUTHZ-GRPC-010", "AUTHZ-ANY-002"}
    assert authz - used == special


# -- the checks cannot pass on a dead or open server ---------------------------------------------


def _rest(status: int | None, body: bytes = b"", ctype: str = "") -> Outcome:
    if status is None:
        return Outcome(protocol="rest", request="r", refused="connection refused")
    return Outcome(protocol="rest", request="r", status=status, body=body,
                   headers={"content-type": ctype} if ctype else {})


def _grpc(code: str | None, details: str = "") -> Outcome:
    if code is None:
        return Outcome(protocol="grpc", request="g", refused="UNAVAILABLE: failed to connect")
    return Outcome(protocol="grpc", request="g", code=code, body=details.encode())


CLASSES = ("none", "wrong", "read_only", "manage", "manage_bearer", "alt")


def _case(module: ModuleType, row_id: str, protocol: str, check: str) -> Any:
    return next(c for c in module.CASES if c.row.id == row_id and c.protocol == protocol and c.check == check)


@pytest.fixture(scope="module")
def sweep() -> Iterator[ModuleType]:
    yield _sweep_module()


V = (1, 19, 0)


def test_dead_server_never_passes_a_refusal_check(sweep):
    """No answer is no allowance: each check either fails or is undecided (reported as error)."""
    dead_rest = {c: _rest(None) for c in CLASSES}
    dead_grpc = {c: _grpc(None) for c in CLASSES}
    for check in ("unauth", "unauth_401", "unauth_403", "ro_write", "ro_write_403", "manage", "alt"):
        for protocol, answers in (("rest", dead_rest), ("grpc", dead_grpc)):
            case = _case(sweep, "create_collection", protocol, check)
            assert sweep.CHECKS[check](case, answers, V) or sweep.undecided(case, answers, V), (check, protocol)
    case = _case(sweep, "list_collections", "rest", "hygiene")
    assert sweep.check_hygiene(case, dead_rest, V, {"manage": "k"})


@pytest.mark.parametrize(("protocol", "inconclusive", "denied", "allowed"), [
    ("rest", [500, 501, 502, 503], [401, 403], [200, 400, 404, 409, 422]),
    ("grpc", ["UNIMPLEMENTED", "UNAVAILABLE", "INTERNAL", "UNKNOWN", "DEADLINE_EXCEEDED"],
     ["UNAUTHENTICATED", "PERMISSION_DENIED"],
     ["OK", "INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION", "ALREADY_EXISTS"]),
])
def test_allowance_is_three_valued(sweep, protocol, inconclusive, denied, allowed):
    def answer(value: Any) -> Outcome:
        return _rest(value) if protocol == "rest" else _grpc(value)

    assert [answer(v).allowance for v in inconclusive] == ["inconclusive"] * len(inconclusive)
    assert [answer(v).allowance for v in denied] == ["denied"] * len(denied)
    assert [answer(v).allowance for v in allowed] == ["allowed"] * len(allowed)
    assert answer(None).allowance == "inconclusive"  # no answer at all
    # A twin that is not allowed never lets a refusal row pass: a 501 is undecided, a 403 a failure.
    refused = {c: answer(denied[0]) for c in CLASSES}
    for twin, outcome in ((inconclusive[0], "undecided"), (denied[0], "fail"), (allowed[0], "pass")):
        answers = dict(refused, manage=answer(twin), manage_bearer=answer(twin))
        case = _case(sweep, "create_collection", protocol, "unauth")
        problems, undecided = sweep.CHECKS["unauth"](case, answers, V), sweep.undecided(case, answers, V)
        got = "fail" if problems else "undecided" if undecided else "pass"
        assert got == outcome, (twin, problems, undecided)


def test_open_server_fails_the_refusal_checks(sweep):
    open_rest = {c: _rest(200, b'{"result":{}}', "application/json") for c in CLASSES}
    for check in ("unauth", "unauth_401", "ro_write", "ro_write_403"):
        assert sweep.CHECKS[check](_case(sweep, "create_collection", "rest", check), open_rest, V), check
    open_grpc = {c: _grpc("OK") for c in CLASSES}
    for check in ("unauth", "unauth_401", "ro_write", "ro_write_403"):
        assert sweep.CHECKS[check](_case(sweep, "create_collection", "grpc", check), open_grpc, V), check


def test_qdrant_answers_pass_the_checks(sweep):
    # What spec §2.4/§3/§4 say Qdrant v1.19.0 answers, fed through the checks.
    forbidden_json = b'{"status":{"error":"Forbidden: Global manage access is required"},"time":0.001}'
    rest = {
        "none": _rest(401, b"Must provide an API key or an Authorization bearer token"),
        "wrong": _rest(401, b"Invalid API key or JWT"),
        "read_only": _rest(403, forbidden_json, "application/json"),
        "manage": _rest(200, b'{"result":true}', "application/json"),
        "manage_bearer": _rest(409, b'{"status":{"error":"exists"}}', "application/json"),
        "alt": _rest(400, b'{"status":{"error":"exists"}}', "application/json"),
    }
    for check in ("unauth", "unauth_401", "ro_write", "ro_write_403", "manage", "alt"):
        assert sweep.CHECKS[check](_case(sweep, "create_collection", "rest", check), rest, V) == [], check
    text = dict(rest, read_only=_rest(403, b"Forbidden: Global manage access is required",
                                      "text/plain; charset=utf-8"))
    assert sweep.CHECKS["ro_write_403"](_case(sweep, "upload_snapshot", "rest", "ro_write_403"), text, V) == []
    # ... and the JSON envelope where Qdrant answers text/plain is a compatibility failure.
    assert sweep.CHECKS["ro_write_403"](_case(sweep, "upload_snapshot", "rest", "ro_write_403"), rest, V)
    grpc = {
        "none": _grpc("UNAUTHENTICATED", "Must provide an API key or an Authorization bearer token"),
        "wrong": _grpc("UNAUTHENTICATED", "Invalid API key or JWT"),
        "read_only": _grpc("PERMISSION_DENIED", "Forbidden: Global manage access is required"),
        "manage": _grpc("OK"), "manage_bearer": _grpc("ALREADY_EXISTS"), "alt": _grpc("INVALID_ARGUMENT"),
    }
    for check in ("unauth", "unauth_401", "ro_write", "ro_write_403", "manage", "alt"):
        assert sweep.CHECKS[check](_case(sweep, "create_collection", "grpc", check), grpc, V) == [], check


def test_hygiene_finds_an_echoed_key_without_printing_it(sweep):
    secret = "qsc-test-secret-0123456789"
    answers = {"wrong": _rest(401, f"Invalid API key {secret}".encode()), "manage": _rest(200, b"{}")}
    case = _case(sweep, "list_collections", "rest", "hygiene")
    problems = sweep.check_hygiene(case, answers, V, {"wrong": secret})
    assert problems and secret not in sweep.report(case, problems)


def test_failure_message_names_the_route_and_credential(sweep):
    case = _case(sweep, "create_collection", "rest", "ro_write")
    answers = {c: _rest(200, b"{}") for c in CLASSES}
    message = sweep.report(case, sweep.CHECKS["ro_write"](case, answers, V))
    assert "PUT /collections/{collection_name}" in message and "read_only" in message
    assert "AUTHZ-REST-004" in message

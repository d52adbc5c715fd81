"""The fault catalog itself: well formed, tied to real requirements, switched on the documented ways."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from qdrant_conformance.fixtures.catalog import load_requirements
from qdrant_conformance.reference_server import faults
from qdrant_conformance.reference_server.fault_policy import NO_FAULTS, FaultPolicy
from qdrant_conformance.reference_server.faults import BY_NAME, CATALOG, FAMILIES
from qdrant_conformance.reference_server.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def family_of(requirement_id: str) -> str:
    return requirement_id.split("-", 1)[0]


def test_at_least_thirty_faults_with_unique_kebab_case_names() -> None:
    assert len(CATALOG) >= 30
    names = [f.name for f in CATALOG]
    assert len(set(names)) == len(names), "duplicate fault names"
    bad = [n for n in names if not KEBAB.match(n)]
    assert not bad, f"not kebab-case: {bad}"


def test_every_fault_is_described_and_belongs_to_a_family() -> None:
    for fault in CATALOG:
        assert fault.description and "\n" not in fault.description, fault.name
        assert fault.family in FAMILIES, fault.name
        assert fault.requirements, f"{fault.name} declares no requirement"
        assert not set(fault.requirements) & set(fault.collateral), f"{fault.name}: requirement listed twice"


def test_declared_requirements_exist_in_the_catalog() -> None:
    catalog = load_requirements()
    unknown = {f.name: sorted(set(f.declared) - set(catalog)) for f in CATALOG if set(f.declared) - set(catalog)}
    assert not unknown, f"faults name requirements missing from fixtures/catalog/requirements: {unknown}"


def test_every_requirement_family_has_a_fault() -> None:
    families = {family_of(r) for r in load_requirements()}
    covered = {family_of(r) for f in CATALOG for r in f.requirements}
    missing = sorted(families - covered)
    assert not missing, f"requirement families without a fault: {missing}"
    assert {f.family for f in CATALOG} >= families, "a requirement family has no fault filed under it"


def test_cluster_seams_use_catalog_names() -> None:
    from qdrant_conformance.reference_server import cluster

    assert set(cluster.FAULTS) <= set(BY_NAME), "reference_server/cluster/ names a fault the catalog lacks"


def test_policy_switches_only_catalog_faults() -> None:
    policy = FaultPolicy.from_names(["grpc-no-auth"])
    assert policy.active("grpc-no-auth")
    assert not policy.active("key-in-query")
    assert not NO_FAULTS.active("grpc-no-auth")
    with pytest.raises(KeyError):
        policy.active("no-such-fault")
    with pytest.raises(faults.UnknownFault):
        FaultPolicy.from_names(["key-in-query", "no-such-fault"])


def test_each_start_builds_its_own_policy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No process-wide switch: a start with a fault leaves the next start (a zygote's next child) clean."""
    from qdrant_conformance.reference_server import server

    monkeypatch.chdir(tmp_path)
    for name in [k for k in os.environ if k.startswith("QDRANT__")]:
        monkeypatch.delenv(name)
    faulty = server.prepare(None, faults=("grpc-no-auth", "key-length-compare"))
    clean = server.prepare(None)
    assert faulty.faults.active("grpc-no-auth") and faulty.faults.active("key-length-compare")
    assert clean.faults == NO_FAULTS


def test_catalog_is_data_only() -> None:
    """``faults.py`` imports nothing of the server: the behaviour lives at the seams, so no import circle."""
    tree = ast.parse((ROOT / "reference_server" / "faults.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "collections.abc", "dataclasses", "pathlib"}, imported
    assert not [n for n in vars(faults) if n in ("active", "configure", "_active")], "a process-wide switch is back"


def test_faults_come_from_config_env_and_cli(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("reference_server:\n  faults: [grpc-no-auth]\n")
    settings = load_settings(str(config), environ={}, cwd=tmp_path, extra_faults=("key-in-query",))
    assert settings.faults == ("grpc-no-auth", "key-in-query")
    env = {"QDRANT__REFERENCE_SERVER__FAULTS": "alt-key-ignored,ro-write-grpc-method"}
    assert load_settings(None, environ=env, cwd=tmp_path).faults == ("alt-key-ignored", "ro-write-grpc-method")


def _start(args: list[str], env_extra: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QDRANT__")}
    env.update(env_extra)
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "reference_server", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("how", ["cli", "env", "config"])
def test_unknown_fault_name_exits_1_with_one_line(how: str, tmp_path: Path) -> None:
    args: list[str] = []
    env: dict[str, str] = {"QDRANT__SERVICE__HTTP_PORT": "0", "QDRANT__SERVICE__GRPC_PORT": "0"}
    if how == "cli":
        args = ["--fault", "grpc-no-auth", "--fault", "qsc-no-such-fault"]
    elif how == "env":
        env["QDRANT__REFERENCE_SERVER__FAULTS"] = "grpc-no-auth,qsc-no-such-fault"
    else:
        config = tmp_path / "c.yaml"
        config.write_text("reference_server:\n  faults: [qsc-no-such-fault]\n")
        args = ["--config-path", str(config)]
    proc = _start(args, env, tmp_path)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error: unknown fault") and "qsc-no-such-fault" in lines[0], lines[0]
    assert proc.stdout == ""


def test_every_fault_has_a_seam() -> None:
    """Each name appears somewhere besides its catalog entry: a fault nothing switches on is dead weight."""
    sources = [p.read_text() for p in (ROOT / "reference_server").rglob("*.py")]
    unused = [f.name for f in CATALOG
              if f.certificate is None and sum(src.count(f'"{f.name}"') for src in sources) < 2]
    assert not unused, f"faults with no seam in reference_server/: {unused}"


def test_certificate_faults_name_pki_leaves_the_tls_profile_serves(tmp_path: Path) -> None:
    """A certificate fault's seam is the harness: the ``tls`` profile is rendered with that leaf, others are not."""
    from qdrant_conformance.fixtures.pki import RunPKI
    from qdrant_conformance.fixtures.profiles import profile, served_certificate

    pki = RunPKI.create(tmp_path / "pki")
    try:
        cert_faults = [f for f in CATALOG if f.certificate is not None]
        assert len(cert_faults) >= 6
        for fault in cert_faults:
            leaf = getattr(pki, fault.certificate or "")
            assert served_certificate(pki, profile("tls"), (fault.name,)) is leaf, fault.name
            assert leaf is not pki.server, fault.name
            assert served_certificate(pki, profile("mtls"), (fault.name,)) is pki.server, fault.name
        assert served_certificate(pki, profile("tls"), ("grpc-no-auth",)) is pki.server
    finally:
        pki.cleanup()

"""What ``pip install .`` puts into an environment: one namespace, a pytest plugin, nothing shadowed.

The checkout keeps its top-level folders; the wheel holds them as ``qdrant_conformance.*``
(issue 11). Built offline from a copy of the checkout's files, so the test sees what a fresh
clone packages and leaves no ``build/`` behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "qdrant_conformance/"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.split("\n")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(out), str(src)], check=True, capture_output=True, timeout=300)
    (found,) = out.glob("qdrant_security_conformance-*.whl")
    return found


def test_the_wheel_holds_one_namespace_and_no_top_level_package_of_other_names(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
    stray = [n for n in names if not n.startswith((NAMESPACE, dist_info + "/"))]
    assert not stray, f"the wheel installs outside {NAMESPACE}: {stray[:10]}"
    for package in ("fixtures", "reports", "reference_server", "suites"):
        assert f"{NAMESPACE}{package}/__init__.py" in names, package


def test_the_wheel_carries_the_data_the_code_reads(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for data in ("fixtures/catalog/access_table.yaml", "fixtures/catalog/requirements/auth.yaml",
                 "reports/results.schema.json", "reports/schemas/sarif-schema-2.1.0.json",
                 "reference_server/default_config.yaml", "reference_server/openssl.cnf",
                 "suites/test_auth_api_key.py"):
        assert NAMESPACE + data in names, data


def test_the_harness_is_registered_as_a_pytest11_plugin(wheel: Path) -> None:
    zf = zipfile.ZipFile(wheel)
    (entry_points,) = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = zf.read(entry_points).decode()
    assert "[pytest11]" in text
    assert "qdrant_conformance.fixtures.plugin = qdrant_conformance.fixtures.plugin" in text


def test_an_environment_with_another_fixtures_package_keeps_both(wheel: Path, tmp_path: Path) -> None:
    """A stand-in for PyPI's ``fixtures`` (a testing library) and our wheel, installed side by side."""
    other = tmp_path / "other"
    (other / "fixtures").mkdir(parents=True)
    (other / "fixtures" / "__init__.py").write_text("WHO = 'the other fixtures'\n")
    (other / "pyproject.toml").write_text('[project]\nname = "fixtures"\nversion = "4.3.2"\n'
                                          '[build-system]\nrequires = ["setuptools"]\n'
                                          'build-backend = "setuptools.build_meta"\n')
    site = tmp_path / "site"
    for thing in (str(other), str(wheel)):
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                        "--target", str(site), thing], check=True, capture_output=True, timeout=300)
    probe = ("import fixtures, qdrant_conformance.fixtures.catalog as c; "
             "print(fixtures.WHO); print(c.__file__); print(len(c.load_requirements()))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, check=True, capture_output=True,
                         text=True, timeout=60).stdout.split("\n")
    assert out[0] == "the other fixtures"
    assert out[1].startswith(str(site)), out[1]
    assert int(out[2]) > 100

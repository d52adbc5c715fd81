"""The TLS suites fail a TLS front end that is wrong, and name the requirement it breaks.

A reference server with the ``api-key`` profile (plain HTTP) sits behind
``tests/tls_proxy.py``, which terminates TLS with this test's PKI. The TLS
suites then run in a subprocess against the proxy as an *external* target,
declared as profiles ``tls`` and ``mtls``, exactly as a user would run them::

    pytest suites/test_tls_*.py suites/test_mtls.py --target external --rest-url https://127.0.0.1:<proxy> \\
        --profile tls,mtls --ca-cert ca.pem --api-key-file key --client-cert client.pem --client-key client-key.pem

The verdict is read from the run's ``results.json`` and its exit code:

* a clean proxy (TLS 1.2+, client certificate required) passes the secure gate;
* a proxy that also accepts TLS 1.0/1.1 fails TLS-REST-006, on both oracles (sslyze and the stdlib);
* a proxy that asks for no client certificate fails MTLS-REST-001 and MTLS-REST-002.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from qdrant_conformance.fixtures.catalog import load_requirements
from qdrant_conformance.fixtures.pki import RunPKI
from tests.server_helpers import ServerProcess, start_server
from tests.tls_proxy import TlsProxy, server_context

ROOT = Path(__file__).resolve().parents[1]
SUITES = ["suites/test_tls_enforcement.py", "suites/test_tls_certificate.py", "suites/test_tls_posture.py",
          "suites/test_tls_rotation.py", "suites/test_tls_startup.py", "suites/test_mtls.py"]
ORDER = ["pass", "disabled", "unsupported", "warning", "error", "fail"]


@dataclass
class Run:
    rc: int
    output: str
    records: list[dict[str, object]]

    def outcomes(self) -> dict[str, str]:
        """Requirement → its worst outcome in the run."""
        worst: dict[str, str] = {}
        for record in self.records:
            rid, outcome = str(record["requirement"]), str(record["outcome"])
            worst[rid] = max(worst.get(rid, "pass"), outcome, key=ORDER.index)
        return worst

    def per_test(self, rid: str) -> dict[str, str]:
        return {str(r["name"]): str(r["outcome"]) for r in self.records if r["requirement"] == rid}

    def failed_security(self) -> set[str]:
        catalog = load_requirements()
        return {rid for rid, o in self.outcomes().items() if o == "fail" and catalog[rid].kind == "security"}

    def errors(self) -> set[str]:
        return {rid for rid, o in self.outcomes().items() if o == "error"}


@dataclass
class Rig:
    pki: RunPKI
    upstream: ServerProcess
    key_file: Path
    workdir: Path


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    base = tmp_path_factory.mktemp("tls-catches")
    pki = RunPKI.create(base / "pki")
    key = "qsc-proxy-" + secrets.token_urlsafe(24)
    key_file = base / "api-key"
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    upstream = start_server({"service": {"api_key": key}})
    try:
        yield Rig(pki=pki, upstream=upstream, key_file=key_file, workdir=base)
    finally:
        upstream.stop()
        pki.cleanup()


def run_suites(rig: Rig, proxy: TlsProxy, name: str) -> Run:
    report_dir = rig.workdir / f"reports-{name}"
    cmd = [sys.executable, "-m", "pytest", *SUITES, "-p", "no:cacheprovider", "-q",
           "--target", "external", "--rest-url", proxy.url, "--profile", "tls,mtls",
           "--ca-cert", str(rig.pki.ca_path), "--api-key-file", str(rig.key_file),
           "--client-cert", str(rig.pki.client.cert_path), "--client-key", str(rig.pki.client.key_path),
           "--report-dir", str(report_dir)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("QSC_")}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    runs = list(report_dir.glob("*/results.json"))
    assert len(runs) == 1, f"expected one results.json under {report_dir} (exit {proc.returncode}):\n{output[-4000:]}"
    data = json.loads(runs[0].read_text())
    return Run(rc=proc.returncode, output=output, records=list(data["records"]))


def _proxied(rig: Rig, name: str, **context_args: object) -> Run:
    ctx = server_context(rig.pki.server, **context_args)  # type: ignore[arg-type]
    with TlsProxy(("127.0.0.1", rig.upstream.http_port), ctx) as proxy:
        return run_suites(rig, proxy, name)


@pytest.fixture(scope="module")
def clean(rig: Rig) -> Run:
    return _proxied(rig, "clean", client_ca=rig.pki.ca_path)


@pytest.fixture(scope="module")
def legacy(rig: Rig) -> Run:
    return _proxied(rig, "legacy", client_ca=rig.pki.ca_path, legacy_versions=True)


@pytest.fixture(scope="module")
def any_client(rig: Rig) -> Run:
    return _proxied(rig, "any-client", client_ca=None)


def test_clean_proxy_passes(clean: Run) -> None:
    outcomes = clean.outcomes()
    assert clean.rc == 0, f"exit {clean.rc}; failed security: {sorted(clean.failed_security())}\n{clean.output[-3000:]}"
    assert not clean.errors(), f"harness errors: {sorted(clean.errors())}\n{clean.output[-3000:]}"
    for rid in ("TLS-REST-001", "TLS-REST-003", "TLS-REST-004", "TLS-REST-006", "TLS-REST-007", "MTLS-REST-001",
                "MTLS-REST-002"):
        assert outcomes.get(rid) == "pass", f"{rid}: {outcomes.get(rid)}\n{clean.output[-3000:]}"
    # What an external target cannot offer is disabled, never passed.
    for rid in ("ROT-REST-001", "TLS-ANY-003", "MTLS-REST-003", "TLS-GRPC-001"):
        assert outcomes.get(rid) == "disabled", f"{rid}: {outcomes.get(rid)}"


def test_proxy_accepting_tls10_fails_the_protocol_version_requirement(legacy: Run) -> None:
    assert legacy.rc == 1, f"exit {legacy.rc}, expected 1 (not conformant)\n{legacy.output[-3000:]}"
    assert legacy.failed_security() == {"TLS-REST-006"}, (
        f"failed security requirements: {sorted(legacy.failed_security())}\n{legacy.output[-3000:]}")
    both = legacy.per_test("TLS-REST-006")
    assert set(both.values()) == {"fail"} and len(both) == 2, f"both oracles must fail: {both}"
    assert "TLS-REST-006" in legacy.output, "the run's output does not name TLS-REST-006"
    assert not legacy.errors(), f"harness errors: {sorted(legacy.errors())}"
    assert legacy.outcomes()["MTLS-REST-001"] == "pass"


def test_proxy_accepting_any_client_fails_the_client_certificate_requirements(any_client: Run) -> None:
    assert any_client.rc == 1, f"exit {any_client.rc}, expected 1 (not conformant)\n{any_client.output[-3000:]}"
    assert any_client.failed_security() == {"MTLS-REST-001", "MTLS-REST-002"}, (
        f"failed security requirements: {sorted(any_client.failed_security())}\n{any_client.output[-3000:]}")
    for rid in ("MTLS-REST-001", "MTLS-REST-002"):
        assert rid in any_client.output, f"the run's output does not name {rid}"
    assert any_client.outcomes()["MTLS-REST-005"] == "fail", "the compatibility requirement (TLS-layer refusal) too"
    assert not any_client.errors(), f"harness errors: {sorted(any_client.errors())}"
    assert any_client.outcomes()["TLS-REST-006"] == "pass"

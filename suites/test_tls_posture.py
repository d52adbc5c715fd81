"""Protocol versions, cipher suites and groups on both TLS ports (spec §6).

Requirements TLS-REST-006..010, TLS-GRPC-005..008 and TLS-ANY-002.

Two independent oracles:

- sslyze 6.3.1 scans each port once per run (``fixtures.tls_scan.scan``
  caches it): SSL 2.0 to TLS 1.3 with every suite it knows, groups, and the
  checks Mozilla's profile needs. sslyze is a hard dependency: if it cannot
  be imported, or a scan cannot complete, the tests that need it end in
  *error* (set-up), never in a pass or *unsupported*.
- the stdlib: a client offering exactly TLS 1.0 or TLS 1.1 (``@SECLEVEL=0``)
  must not complete a handshake, while the same client offering TLS 1.2+
  does. A local OpenSSL that cannot offer the old protocol cannot show
  anything: *error*, not *unsupported*.

The comparison with Mozilla's *intermediate* profile is information for the
security engineer (a SHOULD: a warning unless ``--strict``). The profile
version sslyze bundles is recorded with every result. Its certificate
lifespan limit is a rule for public CAs and is filtered out for private-CA
deployments (the finding is still recorded, marked not applicable). OCSP
stapling and HSTS are not checked by sslyze 6.3.1 and so are not part of it.
"""

from __future__ import annotations

import re
import ssl
from typing import Any

import pytest

from qdrant_conformance.fixtures import tls_probe, tls_scan
from qdrant_conformance.fixtures.outcomes import disabled, inconclusive

pytestmark = pytest.mark.profiles("tls")

req = pytest.mark.requirement

#: Suites a TLS port must never accept, matched on IANA names (and sslyze's SSLv2 names).
BROKEN_SUITE = re.compile(r"NULL|_anon_|EXPORT|RC4|RC2|_DES_|DES40|3DES|DES_CBC|IDEA|MD5")

#: rustls 0.23 defaults with the ring provider (spec §6; inferred: Qdrant does not override them).
RUSTLS_TLS13 = frozenset({"TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"})
RUSTLS_TLS12 = frozenset({
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
})
RUSTLS_GROUPS = frozenset({"X25519", "secp256r1", "secp384r1"})


class ScanError(Exception):
    """The scanner ran but could not measure what the test needs: a harness error, not a verdict."""


def _tls_server(qdrant: Any) -> Any:
    server = qdrant("tls")
    assert server.tls, f"profile tls is declared, but the REST URL is not https: {server.rest_url}"
    return server


def _scan_target(server: Any, protocol: str) -> tls_scan.ScanTarget:
    if protocol == "rest":
        host, port = tls_probe.endpoint(server.rest_url, 6333)
    else:
        host, port = tls_probe.endpoint(server.grpc_target, 6334)
    material = server.tls_material
    return tls_scan.ScanTarget(
        host=host, port=port,
        ca_path=material.ca_path if material else None,
        # An external target declared tls may still want a client certificate: offer it if the user gave one.
        client_cert_path=material.client_cert_path if material else None,
        client_key_path=material.client_key_path if material else None,
    )


def _scan(server: Any, protocol: str) -> tls_scan.TlsScan:
    """The run's scan of one port (both ports are scanned together, once)."""
    if protocol == "grpc" and not server.grpc_target:
        disabled("no gRPC endpoint for this target: give --grpc-url")
    try:
        tls_scan.scanner_version()
    except tls_scan.ScannerUnavailable as exc:
        # A missing tool is the harness's fault, and must not turn a security MUST into "unsupported".
        raise ScanError(f"sslyze (a hard dependency) is unavailable: {exc}") from None
    targets = {"rest": _scan_target(server, "rest")}
    if server.grpc_target:
        targets["grpc"] = _scan_target(server, "grpc")
    try:
        results = tls_scan.scan(targets.values())
    except tls_scan.ScannerUnavailable as exc:
        raise ScanError(f"sslyze (a hard dependency) is unavailable: {exc}") from None
    result = results[targets[protocol]]
    if not result.completed:
        raise ScanError(result.summary())
    missing = {cmd: why for cmd, why in result.failed_commands.items() if cmd.endswith("_cipher_suites")}
    if missing:
        raise ScanError(f"sslyze could not test every protocol version on {result.target.label}: {missing}")
    return result


@pytest.fixture
def rest_scan(qdrant) -> tls_scan.TlsScan:
    return _scan(_tls_server(qdrant), "rest")


@pytest.fixture
def grpc_scan(qdrant) -> tls_scan.TlsScan:
    return _scan(_tls_server(qdrant), "grpc")


@pytest.fixture(params=["rest", "grpc"])
def port_scan(request, qdrant) -> tuple[str, tls_scan.TlsScan]:
    return request.param, _scan(_tls_server(qdrant), request.param)


def _comparable(scan: tls_scan.TlsScan) -> tls_scan.TlsScan:
    # In set-up: a comparison that could not be made is a harness error, not a finding.
    if scan.mozilla_error is not None:
        raise ScanError(f"the comparison with Mozilla's profile could not be made: {scan.mozilla_error}")
    return scan


@pytest.fixture
def rest_mozilla(rest_scan) -> tls_scan.TlsScan:
    return _comparable(rest_scan)


@pytest.fixture
def grpc_mozilla(grpc_scan) -> tls_scan.TlsScan:
    return _comparable(grpc_scan)


def _record(record_property: Any, scan: tls_scan.TlsScan) -> None:
    record_property("tls_scanner", f"sslyze {scan.sslyze_version}")
    record_property("tls_scan", scan.summary())
    record_property("tls_accepted", {p: s for p, s in scan.accepted.items() if s})


# -- protocol versions --------------------------------------------------------------------------


def _check_no_legacy_protocols(scan: tls_scan.TlsScan, protocol: str) -> None:
    modern = scan.accepted.get("TLSv1.2", []) + scan.accepted.get("TLSv1.3", [])
    assert modern, f"{protocol}: positive twin failed: sslyze found no TLS 1.2 or 1.3 suite: {scan.summary()}"
    offered = {p: scan.accepted[p] for p in tls_scan.LEGACY_PROTOCOLS if scan.accepted.get(p)}
    assert not offered, (
        f"{protocol}: offered but should be rejected (nothing below TLS 1.2; Qdrant/rustls accepts only 1.2 and "
        f"1.3): " + "; ".join(f"{p} with {len(s)} suites ({', '.join(s[:3])}...)" for p, s in offered.items()))


@req("TLS-REST-006")
def test_rest_refuses_legacy_protocols_sslyze(rest_scan, record_property):
    _record(record_property, rest_scan)
    _check_no_legacy_protocols(rest_scan, "rest")


@req("TLS-GRPC-005")
def test_grpc_refuses_legacy_protocols_sslyze(grpc_scan, record_property):
    _record(record_property, grpc_scan)
    _check_no_legacy_protocols(grpc_scan, "grpc")


def _check_legacy_stdlib(server: Any, protocol: str) -> None:
    if protocol == "rest":
        host, port = tls_probe.endpoint(server.rest_url, 6333)
        alpn = None
    else:
        if not server.grpc_target:
            disabled("no gRPC endpoint for this target: give --grpc-url")
        host, port = tls_probe.endpoint(server.grpc_target, 6334)
        alpn = ["h2"]
    material = server.tls_material
    twin = tls_probe.handshake(host, port, server.ssl_context(), alpn=alpn)
    assert twin.completed, f"{protocol}: positive twin failed: TLS 1.2+ with the deployment's CA: {twin.summary()}"
    accepted = []
    for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        why_not = tls_probe.local_support(version)
        if why_not is not None:
            inconclusive(f"the local OpenSSL cannot offer {version.name}, so this oracle shows nothing here "
                         f"(a harness limit, not the target's): {why_not}")
        ctx = tls_probe.legacy_client_context(
            material.ca_path if material else None, version,
            client_cert=material.client_cert_path if material else None,
            client_key=material.client_key_path if material else None)
        hs = tls_probe.handshake(host, port, ctx, alpn=alpn)
        if hs.completed:
            accepted.append(f"{version.name}: {hs.summary()}")
        else:
            assert hs.error is None or not hs.error.startswith("certificate verify failed"), (
                f"{protocol}: the {version.name} handshake reached certificate verification and failed there, "
                f"so the server did accept {version.name}: {hs.error}")
    assert not accepted, f"{protocol}: a stdlib client completed a legacy handshake: " + "; ".join(accepted)


@req("TLS-REST-006")
def test_rest_refuses_tls10_tls11_stdlib(qdrant):
    _check_legacy_stdlib(_tls_server(qdrant), "rest")


@req("TLS-GRPC-005")
def test_grpc_refuses_tls10_tls11_stdlib(qdrant):
    _check_legacy_stdlib(_tls_server(qdrant), "grpc")


# -- cipher suites ------------------------------------------------------------------------------


def _check_no_broken_suites(scan: tls_scan.TlsScan, protocol: str) -> None:
    everything = [(p, s) for p, suites in scan.accepted.items() for s in suites]
    assert everything, f"{protocol}: positive twin failed: sslyze found no accepted suite at all: {scan.summary()}"
    broken = [f"{s} ({p})" for p, s in everything if BROKEN_SUITE.search(s)]
    assert not broken, f"{protocol}: offered but should be rejected: " + ", ".join(broken)


@req("TLS-REST-007")
def test_rest_accepts_no_broken_cipher_suite(rest_scan, record_property):
    _record(record_property, rest_scan)
    _check_no_broken_suites(rest_scan, "rest")


@req("TLS-GRPC-006")
def test_grpc_accepts_no_broken_cipher_suite(grpc_scan, record_property):
    _record(record_property, grpc_scan)
    _check_no_broken_suites(grpc_scan, "grpc")


# -- Mozilla intermediate (information; SHOULD) ------------------------------------------------------


def _check_mozilla(scan: tls_scan.TlsScan, protocol: str, record_property: Any, run_state: Any) -> None:
    profile = f"Mozilla {scan.mozilla_profile} {scan.mozilla_version} (bundled with sslyze {scan.sslyze_version})"
    record_property("mozilla_profile", profile)
    record_property("mozilla_findings", dict(scan.mozilla_issues))
    record_property("mozilla_not_applicable", dict(scan.mozilla_not_applicable))
    # Information for the run summary and results.json, pass or not.
    run_state.extras[f"tls_vs_mozilla_{protocol}"] = {
        "profile": f"{scan.mozilla_profile} {scan.mozilla_version}",
        "scanner": f"sslyze {scan.sslyze_version}",
        "findings": ", ".join(sorted(scan.mozilla_issues)) or "none",
        "not applicable": ", ".join(sorted(scan.mozilla_not_applicable)) or "none",
    }
    note = ""
    if scan.mozilla_not_applicable:
        note = " Not counted for a private-CA deployment: " + "; ".join(scan.mozilla_not_applicable.values())
    if scan.mozilla_issues:
        findings = " ".join(f"[{k}] {v}" for k, v in sorted(scan.mozilla_issues.items()))
        pytest.fail(f"{protocol}: compared with {profile}: {findings}{note}", pytrace=False)


@req("TLS-REST-008")
def test_rest_meets_mozilla_intermediate(rest_mozilla, record_property, qsc_state):
    _record(record_property, rest_mozilla)
    _check_mozilla(rest_mozilla, "rest", record_property, qsc_state)


@req("TLS-GRPC-007")
def test_grpc_meets_mozilla_intermediate(grpc_mozilla, record_property, qsc_state):
    _record(record_property, grpc_mozilla)
    _check_mozilla(grpc_mozilla, "grpc", record_property, qsc_state)


# -- Qdrant's exact stack (compatibility) -----------------------------------------------------------


def _check_rustls_suites(scan: tls_scan.TlsScan, protocol: str) -> None:
    tls13 = set(scan.accepted.get("TLSv1.3", []))
    tls12 = set(scan.accepted.get("TLSv1.2", []))
    others = [p for p in scan.supported_protocols() if p not in ("TLSv1.2", "TLSv1.3")]
    assert not others, f"{protocol}: Qdrant (rustls) accepts only TLS 1.2 and 1.3; this target also accepts {others}"
    assert tls12, f"{protocol}: Qdrant accepts TLS 1.2 (rustls with the tls12 feature, spec §6); this target does not"
    assert tls13 == RUSTLS_TLS13, (
        f"{protocol}: TLS 1.3 suites {sorted(tls13)}; rustls accepts exactly {sorted(RUSTLS_TLS13)} "
        "(spec §6, inferred from rustls/ring defaults)")
    extra = tls12 - RUSTLS_TLS12
    assert not extra, (
        f"{protocol}: TLS 1.2 suites outside rustls's defaults (ECDHE with AES-GCM or CHACHA20-POLY1305): "
        f"{sorted(extra)} (spec §6, inferred from rustls/ring defaults)")


@req("TLS-REST-009")
def test_rest_offers_rustls_defaults(rest_scan, record_property):
    _record(record_property, rest_scan)
    _check_rustls_suites(rest_scan, "rest")


@req("TLS-GRPC-008")
def test_grpc_offers_rustls_defaults(grpc_scan, record_property):
    _record(record_property, grpc_scan)
    _check_rustls_suites(grpc_scan, "grpc")


@req("TLS-REST-010")
def test_rest_tls13_only_before_1_3(rest_scan, record_property):
    _record(record_property, rest_scan)
    supported = rest_scan.supported_protocols()
    assert supported == ["TLSv1.3"], (
        f"Qdrant v1.1.1-v1.2.x's REST port (OpenSSL mozilla_modern_v5) accepts TLS 1.3 only; this one: {supported}")


@req("TLS-ANY-002")
def test_groups_are_rustls_defaults(port_scan, record_property):
    protocol, scan = port_scan
    _record(record_property, scan)
    assert scan.groups, f"{protocol}: sslyze found no ECDHE group (Qdrant offers X25519, P-256, P-384)"
    extra = set(scan.groups) - RUSTLS_GROUPS
    assert not extra, (
        f"{protocol}: groups {sorted(scan.groups)}; Qdrant (rustls/ring) offers only X25519, secp256r1, secp384r1 "
        f"(spec §6, inferred from rustls defaults); extra: {sorted(extra)}")

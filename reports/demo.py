"""A made-up run with every outcome, for previewing the report pages without a server.

``python -m reports.demo OUT_DIR`` writes the three report files for it. The
verdicts are computed from the records like any other run's; nothing here is
a verdict.
"""

from __future__ import annotations

import sys
from pathlib import Path

from qdrant_conformance.reports.model import BaselineEntry, Requirement, RunResult, TestRecord
from qdrant_conformance.reports.scrub import scrub_run
from qdrant_conformance.reports.summary import summary_lines
from qdrant_conformance.reports.verdicts import compute_verdicts
from qdrant_conformance.reports.writers import write_all

_SEVERITY = {
    "AUTH-REST-001": "critical",
    "AUTH-GRPC-001": "critical",
    "AUTHZ-ANY-002": "high",
    "HYG-REST-001": "medium",
    "TLS-GRPC-004": "medium",
    "CLUSTER-P2P-001": "high",
}
_REMEDIATION = {
    "AUTHZ-ANY-002": "Set service.read_only_api_key (QDRANT__SERVICE__READ_ONLY_API_KEY) and upgrade to Qdrant "
    "v1.7.0 or later, where the read-only key is refused on every write.",
    "TLS-GRPC-004": "Terminate gRPC at a proxy that requires client certificates (e.g. Envoy "
    "require_client_certificate: true); Qdrant's verify_https_client_certificate covers REST only.",
    "HYG-REST-001": "Set service.enable_tls: true (QDRANT__SERVICE__ENABLE_TLS=true) with tls.cert and tls.key.",
    "HARD-REST-011": "Accept it, or have the reverse proxy in front answer GET / itself (or refuse it) so the "
    "version stays inside.",
}


def _req(rid: str, text: str, kind: str, protocol: str, level: str = "MUST", since: str = "1.2.0") -> Requirement:
    return Requirement(
        id=rid,
        family=rid.split("-")[0],
        text=text,
        level=level,
        kind=kind,
        protocol=protocol,
        since=since,
        until=None,
        source="spec §2.4; Qdrant docs, Security",
        severity=_SEVERITY.get(rid, "info" if kind == "compatibility" else "low"),
        remediation=_REMEDIATION.get(rid, "Upgrade to Qdrant v1.19.0 or later."),
    )


def _rec(
    rid: str, test: str, protocol: str, outcome: str, reason: str = "", evidence: list[str] | None = None
) -> TestRecord:
    module = f"suites/test_{rid.split('-')[0].lower()}.py"
    return TestRecord(
        nodeid=f"{module}::{test}[{protocol}]",
        name=f"{test}[{protocol}]",
        classname=module.removesuffix(".py").replace("/", "."),
        requirement=rid,
        protocol=protocol,
        outcome=outcome,
        reason=reason,
        evidence=evidence or [],
        duration=0.05,
        profile="api-key",
    )


def demo_run() -> RunResult:
    requirements = [
        _req(
            "AUTH-REST-001",
            "A REST request without a credential to a protected route MUST NOT succeed.",
            "security",
            "rest",
        ),
        _req(
            "AUTH-GRPC-001",
            "A gRPC call without a credential to a protected method MUST NOT succeed.",
            "security",
            "grpc",
        ),
        _req(
            "AUTH-REST-003",
            'A REST request without a credential MUST get 401 with the body "Must provide an API key or an '
            'Authorization bearer token".',
            "compatibility",
            "rest",
            since="1.9.0",
        ),
        _req(
            "AUTH-REST-005", "Before v1.9.0, a REST request without a credential MUST get 403.", "compatibility", "rest"
        ),
        _req("AUTHZ-ANY-002", "The read-only key MUST NOT be able to write.", "security", "any", since="1.7.0"),
        _req("HYG-REST-001", "An API key SHOULD NOT be accepted over plain HTTP.", "security", "rest", level="SHOULD"),
        _req(
            "TLS-GRPC-004",
            "With client verification on, gRPC MUST refuse a client without a certificate.",
            "security",
            "grpc",
        ),
        _req("CLUSTER-P2P-001", "p2p MUST refuse a peer certificate from another CA.", "security", "p2p"),
        _req("ROT-REST-001", "A rotated certificate MUST be served after cert_ttl expires.", "compatibility", "rest"),
        _req(
            "HARD-REST-011",
            "What GET / tells a caller without a credential (title, version, commit) is recorded for information.",
            "security",
            "rest",
            level="INFO",
        ),
    ]
    records = [
        _rec(
            "AUTH-REST-001",
            "test_missing_key_rejected",
            "rest",
            "pass",
            evidence=["GET /collections (no credential) -> 401 Must provide an API key"],
        ),
        _rec("AUTH-GRPC-001", "test_missing_key_rejected", "grpc", "pass"),
        _rec("AUTH-REST-003", "test_missing_key_status", "rest", "pass"),
        _rec(
            "AUTH-REST-005",
            "test_legacy_403",
            "rest",
            "unsupported",
            reason="unsupported: target v1.19.0 is at or above until=1.9.0",
        ),
        _rec("AUTHZ-ANY-002", "test_read_only_cannot_write", "rest", "pass"),
        _rec(
            "AUTHZ-ANY-002",
            "test_read_only_cannot_write",
            "grpc",
            "fail",
            reason="read-only key was allowed to call qdrant.Points/Upsert",
            evidence=[
                "qdrant.Points/Upsert api-key=<redacted:read_only_key> -> OK",
                "expected PERMISSION_DENIED <script>alert(1)</script>",
            ],
        ),
        _rec(
            "HYG-REST-001",
            "test_key_over_plain_http",
            "rest",
            "warning",
            reason="API key accepted over plain HTTP",
            evidence=["GET http://127.0.0.1:6333/collections api-key=<redacted:api_key> -> 200"],
        ),
        _rec(
            "TLS-GRPC-004",
            "test_client_without_cert",
            "grpc",
            "fail",
            reason="gRPC accepted a TLS client without a certificate",
            evidence=[
                "TLS handshake without client certificate -> accepted (TLSv1.3)",
                "qdrant.Qdrant/HealthCheck -> OK",
            ],
        ),
        _rec(
            "CLUSTER-P2P-001",
            "test_foreign_ca_peer",
            "p2p",
            "disabled",
            reason="disabled: profile p2p-tls not selected",
        ),
        _rec("ROT-REST-001", "test_rotation_served", "rest", "error", reason="server did not start: port 6333 in use"),
        _rec(
            "HARD-REST-011",
            "test_rest_root_version_disclosure",
            "rest",
            "info",
            reason="AssertionError: GET / without a credential discloses Qdrant 1.19.0, commit 0f3c9e1",
            evidence=['GET https://127.0.0.1:6333/ -> HTTP 200 \'{"title":"qdrant - vector search engine",'
                      '"version":"1.19.0","commit":"0f3c9e1"}\''],
        ),
    ]
    return RunResult(
        run_id="20260801T120000Z-demo",
        started_at="2026-08-01T12:00:00+00:00",
        finished_at="2026-08-01T12:03:12+00:00",
        suite_version="0.1.0",
        target={
            "launcher": "docker",
            "image": "qdrant/qdrant:v1.19.0",
            "image_digest": "sha256:0f3c…",
            "rest_url": "https://127.0.0.1:6333",
            "grpc_url": "127.0.0.1:6334",
            "profiles": "api-key,tls,mtls",
        },
        target_version="1.19.0",
        tool_versions={"python": "3.11.9", "pytest": "9.0.1", "sslyze": "6.3.1", "grpcio": "1.85.0"},
        strict=False,
        gate="secure",
        requirements=requirements,
        records=records,
        baseline=[
            BaselineEntry(
                "TLS-GRPC-004",
                "Qdrant does not verify gRPC client certificates (spec §6)",
                target="qdrant/qdrant:*",
                expires="2099-12-31",
                owner="platform-security",
            )
        ],
        extras={
            "kill_score": {"killed": 31, "total": 31},
            "sweep": {"rest_routes": 97, "grpc_methods": 58, "credentials": 6},
            "mozilla_tls": {"profile": "intermediate", "guidelines": "5.7"},
        },
    )


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path("reports/out/demo")
    run = scrub_run(demo_run())
    verdicts = compute_verdicts(run)
    write_all(run, verdicts, out)
    print("\n".join(summary_lines(run, verdicts, out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

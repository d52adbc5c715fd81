"""Start-up and shutdown of ``python -m reference_server`` (spec §1.2, §1.5, §6, §7).

A bad TLS file or config must stop the server before it binds anything, with
exactly one ``Error: <reason>`` line and exit code 1. A missing
``--config-path`` file is *not* fatal (Qdrant logs and runs with defaults).
"""

from __future__ import annotations

import datetime
import signal
import socket
import ssl
from typing import Any

import grpc
import httpx
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.server_helpers import ServerFailed, T, assert_refused, port_open, run_to_exit, running_server

KEY = "startup-key-0123456789abcdef"
TLS_ON = {"service": {"enable_tls": True, "api_key": KEY}}
MTLS_ON = {"service": {"enable_tls": True, "verify_https_client_certificate": True, "api_key": KEY}}


def leaf_files(ca: trustme.CA) -> dict[str, bytes]:
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    return {
        "tls/cert.pem": b"".join(b.bytes() for b in leaf.cert_chain_pems),
        "tls/key.pem": leaf.private_key_pem.bytes(),
        "tls/cacert.pem": ca.cert_pem.bytes(),
    }


def self_signed(key: Any) -> dict[str, bytes]:
    """A cert/key pair of any key type trustme cannot make."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return {"tls/cert.pem": cert.public_bytes(serialization.Encoding.PEM), "tls/key.pem": pem_key}


def assert_failed_cleanly(config: dict[str, Any], files: dict[str, bytes], message: str, *,
                          prefix: bool = False) -> None:
    code, output, http_port, grpc_port = run_to_exit(config, files=files)
    lines = output.splitlines()
    assert code == 1, output
    assert len(lines) == 1, output
    if prefix:
        assert lines[0].startswith(f"Error: {message}"), output
    else:
        assert lines[0] == f"Error: {message}", output
    assert not port_open(http_port) and not port_open(grpc_port)


def _bad_tls_cases(ca: trustme.CA) -> dict[str, tuple[dict[str, Any], dict[str, bytes], str, bool]]:
    good = leaf_files(ca)
    other = leaf_files(ca)
    encrypted = serialization.load_pem_private_key(good["tls/key.pem"], None).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"))
    no_ca = {k: v for k, v in good.items() if k != "tls/cacert.pem"}
    cases = [
        ("no-files", TLS_ON, {}, "TLS file could not be opened: ./tls/cert.pem", False),
        ("no-key-file", TLS_ON, {"tls/cert.pem": good["tls/cert.pem"]},
         "TLS file could not be opened: ./tls/key.pem", False),
        ("cert-file-holds-a-key", TLS_ON, {**good, "tls/cert.pem": good["tls/key.pem"]},
         "no server certificate found", False),
        ("empty-key-file", TLS_ON, {**good, "tls/key.pem": b""}, "no private key found", False),
        ("key-file-starts-with-cert", TLS_ON, {**good, "tls/key.pem": good["tls/cert.pem"] + good["tls/key.pem"]},
         "invalid private key", False),
        ("encrypted-key", TLS_ON, {**good, "tls/key.pem": encrypted}, "invalid private key", False),
        ("mismatched-key", TLS_ON, {**good, "tls/key.pem": other["tls/key.pem"]},
         "TLS signing error: private key does not match certificate", False),
        ("p521-key", TLS_ON, self_signed(ec.generate_private_key(ec.SECP521R1())), "TLS signing error", True),
        ("rsa1024-key", TLS_ON, self_signed(rsa.generate_private_key(65537, 1024)), "TLS signing error", True),
        ("mtls-without-ca-setting", {**MTLS_ON, "tls": {"ca_cert": None}}, good, "No ca_cert provided", False),
        ("mtls-ca-file-missing", MTLS_ON, no_ca, "TLS file could not be opened: ./tls/cacert.pem", False),
        ("mtls-ca-file-without-certs", MTLS_ON, {**good, "tls/cacert.pem": b"nothing here\n"},
         "client certificate verification", True),
    ]
    return {name: rest for name, *rest in cases}  # type: ignore[misc]


BAD_TLS_CASES = ["no-files", "no-key-file", "cert-file-holds-a-key", "empty-key-file", "key-file-starts-with-cert",
                 "encrypted-key", "mismatched-key", "p521-key", "rsa1024-key", "mtls-without-ca-setting",
                 "mtls-ca-file-missing", "mtls-ca-file-without-certs"]


@pytest.mark.parametrize("case", BAD_TLS_CASES)
def test_bad_tls_setup_fails_before_binding(test_ca: trustme.CA, case: str) -> None:
    config, files, message, prefix = _bad_tls_cases(test_ca)[case]
    assert_failed_cleanly(config, files, message, prefix=prefix)


def test_cert_path_that_is_a_directory_cannot_be_read(test_ca: trustme.CA) -> None:
    files = {k: v for k, v in leaf_files(test_ca).items() if k != "tls/cert.pem"}
    files["tls/cert.pem/placeholder"] = b""
    assert_failed_cleanly(TLS_ON, files, "TLS file could not be read: ./tls/cert.pem")


def test_good_tls_files_start_with_qdrant_log_lines(test_ca: trustme.CA) -> None:
    """Positive twin of the failures above: the same config with good files serves HTTPS and gRPC TLS."""
    files = leaf_files(test_ca)
    ctx = ssl.create_default_context()
    test_ca.configure_trust(ctx)
    with running_server(TLS_ON, files=files, ready_context=ctx) as srv:
        log = srv.logs()
        assert "TLS enabled for REST API (TTL: 3600)" in log
        assert "TLS enabled for gRPC API (TTL not supported)" in log
        assert httpx.get(srv.url("/collections"), headers={"api-key": KEY}, verify=ctx, timeout=T).status_code == 200
        assert KEY not in log and "PRIVATE KEY" not in log


def test_grpc_port_never_asks_for_a_client_certificate(test_ca: trustme.CA) -> None:
    """``verify_https_client_certificate`` covers REST only (spec §6)."""
    files = leaf_files(test_ca)
    client = test_ca.issue_cert("client@example.org")
    with_cert = ssl.create_default_context()
    test_ca.configure_trust(with_cert)
    client.configure_cert(with_cert)
    with running_server(MTLS_ON, files=files, ready_context=with_cert) as srv:
        credentials = grpc.ssl_channel_credentials(root_certificates=test_ca.cert_pem.bytes())
        with grpc.secure_channel(srv.grpc_target, credentials) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=T)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        without_cert = ssl.create_default_context()
        test_ca.configure_trust(without_cert)
        assert_refused(lambda: httpx.get(srv.url("/readyz"), verify=without_cert, timeout=T))
        assert httpx.get(srv.url("/readyz"), verify=with_cert, timeout=T).status_code == 200


def test_bad_yaml_fails_with_one_line() -> None:
    code, output, http_port, _ = run_to_exit(None, files={"config/broken.yaml": b"service: [unclosed\n"},
                                             args=("--config-path", "config/broken.yaml"))
    lines = output.splitlines()
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("Error: config file") and "not valid YAML" in lines[0]
    assert not port_open(http_port)


def test_missing_config_path_is_logged_and_defaults_apply() -> None:
    """Qdrant runs with defaults (no key, no TLS) when ``--config-path`` is missing (spec §1.2)."""
    with running_server({"service": {"api_key": KEY}}, config_arg="config/missing.yaml") as srv:
        assert "ERROR" in srv.logs() and "Config file via --config-path is not found: config/missing.yaml" in srv.logs()
        assert httpx.get(srv.url("/collections"), timeout=T).status_code == 200  # fails open, like Qdrant
    # Positive twin: the same config named correctly is applied.
    with running_server({"service": {"api_key": KEY}}) as srv:
        assert httpx.get(srv.url("/collections"), timeout=T).status_code == 401


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signals_stop_cleanly(sig: int) -> None:
    with running_server(None) as srv:
        assert srv.grpc_port is not None
        assert port_open(srv.http_port) and port_open(srv.grpc_port)
        assert srv.stop(sig) == 0
        assert not port_open(srv.http_port) and not port_open(srv.grpc_port)
        assert "Stopped" in srv.logs()


def test_stop_with_open_keep_alive_connection() -> None:
    with running_server(None) as srv, httpx.Client(timeout=T) as client:
        assert client.get(srv.url("/collections")).status_code == 200
        assert srv.stop() == 0


def test_busy_rest_port_fails_with_one_line() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        code, output, _, grpc_port = run_to_exit({"service": {"http_port": busy}})
        lines = output.splitlines()
        assert code == 1
        assert len(lines) == 1 and lines[0].startswith("Error: Error while starting REST server"), output
        assert not port_open(grpc_port)


def test_busy_grpc_port_keeps_rest_up() -> None:
    """Qdrant logs the gRPC failure and keeps serving REST (spec §1.5)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        with running_server({"service": {"grpc_port": busy}}, grpc=False,
                            env={"QDRANT__SERVICE__GRPC_PORT": str(busy)}) as srv:
            assert srv.wait_for_log("Error while starting gRPC server")
            assert httpx.get(srv.url("/readyz"), timeout=T).status_code == 200


def test_harness_never_takes_another_process_port_for_grpc() -> None:
    """A gRPC port held by someone else is no ready server (parallel runs race for free ports)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        with pytest.raises(ServerFailed, match="cannot bind"):
            with running_server({"service": {"grpc_port": busy}}, env={"QDRANT__SERVICE__GRPC_PORT": str(busy)}):
                pass


def test_faults_are_announced_and_unknown_ones_refused() -> None:
    from qdrant_conformance.reference_server.faults import CATALOG

    name = CATALOG[0].name
    with running_server(None, extra_args=("--fault", name)) as srv:
        assert f"Faults switched on: {name}" in srv.logs()
    code, output, http_port, _ = run_to_exit(None, args=("--config-path", "config/test.yaml",
                                                          "--fault", "no-such-fault"))
    assert code == 1
    assert len(output.splitlines()) == 1 and output.startswith("Error: unknown fault 'no-such-fault'"), output
    assert not port_open(http_port)

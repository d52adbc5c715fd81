"""Self-tests of fixtures.pki: every certificate is what its name says, proven with real handshakes."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from qdrant_conformance.fixtures.client_tls import ssl_client_context
from qdrant_conformance.fixtures.pki import LOCAL_HOSTS, CAFiles, CertFiles, RunPKI
from qdrant_conformance.fixtures.secrets import REDACTOR

AMBIENT_VARS = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSLKEYLOGFILE",
                "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
                "http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ambient CA bundles, proxies or key logs must not make a test pass (as httpx's own conftest)."""
    for name in AMBIENT_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunPKI]:
    run_pki = RunPKI.create(tmp_path_factory.mktemp("pki-module") / "pki")
    yield run_pki
    run_pki.cleanup()


# -- a TLS server that says why it refused ----------------------------------------------


@dataclass
class TLSServer:
    """Accepts TLS on 127.0.0.1 or ::1, answers ``ok`` to one line, and records handshake errors."""

    context: ssl.SSLContext
    host: str = "127.0.0.1"
    errors: list[str] = field(default_factory=list)
    handshakes: int = 0

    def __post_init__(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._listener = socket.create_server((self.host, 0), family=family)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return  # listener closed
            threading.Thread(target=self._handle, args=(raw,), daemon=True).start()

    def _handle(self, raw: socket.socket) -> None:
        raw.settimeout(5)
        try:
            with self.context.wrap_socket(raw, server_side=True) as tls:
                self.handshakes += 1
                if tls.recv(64):
                    tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as exc:
            self.errors.append(str(exc))
        finally:
            raw.close()

    def close(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        self._listener.close()
        self._thread.join(timeout=5)

    def wait_for_error(self, timeout: float = 5.0) -> str:
        """The first handshake error, polling until the server thread has recorded it."""
        deadline = time.monotonic() + timeout
        while not self.errors:
            if time.monotonic() > deadline:
                return ""
            time.sleep(0.005)
        return self.errors[0]


def server_context(leaf: CertFiles, *, client_ca: Path | None = None,
                   minimum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(leaf.cert_path, leaf.key_path)
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca)
    if minimum is not None:
        ctx.minimum_version = minimum
    return ctx


@pytest.fixture
def serve() -> Iterator[list[TLSServer]]:
    servers: list[TLSServer] = []
    yield servers
    for server in servers:
        server.close()


def start(servers: list[TLSServer], ctx: ssl.SSLContext, host: str = "127.0.0.1") -> TLSServer:
    server = TLSServer(ctx, host=host)
    servers.append(server)
    return server


def exchange(ctx: ssl.SSLContext, port: int, host: str = "127.0.0.1",
             server_hostname: str | None = None) -> tuple[bool, str]:
    """(True, tls version) if a line got an ``ok`` back, else (False, why).

    Under TLS 1.3 a client-certificate refusal arrives after our handshake
    completes, so the verdict is taken after a write and a read.
    """
    try:
        with socket.create_connection((host, port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname=server_hostname or host) as tls:
            tls.sendall(b"ping\n")
            answer = tls.recv(16)
            if answer == b"ok":
                return True, str(tls.version())
            return False, f"closed without answer ({answer!r})"
    except (ssl.SSLError, OSError) as exc:
        return False, str(exc)


# -- what is on disk ---------------------------------------------------------------------


def test_create_is_fast_and_makes_every_file(tmp_path: Path) -> None:
    started = time.perf_counter()
    run_pki = RunPKI.create(tmp_path / "pki")
    elapsed = time.perf_counter() - started
    try:
        assert elapsed < 0.5, f"RunPKI.create took {elapsed:.3f}s"
        for leaf in _leaves(run_pki):
            assert leaf.cert_path.read_bytes() == leaf.chain_pem
            assert leaf.key_path.read_bytes() == leaf.key_pem
        for ca in _cas(run_pki):
            assert ca.cert_path.read_bytes() == ca.cert_pem
        assert run_pki.ca_path == run_pki.ca.cert_path
    finally:
        run_pki.cleanup()


def test_file_modes_and_cleanup(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    run_pki = RunPKI.create(directory)
    node = run_pki.node_cert("n1", ["node1.qdrant"])
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for leaf in [*_leaves(run_pki), node]:
        assert stat.S_IMODE(leaf.key_path.stat().st_mode) == 0o600, leaf.name
        assert stat.S_IMODE(leaf.cert_path.stat().st_mode) == 0o644, leaf.name
    for ca in _cas(run_pki):
        assert stat.S_IMODE(ca.cert_path.stat().st_mode) == 0o644
    assert not list(directory.glob("ca-key*")), "CA private keys stay in memory"
    run_pki.cleanup()
    assert not directory.exists()
    run_pki.cleanup()  # twice is fine


def test_key_modes_hold_under_a_permissive_umask(tmp_path: Path) -> None:
    import os

    old = os.umask(0)
    try:
        run_pki = RunPKI.create(tmp_path / "pki")
    finally:
        os.umask(old)
    try:
        assert stat.S_IMODE(run_pki.server.key_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(run_pki.directory.stat().st_mode) == 0o700
    finally:
        run_pki.cleanup()


def test_create_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("not ours")
    with pytest.raises(FileExistsError):
        RunPKI.create(tmp_path)
    assert (tmp_path / "keep.txt").exists()


def test_private_keys_are_registered_and_hidden(pki: RunPKI) -> None:
    registered = REDACTOR.secrets()
    for leaf in _leaves(pki):
        assert leaf.key_pem.decode() in registered, leaf.name
        redacted = REDACTOR.redact(f"dump: {leaf.key_pem.decode()}")
        assert f"<redacted:{leaf.name}-key>" in redacted
        assert not any(line in redacted for line in _pem_body_lines(leaf.key_pem))
        assert leaf.key_pem.decode() not in repr(leaf)
    # CA keys live only in memory but are secrets all the same.
    for ca in _cas(pki):
        assert _registered_key_for(ca) is not None, ca.name


def test_node_cert_is_reused_and_conflicts_are_refused(pki: RunPKI) -> None:
    first = pki.node_cert("peer-a", ["node1.qdrant", "127.0.0.1"])
    assert pki.node_cert("peer-a", ["node1.qdrant", "127.0.0.1"]) is first
    assert pki.leaf("node-peer-a") is first
    with pytest.raises(ValueError, match="issued for"):
        pki.node_cert("peer-a", ["node2.qdrant"])
    with pytest.raises(ValueError, match="already exists"):
        pki.issue("server", LOCAL_HOSTS)
    with pytest.raises(ValueError, match="unknown issuer"):
        pki.issue("orphan", LOCAL_HOSTS, issuer="nope")


# -- what each certificate says ----------------------------------------------------------


def _cert(leaf: CertFiles | CAFiles) -> x509.Certificate:
    pem = leaf.chain_pem if isinstance(leaf, CertFiles) else leaf.cert_pem
    return x509.load_pem_x509_certificate(pem)


def assert_is_ca(ca: CAFiles) -> None:
    cert = _cert(ca)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert cert.serial_number == ca.serial


def assert_is_leaf(leaf: CertFiles, issuer: CAFiles | None, usages: set[x509.ObjectIdentifier],
                   hosts: tuple[str, ...]) -> None:
    cert = _cert(leaf)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert set(eku.value) == usages
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    # Non-critical, so RFC 5280 verifiers (cryptography, sslyze) accept it.
    assert not san.critical
    names = [str(n) for n in san.value.get_values_for_type(x509.DNSName)]
    names += [str(n) for n in san.value.get_values_for_type(x509.IPAddress)]
    assert sorted(names) == sorted(str(ipaddress.ip_address(h)) if _is_ip(h) else h for h in hosts)
    assert leaf.sans == hosts
    assert cert.serial_number == leaf.serial
    assert cert.not_valid_after_utc == leaf.not_after
    assert cert.fingerprint(hashes.SHA256()).hex() == leaf.sha256_fingerprint
    key = serialization.load_pem_private_key(leaf.key_pem, password=None)
    assert key.public_key() == cert.public_key()
    if issuer is not None:
        assert cert.issuer == _cert(issuer).subject
        assert leaf.issuer == issuer.name


SERVER_EKU = {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
CLIENT_EKU = {ExtendedKeyUsageOID.CLIENT_AUTH}


def test_certificate_contents(pki: RunPKI) -> None:
    now = datetime.datetime.now(datetime.UTC)
    for ca in (pki.ca, pki.foreign_ca, pki.expired_ca):
        assert_is_ca(ca)
    assert pki.expired_ca.not_after < now
    assert pki.ca.not_before < now < pki.ca.not_after

    for leaf in (pki.server, pki.server_rotated, pki.expired_server, pki.not_yet_valid_server):
        assert_is_leaf(leaf, pki.ca, SERVER_EKU, LOCAL_HOSTS)
    assert_is_leaf(pki.foreign_server, pki.foreign_ca, SERVER_EKU, LOCAL_HOSTS)
    assert_is_leaf(pki.wrong_host_server, pki.ca, SERVER_EKU, ("wrong.example.invalid",))
    assert_is_leaf(pki.self_signed_server, None, SERVER_EKU, LOCAL_HOSTS)
    assert _cert(pki.self_signed_server).issuer == _cert(pki.self_signed_server).subject
    assert_is_leaf(pki.expired_ca_leaf, pki.expired_ca, SERVER_EKU, LOCAL_HOSTS)
    assert_is_leaf(pki.client, pki.ca, CLIENT_EKU, ("client.qsc.invalid",))
    assert_is_leaf(pki.foreign_client, pki.foreign_ca, CLIENT_EKU, ("foreign-client.qsc.invalid",))
    assert_is_leaf(pki.expired_client, pki.ca, CLIENT_EKU, ("expired-client.qsc.invalid",))
    assert_is_leaf(pki.not_yet_valid_client, pki.ca, CLIENT_EKU, ("not-yet-valid-client.qsc.invalid",))
    assert_is_leaf(pki.server_only_eku_client, pki.ca, {ExtendedKeyUsageOID.SERVER_AUTH},
                   ("server-only-eku-client.qsc.invalid",))

    for valid in (pki.server, pki.server_rotated, pki.client, pki.expired_ca_leaf):
        assert valid.not_before < now < valid.not_after, valid.name
    for expired in (pki.expired_server, pki.expired_client):
        assert expired.not_after < now, expired.name
    for future in (pki.not_yet_valid_server, pki.not_yet_valid_client):
        assert future.not_before > now, future.name

    assert pki.server_rotated.serial != pki.server.serial
    assert pki.server_rotated.sha256_fingerprint != pki.server.sha256_fingerprint
    assert pki.server_rotated.key_pem != pki.server.key_pem


def test_node_cert_contents(pki: RunPKI) -> None:
    hosts = ("node1.qdrant", "localhost", "127.0.0.1")
    node = pki.node_cert("contents", list(hosts))
    assert_is_leaf(node, pki.ca, SERVER_EKU, hosts)
    _verify_server(pki.ca, node, "node1.qdrant")


def _verify_server(ca: CAFiles, leaf: CertFiles, host: str) -> None:
    name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host)) if _is_ip(host) else x509.DNSName(host)
    store = Store([_cert(ca)])
    verifier = PolicyBuilder().store(store).build_server_verifier(name)  # type: ignore[arg-type]
    verifier.verify(_cert(leaf), [])


def test_rfc5280_verifier_accepts_the_valid_certificates(pki: RunPKI) -> None:
    """cryptography's verifier is as strict as sslyze's path validation: the valid leaves pass it."""
    for host in LOCAL_HOSTS:
        _verify_server(pki.ca, pki.server, host)
        _verify_server(pki.ca, pki.server_rotated, host)
    store = Store([_cert(pki.ca)])
    PolicyBuilder().store(store).build_client_verifier().verify(_cert(pki.client), [])


@pytest.mark.parametrize(("name", "error"), [
    ("expired_server", "not valid at validation time"),
    ("not_yet_valid_server", "not valid at validation time"),
    ("wrong_host_server", "no matching subjectAltName"),
    ("foreign_server", "candidates exhausted"),
])
def test_rfc5280_verifier_rejects_the_broken_server_certificates(pki: RunPKI, name: str, error: str) -> None:
    with pytest.raises(VerificationError, match=error):
        _verify_server(pki.ca, getattr(pki, name), "localhost")


def test_rfc5280_verifier_rejects_the_server_only_client(pki: RunPKI) -> None:
    store = Store([_cert(pki.ca)])
    with pytest.raises(VerificationError, match="EKU"):
        PolicyBuilder().store(store).build_client_verifier().verify(_cert(pki.server_only_eku_client), [])


# -- real handshakes: our client context against a server presenting each cert ------------


@pytest.mark.parametrize("host", LOCAL_HOSTS)
def test_valid_server_is_accepted_on_every_local_name(pki: RunPKI, serve: list[TLSServer], host: str) -> None:
    bind = "::1" if host == "::1" else "127.0.0.1"
    server = start(serve, server_context(pki.server), host=bind)
    ok, detail = exchange(ssl_client_context(pki.ca_path), server.port, host=bind, server_hostname=host)
    assert ok, detail


@pytest.mark.parametrize(("name", "error"), [
    ("expired_server", "certificate has expired"),
    ("not_yet_valid_server", "certificate is not yet valid"),
    ("wrong_host_server", "mismatch"),
    ("foreign_server", "unable to get local issuer certificate"),
    ("self_signed_server", "self-signed certificate"),
])
def test_client_context_refuses_bad_server_certificates(pki: RunPKI, serve: list[TLSServer],
                                                        name: str, error: str) -> None:
    server = start(serve, server_context(getattr(pki, name)))
    ok, detail = exchange(ssl_client_context(pki.ca_path), server.port)
    assert not ok
    assert error in detail


def test_expired_ca_leaf_is_refused_only_because_its_ca_expired(pki: RunPKI, serve: list[TLSServer]) -> None:
    server = start(serve, server_context(pki.expired_ca_leaf))
    ok, detail = exchange(ssl_client_context(pki.expired_ca.cert_path), server.port)
    assert not ok and "certificate has expired" in detail
    # The leaf itself is current: the expiry that bit is the CA's.
    assert pki.expired_ca_leaf.not_after > datetime.datetime.now(datetime.UTC)


def test_context_without_trust_trusts_nothing(pki: RunPKI, serve: list[TLSServer],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # Even an ambient CA bundle naming our CA must not help.
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_path))
    monkeypatch.setenv("SSL_CERT_DIR", str(pki.directory))
    ctx = ssl_client_context(None)
    assert ctx.get_ca_certs() == []
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    server = start(serve, server_context(pki.server))
    ok, detail = exchange(ctx, server.port)
    assert not ok and "unable to get local issuer certificate" in detail
    ok, detail = exchange(ssl_client_context(pki.ca_path), server.port)
    assert ok, detail


def test_context_writes_no_key_log(pki: RunPKI, serve: list[TLSServer], tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    keylog = tmp_path / "keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
    server = start(serve, server_context(pki.server))

    def secret_lines() -> list[str]:
        text = keylog.read_text() if keylog.exists() else ""
        return [line for line in text.splitlines() if line and not line.startswith("#")]

    # Positive twin: a plain stdlib context does log session secrets, so the check below can fail.
    ok, detail = exchange(ssl.create_default_context(cafile=str(pki.ca_path)), server.port)
    assert ok, detail
    assert secret_lines()
    keylog.write_text("")
    ok, detail = exchange(ssl_client_context(pki.ca_path), server.port)
    assert ok, detail
    assert secret_lines() == []


def test_context_with_trust_loads_only_that_ca(pki: RunPKI) -> None:
    cas = ssl_client_context(pki.ca_path).get_ca_certs(binary_form=True)
    assert cas == [_cert(pki.ca).public_bytes(serialization.Encoding.DER)]
    bundle = pki.bundle("ca-and-foreign", [pki.ca, pki.foreign_ca])
    assert len(ssl_client_context(bundle).get_ca_certs()) == 2


# -- real handshakes: a CERT_REQUIRED server against each client cert ---------------------


@pytest.mark.parametrize(("name", "server_error"), [
    ("expired_client", "certificate has expired"),
    ("not_yet_valid_client", "certificate is not yet valid"),
    ("server_only_eku_client", "unsuitable certificate purpose"),
    ("foreign_client", "unable to get local issuer certificate"),
    (None, "peer did not return a certificate"),
])
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2], ids=["tls13", "tls12"])
def test_mtls_server_refuses_bad_client_certificates(pki: RunPKI, serve: list[TLSServer], name: str | None,
                                                     server_error: str, version: ssl.TLSVersion) -> None:
    server = start(serve, server_context(pki.server, client_ca=pki.ca_path))
    client = getattr(pki, name) if name else None
    ctx = ssl_client_context(pki.ca_path, client, max_version=version)
    ok, _ = exchange(ctx, server.port)
    assert not ok, f"refused client got an answer over {version.name}"
    assert server_error in server.wait_for_error(), server.errors
    assert server.handshakes == 0


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2], ids=["tls13", "tls12"])
def test_mtls_server_accepts_the_valid_client(pki: RunPKI, serve: list[TLSServer],
                                              version: ssl.TLSVersion) -> None:
    server = start(serve, server_context(pki.server, client_ca=pki.ca_path))
    ok, detail = exchange(ssl_client_context(pki.ca_path, pki.client, max_version=version), server.port)
    assert ok, detail
    assert detail == {ssl.TLSVersion.TLSv1_3: "TLSv1.3", ssl.TLSVersion.TLSv1_2: "TLSv1.2"}[version]
    assert server.errors == []


def test_server_certificate_works_as_a_client_identity(pki: RunPKI, serve: list[TLSServer]) -> None:
    """A node presents its server certificate as its client certificate on the p2p port."""
    node = pki.node_cert("dual-use", ["node1.qdrant", "127.0.0.1"])
    server = start(serve, server_context(node, client_ca=pki.ca_path))
    ok, detail = exchange(ssl_client_context(pki.ca_path, node), server.port, server_hostname="node1.qdrant")
    assert ok, detail


@pytest.mark.parametrize("key_type", ["ec384", "rsa2048", "ed25519"])
def test_other_key_types_handshake(pki: RunPKI, serve: list[TLSServer], key_type: str) -> None:
    leaf = pki.issue(f"kt-{key_type}", LOCAL_HOSTS, key_type=key_type)  # type: ignore[arg-type]
    key = serialization.load_pem_private_key(leaf.key_pem, password=None)
    expected = {"ec384": ec.EllipticCurvePrivateKey, "rsa2048": rsa.RSAPrivateKey,
                "ed25519": ed25519.Ed25519PrivateKey}[key_type]
    assert isinstance(key, expected)
    server = start(serve, server_context(leaf, client_ca=pki.ca_path))
    ok, detail = exchange(ssl_client_context(pki.ca_path, leaf), server.port)
    assert ok, detail


# -- protocol versions --------------------------------------------------------------------


def test_max_version_is_what_the_client_offers(pki: RunPKI, serve: list[TLSServer]) -> None:
    server = start(serve, server_context(pki.server, minimum=ssl.TLSVersion.TLSv1_3))
    ok, detail = exchange(ssl_client_context(pki.ca_path, max_version=ssl.TLSVersion.TLSv1_2), server.port)
    assert not ok
    ok, detail = exchange(ssl_client_context(pki.ca_path, min_version=ssl.TLSVersion.TLSv1_3), server.port)
    assert ok and detail == "TLSv1.3"


def test_legacy_versions_are_really_offered(pki: RunPKI, serve: list[TLSServer]) -> None:
    """A TLS 1.0 probe must reach a server that allows TLS 1.0, or its refusal elsewhere proves nothing."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        permissive = server_context(pki.server)
        permissive.minimum_version = ssl.TLSVersion.TLSv1
        permissive.set_ciphers("DEFAULT:@SECLEVEL=0")
        legacy = ssl_client_context(pki.ca_path, max_version=ssl.TLSVersion.TLSv1)
    assert legacy.maximum_version == ssl.TLSVersion.TLSv1
    server = start(serve, permissive)
    ok, detail = exchange(legacy, server.port)
    assert ok and detail == "TLSv1", detail
    strict = start(serve, server_context(pki.server))
    ok, detail = exchange(legacy, strict.port)
    assert not ok


# -- helpers ------------------------------------------------------------------------------


def _leaves(run_pki: RunPKI) -> list[CertFiles]:
    return [v for v in vars(run_pki).values() if isinstance(v, CertFiles)]


def _cas(run_pki: RunPKI) -> list[CAFiles]:
    return [v for v in vars(run_pki).values() if isinstance(v, CAFiles)]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _pem_body_lines(pem: bytes) -> list[str]:
    return [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]


def _registered_key_for(ca: CAFiles) -> str | None:
    public = _cert(ca).public_key()
    for secret in REDACTOR.secrets():
        if "PRIVATE KEY-----" not in secret:
            continue
        try:
            key = serialization.load_pem_private_key(secret.encode(), password=None)
        except ValueError:
            continue
        if key.public_key() == public:
            return secret
    return None

"""Certificate rotation with ``tls.cert_ttl`` (spec §7), profile ``rotation``: ROT-REST-001..005, ROT-GRPC-001.

Qdrant reloads lazily: the first REST handshake after the TTL re-reads
``tls.cert`` and ``tls.key``; open connections keep the old certificate; when
the new files cannot be loaded the old certificate stays in service and every
later handshake tries again (v1.3.0+); gRPC never reloads. The profile sets
``cert_ttl: 1``.

The work happens in two phases, each run at most once per run and shared by
the tests that read its observations (so tests can run in any order or alone):

- *rotate*: with a keep-alive connection open, replace cert and key
  atomically (temp file + ``os.replace``) with a certificate the server is not
  serving, then poll with a deadline until a **new** handshake presents it;
  the old connection is used again; a new gRPC handshake is read.
- *broken*: replace the files with garbage, handshake repeatedly until well
  past the TTL; then with a valid certificate and a key that does not match
  it; then restore valid files and poll until they are served. That last step
  is the positive twin: the reload mechanism was live all along, so "kept
  the old certificate" is not the result of a server that never reloads.

Which certificate is installed is decided from what the server serves at the
time (``pki.server_rotated`` first, fresh leaves from the run CA after that),
so the phases also work on a server rotated before. Files are always left
valid. An external target is never modified: every test is *disabled* there.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from qdrant_conformance.fixtures import tls_probe
from qdrant_conformance.fixtures.client_tls import ssl_client_context
from qdrant_conformance.fixtures.clients.rest import RestClient
from qdrant_conformance.fixtures.outcomes import disabled, inconclusive, note, record
from qdrant_conformance.fixtures.pki import LOCAL_HOSTS, CertFiles, RunPKI

pytestmark = pytest.mark.profiles("rotation")

req = pytest.mark.requirement

#: The profile's tls.cert_ttl (fixtures/profiles.py: rotation).
TTL = 1.0
#: How long past the TTL a reload may take to show (a loaded CI machine; normally well under a second).
RELOAD_GRACE = 10.0
#: How far past the TTL the broken-file phase keeps handshaking.
PAST_TTL = 0.6
POLL = 0.05


def _garbage_pem(label: str) -> bytes:
    return (f"-----BEGIN {label}-----\n".encode() + secrets.token_hex(48).encode() + b"\n"
            + f"-----END {label}-----\n".encode())


@dataclass
class Handshakes:
    """New REST handshakes made during one window, in order."""

    seen: list[tls_probe.Handshake] = field(default_factory=list)

    def serials(self) -> set[int | None]:
        return {h.leaf_serial if h.completed else None for h in self.seen}

    def failed(self) -> list[tls_probe.Handshake]:
        return [h for h in self.seen if not h.completed]

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for h in self.seen:
            key = f"serial {h.leaf_serial:x}" if h.completed and h.leaf_serial is not None else f"failed ({h.error})"
            counts[key] = counts.get(key, 0) + 1
        return f"{len(self.seen)} handshakes: " + ", ".join(f"{n}x {k}" for k, n in counts.items())


@dataclass
class RotateObservation:
    old_serial: int | None
    new_serial: int
    startup_serial: int
    reload_seconds: float | None  # from installing the files to the first handshake presenting them
    after: Handshakes
    kept_alive: list[Any]  # Outcomes on the connection opened before the rotation
    first_connection: str | None
    grpc_before: tls_probe.Handshake | None
    grpc_after: tls_probe.Handshake | None

    def show(self) -> None:
        """Put what the shared rotation saw into the current test's evidence."""
        note(f"rotation (made once for the ROT tests): startup serial {self.startup_serial:x}, old {self.old_serial}, "
             f"new {self.new_serial:x}, reload after {self.reload_seconds}s; after: {self.after.summary()}")
        for outcome in self.kept_alive:
            record(outcome)
        note(f"connection opened before the rotation reused: {self.first_connection is not None}; gRPC before: "
             f"{self.grpc_before.summary() if self.grpc_before else None}; after: "
             f"{self.grpc_after.summary() if self.grpc_after else None}")


@dataclass
class BrokenObservation:
    serving: int | None  # what new handshakes presented before the files were broken
    garbage: Handshakes
    garbage_after_ttl: Handshakes  # the subset made once the TTL had passed since the files were broken
    mismatch: Handshakes
    plaintext: list[Any]
    restored_serial: int
    restore_seconds: float | None
    log_mentions_failure: bool | None

    def show(self) -> None:
        """Put what the shared broken-files phase saw into the current test's evidence."""
        note(f"broken files (made once for the ROT tests): serving {self.serving}; garbage: {self.garbage.summary()}; "
             f"after the TTL: {self.garbage_after_ttl.summary()}; key mismatch: {self.mismatch.summary()}")
        for outcome in self.plaintext:
            record(outcome)
        note(f"valid files restored (serial {self.restored_serial:x}) served after {self.restore_seconds}s")


class Rotator:
    """Drives the rotation server's files and remembers what each phase saw."""

    def __init__(self, pki: RunPKI) -> None:
        self.pki = pki
        self._fresh = itertools.count(1)
        self.rotate: RotateObservation | None = None
        self.broken: BrokenObservation | None = None
        self._server: Any = None

    # -- files ------------------------------------------------------------------------------

    def _tls_dir(self, server: Any) -> Path:
        assert server.workdir is not None
        return Path(server.workdir) / "tls"

    def _replace(self, path: Path, data: bytes) -> None:
        """Atomically replace ``path``: a temp file beside it with the same mode and owner, then ``os.replace``.

        The owner matters for a container whose user is not ours: the launcher gave the
        original files to that user, and a key only we can read would look like a broken file.
        """
        st = path.stat() if path.exists() else None
        mode = st.st_mode & 0o777 if st is not None else 0o600
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fd, mode)
            if st is not None and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.fchown(fd, st.st_uid, st.st_gid)
                except PermissionError:
                    pass  # only root can give files away; the test then reports what the server did
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def install(self, server: Any, chain_pem: bytes, key_pem: bytes) -> float:
        """Write key then cert (each atomically); returns the monotonic time the pair was complete."""
        tls_dir = self._tls_dir(server)
        self._replace(tls_dir / "key.pem", key_pem)
        self._replace(tls_dir / "cert.pem", chain_pem)
        return time.monotonic()

    def fresh_leaf(self, avoid: set[int | None]) -> CertFiles:
        """``pki.server_rotated`` unless it is in ``avoid``; otherwise a new leaf from the run CA."""
        if self.pki.server_rotated.serial not in avoid:
            return self.pki.server_rotated
        return self.pki.issue(f"rotation-{os.getpid()}-{next(self._fresh)}", LOCAL_HOSTS)

    # -- probes -------------------------------------------------------------------------------

    def handshake(self, server: Any) -> tls_probe.Handshake:
        host, port = tls_probe.endpoint(server.rest_url, 6333)
        hs = tls_probe.handshake(host, port, ssl_client_context(self.pki.ca_path), timeout=5.0)
        if hs.error == "timed out":
            # A slow machine, not an answer: one more, more patient, try before it counts.
            hs = tls_probe.handshake(host, port, ssl_client_context(self.pki.ca_path), timeout=15.0)
        return hs

    def grpc_handshake(self, server: Any) -> tls_probe.Handshake | None:
        if not server.grpc_target:
            return None
        host, port = tls_probe.endpoint(server.grpc_target, 6334)
        return tls_probe.handshake(host, port, ssl_client_context(self.pki.ca_path), alpn=["h2"], timeout=10.0)

    def wait_for(self, server: Any, serial: int, since: float, into: Handshakes) -> float | None:
        """New handshakes until one presents ``serial``; seconds after ``since``, or ``None`` at the deadline."""
        deadline = since + TTL + RELOAD_GRACE
        while True:
            hs = self.handshake(server)
            into.seen.append(hs)
            if hs.completed and hs.leaf_serial == serial:
                return time.monotonic() - since
            if time.monotonic() >= deadline:
                return None
            time.sleep(POLL)  # pacing between polls of a deadline loop, not synchronisation

    def window(self, server: Any, until: float, into: Handshakes, every: Any = None) -> None:
        """New handshakes until ``until`` (monotonic), calling ``every()`` between them."""
        while True:
            into.seen.append(self.handshake(server))
            if every is not None:
                every()
            if time.monotonic() >= until:
                return
            time.sleep(POLL)

    # -- phases -------------------------------------------------------------------------------

    def run_rotate(self, server: Any) -> RotateObservation:
        if self.rotate is not None:
            self.rotate.show()
            return self.rotate
        keep = server.new_rest()
        try:
            first = tls_probe.until_answered(lambda: keep.request("GET", "/", headers=server.key_headers()))
            assert first.succeeded, f"the rotation server does not answer over TLS: {first.summary()}"
            connection = keep.last_connection.local_address if keep.last_connection else None
            old = tls_probe.Handshake(completed=True, error=None,
                                      chain_der=(first.peer_cert_der,) if first.peer_cert_der else ())
            grpc_before = self.grpc_handshake(server)
            avoid = {old.leaf_serial, self.pki.server.serial,
                     grpc_before.leaf_serial if grpc_before is not None else None}
            new = self.fresh_leaf(avoid)
            installed = self.install(server, new.chain_pem, new.key_pem)
            after = Handshakes()
            kept: list[Any] = []
            seconds = self.wait_for(server, new.serial, installed, after)
            kept.append(keep.request("GET", "/", headers=server.key_headers()))
            kept_connection = keep.last_connection.local_address if keep.last_connection else None
            grpc_after = self.grpc_handshake(server)
        finally:
            keep.close()
        self.rotate = RotateObservation(
            old_serial=old.leaf_serial, new_serial=new.serial, startup_serial=self.pki.server.serial,
            reload_seconds=seconds, after=after, kept_alive=kept,
            first_connection=connection if connection == kept_connection else None,
            grpc_before=grpc_before, grpc_after=grpc_after)
        return self.rotate

    def run_broken(self, server: Any) -> BrokenObservation:
        if self.broken is not None:
            self.broken.show()
            return self.broken
        before = self.handshake(server)
        serving = before.leaf_serial if before.completed else None
        garbage, past_ttl, mismatch = Handshakes(), Handshakes(), Handshakes()
        plaintext: list[Any] = []
        host, port = tls_probe.endpoint(server.rest_url, 6333)
        url_host = f"[{host}]" if ":" in host else host
        plain = RestClient(f"http://{url_host}:{port}")
        restored: CertFiles | None = None
        restore_seconds: float | None = None
        try:
            broke = self.install(server, _garbage_pem("CERTIFICATE"), _garbage_pem("PRIVATE KEY"))
            self.window(server, broke + TTL, garbage)
            self.window(server, time.monotonic() + PAST_TTL, past_ttl)
            garbage.seen.extend(past_ttl.seen)
            plaintext.append(plain.request("GET", "/"))
            # A valid certificate with someone else's key: the age is already past the TTL, so every
            # handshake retries the reload at once.
            cert = self.fresh_leaf({serving})
            other_key = self.pki.foreign_client.key_pem
            self.install(server, cert.chain_pem, other_key)
            self.window(server, time.monotonic() + PAST_TTL, mismatch)
            plaintext.append(plain.request("GET", "/"))
        finally:
            plain.close()
            # Leave valid files whatever happened, and use the restore as the positive twin.
            restored = self.fresh_leaf({serving, self.pki.server.serial})
            at = self.install(server, restored.chain_pem, restored.key_pem)
            after = Handshakes()
            restore_seconds = self.wait_for(server, restored.serial, at, after)
        logs = server.logs() if server.workdir is not None else ""
        self.broken = BrokenObservation(
            serving=serving, garbage=garbage, garbage_after_ttl=past_ttl, mismatch=mismatch,
            plaintext=plaintext, restored_serial=restored.serial, restore_seconds=restore_seconds,
            log_mentions_failure=("Failed to refresh server TLS certificate" in logs) if logs else None)
        return self.broken


@pytest.fixture(scope="module")
def rotator(pki) -> Iterator[Rotator]:
    yield Rotator(pki)


def _rotation_server(qdrant: Any) -> Any:
    server = qdrant("rotation")
    if not server.can_modify_files:
        disabled("rotation rewrites the target's certificate files; the suite never modifies an external target")
    assert server.tls, "the rotation profile's REST URL is not https"
    return server


@req("ROT-REST-001")
def test_rest_presents_new_certificate_after_ttl(qdrant, rotator, record_property):
    obs = rotator.run_rotate(_rotation_server(qdrant))
    record_property("reload_seconds", obs.reload_seconds)
    assert obs.old_serial is not None and obs.old_serial != obs.new_serial, "no distinct certificate to rotate to"
    assert obs.reload_seconds is not None, (
        f"after replacing cert.pem and key.pem, no new handshake presented the new certificate (serial "
        f"{obs.new_serial:x}) within TTL {TTL:g}s + {RELOAD_GRACE:g}s: {obs.after.summary()}")


@req("ROT-REST-002")
def test_rest_connection_opened_before_rotation_keeps_working(qdrant, rotator):
    obs = rotator.run_rotate(_rotation_server(qdrant))
    if obs.reload_seconds is None:
        # No rotation means nothing here was shown: an error, never "unsupported" (the profile asks for it).
        inconclusive(f"the certificate never rotated ({obs.after.summary()}), so no connection can outlive a "
                     "rotation; ROT-REST-001 reports the missing reload")
    (outcome,) = obs.kept_alive
    assert outcome.succeeded, f"the connection opened before the rotation failed afterwards: {outcome.summary()}"
    assert obs.first_connection is not None, (
        "the request after the rotation did not travel on the connection opened before it (the client had to "
        "reconnect), so the old connection did not survive")
    assert outcome.peer_cert_der is not None, "the old connection's certificate could not be read"
    served = tls_probe.Handshake(completed=True, error=None, chain_der=(outcome.peer_cert_der,)).leaf_serial
    assert served == obs.old_serial, (
        f"the old connection reports certificate {served}, expected the pre-rotation {obs.old_serial}")


@req("ROT-GRPC-001")
def test_grpc_keeps_startup_certificate(qdrant, rotator):
    server = _rotation_server(qdrant)
    if not server.grpc_target:
        disabled("no gRPC endpoint for this target")
    # Whether REST rotated or not, the files changed and the TTL passed long ago for a listener loaded at
    # start-up, so a gRPC listener that reloaded would present the new certificate on a new handshake.
    obs = rotator.run_rotate(server)
    assert obs.grpc_before is not None and obs.grpc_before.completed, (
        f"no TLS handshake on the gRPC port: {obs.grpc_before.summary() if obs.grpc_before else None}")
    assert obs.grpc_after is not None and obs.grpc_after.completed, (
        f"the gRPC port stopped completing handshakes after the files were replaced: "
        f"{obs.grpc_after.summary() if obs.grpc_after else None}")
    assert obs.grpc_after.leaf_serial == obs.grpc_before.leaf_serial == obs.startup_serial, (
        f"Qdrant's gRPC port keeps the certificate read at start-up (serial {obs.startup_serial:x}; spec §7: "
        f"'TTL not supported'); it presented {obs.grpc_before.leaf_serial} before and "
        f"{obs.grpc_after.leaf_serial} after the files changed to serial {obs.new_serial:x}")


@req("ROT-REST-003")
def test_rest_keeps_previous_certificate_when_new_files_are_garbage(qdrant, rotator):
    obs = rotator.run_broken(_rotation_server(qdrant))
    assert obs.restore_seconds is not None, (
        f"positive twin failed: valid files written after the broken ones were never served (serial "
        f"{obs.restored_serial:x}), so the reload mechanism was not live and 'kept the old certificate' proves "
        f"nothing")
    assert obs.serving is not None, "no certificate was being served before the files were broken"
    assert obs.garbage_after_ttl.seen, "no handshake was made after the TTL had passed"
    assert obs.garbage.serials() == {obs.serving}, (
        f"with unparsable cert.pem/key.pem, Qdrant keeps serving the previous certificate (serial "
        f"{obs.serving:x}) on every new handshake (spec §7); saw {obs.garbage.summary()}")


@req("ROT-REST-004")
def test_rest_handshakes_abort_while_new_files_are_garbage(qdrant, rotator):
    obs = rotator.run_broken(_rotation_server(qdrant))
    assert obs.restore_seconds is not None, "positive twin failed: valid files were never served again"
    assert obs.garbage_after_ttl.seen and not any(h.completed for h in obs.garbage_after_ttl.seen), (
        f"Qdrant v1.2.x aborts the handshake when the reload fails (spec §7 'History'); after the TTL: "
        f"{obs.garbage_after_ttl.summary()}")


@req("ROT-REST-005")
def test_rest_never_falls_back_while_new_files_are_broken(qdrant, rotator, record_property):
    obs = rotator.run_broken(_rotation_server(qdrant))
    served_plain = [o for o in obs.plaintext if o.refused is None]
    assert not served_plain, (
        "the REST port answered plaintext HTTP while its certificate files were broken: "
        + "; ".join(o.summary() for o in served_plain))
    # Every handshake here used a context that trusts only the run CA and checks the host: a completed one
    # presented a certificate that verifies. Anything else must have failed, not fallen back.
    while_broken = obs.garbage.seen + obs.mismatch.seen
    odd = [h for h in while_broken if not h.completed and h.error is not None and h.error.startswith("connect")]
    assert not odd, "the REST port stopped listening while the files were broken: " + odd[0].summary()
    assert obs.garbage.seen and obs.mismatch.seen, "no handshake was made while the files were broken"
    # Qdrant keeps its previous certificate (spec §7) or, with a mismatched pair, presents the new one, which
    # chains to the CA, and fails on its signature (inferred); neither fails certificate verification. A
    # certificate that does not verify is one the server made up or picked elsewhere: a client that trusts
    # the deployment's CA is then told to trust something else.
    unverified = [h for h in while_broken
                  if not h.completed and h.error is not None and h.error.startswith("certificate verify failed")]
    assert not unverified, (
        f"while its certificate files were broken the REST port presented a certificate that does not verify "
        f"against the deployment's CA for {len(unverified)} of {len(while_broken)} handshakes: "
        f"{unverified[0].summary()}")
    if obs.restore_seconds is None:
        # The positive twin: without it nothing shows the server ever read the broken files.
        inconclusive(f"the target never reloaded its certificate files (valid files written afterwards were not "
                     f"served either: serial {obs.restored_serial:x}), so nothing shows it ever read the broken "
                     "ones; ROT-REST-001/003 report the missing reload")
    record_property("while_garbage", obs.garbage.summary())
    # spec §7 (inferred): Qdrant accepts a mismatched pair and its handshakes fail until the next good reload;
    # keeping the previous certificate is as safe. Either is recorded, neither fails this requirement.
    record_property("while_key_mismatch", obs.mismatch.summary())
    record_property("log_mentions_refresh_failure", obs.log_mentions_failure)

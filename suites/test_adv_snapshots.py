"""Known snapshot advisories, reproduced harmlessly by behaviour (ADV-REST-001..003, hardening.yaml).

Each check shows the flaw's absence on the target whatever version it claims (a
``fix:`` requirement is checked even on an older claim, spec §9):

* ADV-REST-001, GHSA-3v92-w72v-j994 (v1.18.1): a read-only key's snapshot upload
  declares a body larger than the server's JSON limit (32 MiB, spec §10) and sends
  64 KiB; the 403 must come back before more is sent (spec §4: refused before the
  body is read). For a launched server, no file under its work dir may hold the
  upload's marker afterwards.
* ADV-REST-002 (v1.17.1, #8341): ``file://`` recovery outside the snapshots dir,
  directly and through dot segments, is refused with 403 and the spec's message.
* ADV-REST-003 (v1.18.0, #8628): with URL recovery switched off, recovery from a
  URL on the suite's own loopback canary is refused with 403, and the canary got
  no request; the twin shows the same canary is reachable from the target.

The REST whitelist path tricks fixed in v1.18.2 (#9254) are AUTHZ-REST-011/012/019.
On an external target the upload is a write (a vulnerable server stores it), so it
runs only with ``--allow-disruptive``.
"""

from __future__ import annotations

import json
import re
import secrets
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from qdrant_conformance.fixtures.catalog.access_requests import multipart_upload
from qdrant_conformance.fixtures.hardening import Canary, early_upload
from qdrant_conformance.fixtures.outcomes import disabled, inconclusive

pytestmark = pytest.mark.profiles("api-key", "switches")

req = pytest.mark.requirement

#: More than max_request_size_mb's 32 MiB default (spec §1.1), so no server would take it as JSON.
DECLARED = 33 * 1024 * 1024
FIRST_CHUNK = 64 * 1024
#: How long the answer to an upload's first chunk may take before the rest of the body is sent.
#: A server that refuses before reading answers in milliseconds; this only bounds a slow machine.
EARLY_WINDOW_S = 5.0
MSG_OUTSIDE = "Snapshot file path must be inside the snapshots directory"
MSG_URL_OFF = "Forbidden: Snapshot recovery from remote URLs is disabled in the configuration"


def _scratch_name(kind: str) -> str:
    return f"qsc-adv-{kind}-{secrets.token_hex(4)}"


def _error_text(outcome: Any) -> str:
    try:
        return str(json.loads(outcome.body)["status"]["error"])
    except (ValueError, KeyError, TypeError):
        return outcome.text


def _files_holding(root: Path, marker: bytes, since: float) -> list[str]:
    """Files under ``root`` written since ``since`` (epoch seconds) that hold ``marker``."""
    found = []
    for path in root.rglob("*"):
        try:
            info = path.lstat()
            if stat.S_ISREG(info.st_mode) and info.st_mtime >= since and marker in path.read_bytes():
                found.append(str(path.relative_to(root)))
        except OSError:
            continue
    return found


@req("ADV-REST-001")
def test_snapshot_upload_refused_before_the_body(qdrant: Callable[[str], Any], target_options: Any) -> None:
    server = qdrant("api-key")
    if not server.capabilities.may_disrupt:
        disabled("an upload is a write on a vulnerable server; pass --allow-disruptive to run it on an external target")
    ro = server.key_headers("read_only")
    if not ro:
        disabled("the deployment has no read-only key (--read-only-key-file)")
    collection = _scratch_name("upload")
    path = f"/collections/{collection}/snapshots/upload?wait=true"
    body, content_type = multipart_upload()
    twin = server.rest().request("POST", path, headers={**server.key_headers(), "content-type": content_type},
                                 content=body)
    if twin.allowance != "allowed":
        inconclusive(f"positive twin: the manage key's upload got no definite non-auth answer: {twin.summary()}")
    readable = server.rest().request("GET", "/collections", headers=ro)
    if readable.allowance != "allowed":
        inconclusive(f"positive twin: the read-only key cannot read /collections: {readable.summary()}")

    marker = f"qsc-upload-marker-{secrets.token_hex(8)}".encode()
    boundary = "qsc" + secrets.token_hex(8)
    first = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"snapshot\"; filename=\"x.snapshot\"\r\n"
             "Content-Type: application/octet-stream\r\n\r\n").encode() + marker
    first += bytes(FIRST_CHUNK - len(first))
    sent_at = time.time() - 1.0  # file times have coarse resolution on some filesystems
    seen = early_upload(server.rest_url, path, {**ro, "content-type": f"multipart/form-data; boundary={boundary}"},
                        declared=DECLARED, first_chunk=first, wait_s=EARLY_WINDOW_S,
                        ssl_context=server.ssl_context())
    if seen.status is None:
        inconclusive(f"the read-only upload got no answer: {seen.summary()}")
    assert seen.status == 403, (
        f"a read-only key's snapshot upload must be refused with 403 (spec §4); got {seen.summary()}")
    assert seen.answered_early, (
        f"GHSA-3v92-w72v-j994: the 403 came only after the whole body was read ({seen.summary()}); Qdrant "
        "v1.18.1+ authorises upload endpoints before reading the body (spec §4), so a read-only key cannot "
        "make the server write an upload of any size to disk")
    landed = [hit for root in _disk_roots(server) for hit in _files_holding(root, marker, sent_at)]
    assert not landed, (
        f"GHSA-3v92-w72v-j994: bytes of the refused upload were written to disk: {', '.join(landed[:5])}")


def _disk_roots(server: Any) -> list[Path]:
    """Where a launched server writes: its work dir, and a container's storage and snapshot volumes."""
    roots: list[Path] = server.storage_roots()
    return roots


@req("ADV-REST-002")
def test_file_recovery_outside_the_snapshots_dir_is_refused(qdrant: Callable[[str], Any]) -> None:
    server = qdrant("api-key")
    manage = server.key_headers()
    rest = server.rest()
    path = f"/collections/{_scratch_name('recover')}/snapshots/recover?wait=true"

    def recover(location: str) -> Any:
        return rest.request("PUT", path, headers=manage, json={"location": location})

    outside = recover("file:///etc/passwd")
    text = _error_text(outside)
    assert outside.status == 403 and MSG_OUTSIDE in text, (
        f"Qdrant v1.17.1+ (#8341) refuses a file:// location outside the snapshots directory with 403 "
        f"'Forbidden: {MSG_OUTSIDE} \"<dir>\"' (spec §10); file:///etc/passwd got {outside.summary()}")
    named = re.search(r'directory "([^"]+)"', text)
    if named is None:
        inconclusive(f"the refusal does not name the snapshots directory, so no traversal can be built: {text!r}")
    snapshots_dir = named.group(1).rstrip("/")
    twin = recover(f"file://{snapshots_dir}/qsc-absent-{secrets.token_hex(4)}.snapshot")
    if twin.allowance != "allowed" or twin.status == 403:
        inconclusive(f"positive twin: a missing file inside {snapshots_dir} should get a non-403 answer "
                     f"(400, spec §10), so the 403 above is about the location: {twin.summary()}")
    climbing = recover(f"file://{snapshots_dir}/../../../../../../etc/passwd")
    assert climbing.status == 403 and MSG_OUTSIDE in _error_text(climbing), (
        f"a file:// location that climbs out of {snapshots_dir} with dot segments must be refused too "
        f"(#8341 resolves the path first); got {climbing.summary()}")


def _canary_reachable(server: Any, target_options: Any) -> None:
    if server.capabilities.loopback_canary:
        return
    if server.capabilities.container:
        disabled("the suite's canary listens on 127.0.0.1, which a container on a bridge network cannot reach "
                 "(run with --docker-network host)")
    disabled("the suite's canary listens on 127.0.0.1 only, which this target cannot reach")


@req("ADV-REST-003")
def test_url_recovery_switched_off_contacts_nothing(qdrant: Callable[[str], Any], target_options: Any) -> None:
    hardened = qdrant("switches")
    _canary_reachable(hardened, target_options)
    default = qdrant("api-key")
    with Canary() as canary:
        reach = f"/qsc-canary-{secrets.token_hex(6)}.snapshot"
        default.rest().request("PUT", f"/collections/{_scratch_name('url')}/snapshots/recover?wait=true",
                               headers=default.key_headers(), json={"location": canary.url(reach)})
        if canary.asked_for(reach) == 0:
            inconclusive("positive twin: with URL recovery at its default (on) the target did not fetch the "
                         f"canary at {canary.url(reach)}, so silence below would prove nothing")
        probe = f"/qsc-canary-{secrets.token_hex(6)}.snapshot"
        refused = hardened.rest().request(
            "PUT", f"/collections/{_scratch_name('url')}/snapshots/recover?wait=true",
            headers=hardened.key_headers("alt"), json={"location": canary.url(probe)})
        fetched = canary.asked_for(probe)
    if fetched == 0 and refused.status == 401:
        inconclusive("positive twin: the switches profile refused its alternate key (its only manage key), so the "
                     f"switch itself was never reached: {refused.summary()}")
    assert fetched == 0, (
        f"with service.enable_snapshot_url_recovery: false the target still fetched {canary.url(probe)} "
        f"({fetched} request(s)); answer: {refused.summary()}")
    assert refused.status == 403 and MSG_URL_OFF in _error_text(refused), (
        f"Qdrant v1.18.0+ (#8628) refuses URL recovery with 403 '{MSG_URL_OFF}' when it is switched off "
        f"(spec §10); got {refused.summary()}")

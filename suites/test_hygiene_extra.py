"""Hygiene checks the other suites do not make (requirements HYG-*, fixtures/catalog/requirements/extra.yaml).

HYG-ANY-001: keys presented to the server, wrong or right, over REST and gRPC,
never show up in the server's log (spec §10: no key or token is ever logged).
The positive twin is that the log is readable and records the requests: a
request to a unique path is sent last and the log is polled, with a deadline,
until that path shows, so the requests before it have been logged too.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest

from qdrant_conformance.fixtures.outcomes import disabled, harness_error
from qdrant_conformance.fixtures.secrets import REDACTOR

pytestmark = pytest.mark.profiles("api-key")

req = pytest.mark.requirement

#: How long the server may take to write the marker request's log line.
LOG_DEADLINE = 10.0
POLL = 0.05


@req("HYG-ANY-001")
def test_presented_keys_never_reach_the_server_log(qdrant: Callable[[str], Any], target_options: Any) -> None:
    if not qdrant.capabilities.server_log:
        disabled("the suite cannot read an external target's log")
    server = qdrant("api-key")
    manage = server.credentials.api_key
    if not manage:
        harness_error("the api-key profile has no manage key")
    wrong = "qsc-log-probe-" + secrets.token_urlsafe(18)
    REDACTOR.register("log-probe", wrong)
    rest, grpc = server.rest(), server.grpc()
    sent = [
        rest.request("GET", "/collections", headers={"api-key": wrong}),
        rest.request("GET", "/collections", headers={"authorization": f"Bearer {wrong}"}),
        rest.request("GET", "/collections", headers={"api-key": manage}),
        rest.request("GET", "/collections", headers={"authorization": f"Bearer {manage}"}),
        grpc.call("/qdrant.Collections/List", b"", metadata=[("api-key", wrong)]),
        grpc.call("/qdrant.Collections/List", b"", metadata=[("api-key", manage)]),
    ]
    unanswered = [o.summary() for o in sent if not o.answered]
    assert not unanswered, "requests got no answer, so the log proves nothing: " + "; ".join(unanswered)

    marker = f"/qsc-log-marker-{secrets.token_hex(6)}"
    rest.request("GET", marker, headers={"api-key": manage})
    deadline = time.monotonic() + LOG_DEADLINE
    log = server.logs()
    while marker not in log and time.monotonic() < deadline:
        time.sleep(POLL)  # polling the log file with a deadline, not a fixed wait
        log = server.logs()
    assert log.strip(), "the server log is empty: nothing to inspect (positive twin)"
    # The positive twin proper: this is the log of the server that got the requests, and it is written up to
    # the last of them. Without it an absent key could mean a wrong or stale log file.
    assert marker in log, (
        f"the marker request GET {marker} (sent last, answered: {server.rest().request('GET', '/').answered}) "
        f"did not appear in the server log within {LOG_DEADLINE:.0f} s, so the log read is not this server's "
        f"request log and proves nothing (spec §2.6: the logger middleware wraps every request, before auth)")
    leaked = [name for name, key in (("an unknown key", wrong), ("the manage key", manage)) if key in log]
    assert not leaked, f"the server log contains {' and '.join(leaked)} as presented by the client"

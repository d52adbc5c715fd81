"""No request the suite sends carries a slice or an edit of a configured key (issue 16, GUIDE "Secrets").

A wrong or near-miss key is a fresh random value (``fixtures.secrets.stand_in``).
The end-to-end test runs every suite with ``tests.key_spy`` watching every
plaintext byte written to a socket and every gRPC call's metadata, and requires
that no value shares a run of 8 characters with a configured key unless it is
that key itself.
"""

from __future__ import annotations

import json
import secrets

from qdrant_conformance.fixtures.secrets import DERIVED_RUN, alphabet_of, shares_run, stand_in
from tests.test_harness_run import run_suite


def test_shares_run_flags_slices_and_edits_but_not_the_key_itself() -> None:
    key = "qsc-m-" + secrets.token_urlsafe(32)
    assert not shares_run(f"api-key: {key}\r\n", key)
    assert not shares_run(f"authorization: Bearer {key}", key)
    assert shares_run(f"api-key: {key[:-1]}", key)
    assert shares_run(f"api-key: {key}x", key), "the key with a character added is an edit of it"
    assert not shares_run(f"GET /collections?api-key={key} HTTP/1.1", key)
    assert shares_run(f"api-key: x{key[3:3 + DERIVED_RUN]}y", key)
    assert not shares_run(f"api-key: {key[:DERIVED_RUN - 1]}", key)


def test_stand_in_is_fresh_same_length_same_class() -> None:
    for key in ("qsc-m-" + secrets.token_urlsafe(32), secrets.token_hex(24), "Pa$$w0rd!-" + secrets.token_hex(8)):
        for length in (None, len(key) + 1, len(key) - 1):
            value = stand_in(key, length)
            assert len(value) == (len(key) if length is None else length)
            assert value != key and not shares_run(value, key)
            assert set(value) <= set(alphabet_of(key))
    assert alphabet_of(secrets.token_hex(8)) == "0123456789abcdef"


def test_full_run_sends_no_value_derived_from_a_key(tmp_path) -> None:
    sent = tmp_path / "sent.json"
    proc = run_suite(["suites/", "-p", "tests.key_spy"], tmp_path,
                     env={"QSC_SPY_SENT_FILE": str(sent)}, timeout=600)
    output = proc.stdout + proc.stderr
    assert sent.exists(), f"the spy wrote nothing (exit {proc.returncode}): {output[-2000:]}"
    seen = json.loads(sent.read_text())
    # The spy saw the run: HTTP bytes, gRPC calls, and the configured keys themselves going where they belong.
    assert seen["keys"] == ["alt-api-key", "api-key", "read-only-api-key"], seen["keys"]
    assert seen["chunks"] > 1000 and seen["grpc_calls"] > 100 and seen["whole_key_seen"] > 100, {
        k: v for k, v in seen.items() if k != "violations"}
    where = sorted({f"{v['key']} via {v['channel']}" for v in seen["violations"]})
    assert not where, f"{len(seen['violations'])} values sent that share {DERIVED_RUN}+ characters with a key: {where}"

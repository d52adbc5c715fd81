"""Which transport refusals a positive twin does not wait out (``certificate_refused``, ``answered_without_tls``)."""

from __future__ import annotations

from types import SimpleNamespace

from qdrant_conformance.fixtures import tls_probe


def _refused(text: str | None) -> SimpleNamespace:
    return SimpleNamespace(refused=text)


def test_certificate_refusals_are_definite() -> None:
    for text in ("ConnectError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired",
                 "UNAVAILABLE: ... SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED: certificate has expired",
                 "UNAVAILABLE: ... Custom verification check failed with error: UNAUTHENTICATED: Hostname "
                 "Verification Check failed."):
        assert tls_probe.certificate_refused(_refused(text)), text


def test_slow_or_closed_ports_are_retried() -> None:
    for text in (None, "timed out", "ConnectError: Connection refused", "UNAVAILABLE: failed to connect to all "
                 "addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Failed to connect to remote host"):
        assert not tls_probe.certificate_refused(_refused(text)), text
    calls = []

    def exchange() -> SimpleNamespace:
        calls.append(1)
        return _refused("certificate verify failed: unable to get local issuer certificate")

    tls_probe.until_answered(exchange, deadline_s=5.0)
    assert len(calls) == 1, "a certificate refusal is not asked again until the deadline"


def test_a_plaintext_answer_to_a_handshake_is_definite_and_a_dropped_one_is_not() -> None:
    plaintext = ("UNAVAILABLE: failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Tls "
                 "handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:100000f7:SSL "
                 "routines:OPENSSL_internal:WRONG_VERSION_NUMBER")
    assert tls_probe.answered_without_tls(_refused(plaintext))
    assert tls_probe.answered_without_tls(_refused("ConnectError: [SSL: WRONG_VERSION_NUMBER] wrong version number"))
    for text in ("UNAVAILABLE: Socket closed", "ConnectError: [SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred",
                 "ConnectError: [Errno 104] Connection reset by peer", None):
        assert not tls_probe.answered_without_tls(_refused(text)), text
    calls = []

    def exchange() -> SimpleNamespace:
        calls.append(1)
        return _refused(plaintext)

    tls_probe.until_answered(exchange, deadline_s=5.0)
    assert len(calls) == 1, "a plaintext answer is not asked again until the deadline"

"""Start-up hygiene with broken TLS files (spec §1.5, §11.10; requirements TLS-ANY-003..005).

Each case is a variant of the ``tls`` profile that breaks one thing (no
``tls/cert.pem``, no ``tls/key.pem``, or a key that does not belong to the
certificate), started with ``qdrant.variants``. Qdrant (single node) exits with
``TLS file could not be opened: <path>`` when a file is missing; with a
mismatched pair its REST listener starts and every handshake fails, and gRPC
does not start (spec §1.5). Both are safe. What must never happen is a
server that comes up serving plaintext.

A node counts as "up" once its launcher says it runs and a server answers on
one of its ports at the application level (any byte back to an HTTP request, a
TLS ClientHello or an HTTP/2 preface, :func:`fixtures.launchers.base.answers`).
A TCP accept is not enough: Docker's userland proxy accepts on published ports
whether or not anything listens inside the container. A node that came up is
then watched for a short window (polling, with a deadline) with plaintext HTTP,
plaintext gRPC and verifying TLS handshakes on both ports.
Plaintext probes never carry an API key. The positive twin is the same
rendering with valid files (profile ``tls``), which starts and serves HTTPS.

An external target cannot be started with chosen files: *disabled*.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from qdrant_conformance.fixtures import tls_probe
from qdrant_conformance.fixtures.client_tls import ssl_client_context
from qdrant_conformance.fixtures.clients.grpc import GrpcClient
from qdrant_conformance.fixtures.clients.rest import RestClient
from qdrant_conformance.fixtures.launchers.base import (
    PORT_ATTEMPTS,
    Instance,
    LaunchError,
    PortConflict,
    Ports,
    answers,
)
from qdrant_conformance.fixtures.outcomes import disabled, inconclusive
from qdrant_conformance.fixtures.pki import RunPKI
from qdrant_conformance.fixtures.plugin import Variant
from qdrant_conformance.fixtures.servers import reserve_ports

pytestmark = pytest.mark.profiles("tls")

req = pytest.mark.requirement

#: How long a node may take before any port answers; a node that never answers serves nothing.
LISTEN_TIMEOUT = 10.0
#: How long a node that did come up is watched.
OBSERVE = 1.0
POLL = 0.1


@dataclass(frozen=True)
class Case:
    name: str
    drop: str | None = None  # relative file path removed from the rendering
    mismatched_key: bool = False


CASES = [
    Case("missing-cert", drop="tls/cert.pem"),
    Case("missing-key", drop="tls/key.pem"),
    Case("mismatched-key", mismatched_key=True),
]
CASE_IDS = [c.name for c in CASES]


@dataclass
class Trial:
    """What happened when one broken configuration was started."""

    case: Case
    launch_error: str | None = None
    port_conflict: bool = False  # every start lost a port to another process: nothing was observed
    logs: str = ""
    came_up: bool = False
    rest_target: str | None = None  # host:port probed, when known
    grpc_target: str | None = None
    plaintext: list[Any] = field(default_factory=list)  # Outcomes
    handshakes: list[tuple[str, tls_probe.Handshake]] = field(default_factory=list)

    def describe(self) -> str:
        state = "came up (a port answered)" if self.came_up else f"did not come up ({self.launch_error})"
        return f"{self.case.name}: {state}"


class StartupTrials:
    """Starts every broken configuration once (as variants of ``tls``, in parallel) and keeps what was observed."""

    def __init__(self, qdrant: Any, pki: RunPKI) -> None:
        self.qdrant = qdrant
        self.pki = pki

    def _files(self, case: Case) -> dict[str, bytes | None]:
        if case.drop is not None:
            return {case.drop: None}
        # A valid key of the same type, belonging to another certificate.
        return {"tls/key.pem": self.pki.server_rotated.key_pem}

    def run(self) -> dict[str, Trial]:
        # Where the target honours chosen ports, a node that exits can still be probed where it would have
        # listened; other targets choose their own.
        chosen = self.qdrant.capabilities.chosen_ports

        def up(instance: Instance) -> bool:
            rest = tls_probe.endpoint(instance.rest_url, 6333)
            grpc = tls_probe.endpoint(instance.grpc_target, 6334) if instance.grpc_target else None
            return answers(*rest) or (grpc is not None and answers(*grpc))

        pending = list(CASES)
        settled: dict[str, tuple[Variant, Instance | LaunchError]] = {}
        names: list[str] = []
        for attempt in range(PORT_ATTEMPTS):
            ports = reserve_ports(3 * len(pending)) if chosen else []
            variants = [Variant(f"tls-startup-{case.name}" + (f"-{attempt}" if attempt else ""), self._files(case),
                                Ports(*ports[3 * i:3 * i + 3]) if chosen else None)
                        for i, case in enumerate(pending)]
            names += [v.name for v in variants]
            started = self.qdrant.variants("tls", variants, ready=up, timeout=LISTEN_TIMEOUT, workers=len(pending))
            # A port another process took is no observation of this case: where it "would have
            # listened", the other process answers. Such a case starts again on other ports.
            retry = [case for case, v in zip(pending, variants, strict=True)
                     if isinstance(started[v.name], PortConflict) and attempt < PORT_ATTEMPTS - 1]
            settled.update({case.name: (v, started[v.name]) for case, v in zip(pending, variants, strict=True)
                            if case not in retry})
            pending = retry
            if not pending:
                break
        with ThreadPoolExecutor(max_workers=len(CASES)) as pool:
            trials = list(pool.map(lambda c: self._observe_one(c, *settled[c.name]), CASES))
        self.qdrant.stop(names)
        return {t.case.name: t for t in trials}

    def _observe_one(self, case: Case, variant: Variant, started: Instance | LaunchError) -> Trial:
        trial = Trial(case)
        if variant.ports is not None:
            trial.rest_target = f"127.0.0.1:{variant.ports.http}"
            trial.grpc_target = f"127.0.0.1:{variant.ports.grpc}"
        if isinstance(started, LaunchError):
            trial.launch_error = str(started)
            trial.logs = started.logs
            if isinstance(started, PortConflict):
                trial.port_conflict = True  # another process answers where it would have listened
                return trial
            self._observe(trial, deadline=time.monotonic())  # one round where it would have listened
            return trial
        trial.came_up = True
        h, p = tls_probe.endpoint(started.rest_url, 6333)
        trial.rest_target = f"{h}:{p}"
        trial.grpc_target = started.grpc_target or None
        self._observe(trial, deadline=time.monotonic() + OBSERVE)
        trial.logs = started.logs()
        return trial

    def _observe(self, trial: Trial, *, deadline: float) -> None:
        """Probe both ports until ``deadline`` (at least once)."""
        while True:
            if trial.rest_target is not None:
                host, port = tls_probe.endpoint(trial.rest_target, 6333)
                url_host = f"[{host}]" if ":" in host else host
                plain = RestClient(f"http://{url_host}:{port}", timeout=10.0)
                try:
                    trial.plaintext.append(plain.request("GET", "/"))
                finally:
                    plain.close()
                trial.handshakes.append(
                    ("rest", tls_probe.handshake(host, port, ssl_client_context(self.pki.ca_path), timeout=10.0)))
            if trial.grpc_target is not None:
                grpc = GrpcClient(trial.grpc_target, timeout=10.0)
                try:
                    trial.plaintext.append(tls_probe.until_answered(
                        lambda g=grpc: g.call("/qdrant.Qdrant/HealthCheck"), retry_if=tls_probe.slow_connection,
                        deadline_s=10.0))
                finally:
                    grpc.close()
                host, port = tls_probe.endpoint(trial.grpc_target, 6334)
                trial.handshakes.append(
                    ("grpc", tls_probe.handshake(host, port, ssl_client_context(self.pki.ca_path), alpn=["h2"],
                                                 timeout=10.0)))
            if time.monotonic() >= deadline:
                return
            time.sleep(POLL)  # pacing a deadline-bounded probe loop



@pytest.fixture(scope="module")
def trials() -> dict[str, Trial]:
    """The module's trials, run by the first test that gets past its twin (see :func:`_trial`)."""
    return {}


def _trial(qdrant: Any, pki: RunPKI, trials: dict[str, Trial], case: Case) -> Trial:
    if not trials:
        trials.update(StartupTrials(qdrant, pki).run())
    trial = trials[case.name]
    if trial.port_conflict:
        inconclusive(f"every start of this case lost a port to another process: {trial.describe()}")
    return trial


def _twin(qdrant: Callable[[str], Any]) -> Any:
    server = qdrant("tls")
    if not server.can_modify_files:
        disabled("needs servers started with broken TLS files; the suite never reconfigures an external target")
    outcome = tls_probe.until_answered(lambda: server.rest().request("GET", "/", headers=server.key_headers()))
    assert outcome.succeeded and outcome.tls_version, (
        f"positive twin failed: the same configuration with valid files does not serve HTTPS: {outcome.summary()}")
    return server


def _plaintext_answers(trial: Trial) -> list[Any]:
    # Any HTTP status or gRPC status on a TLS-configured port is the API speaking in clear.
    return [o for o in trial.plaintext if not tls_probe.refused_outright(o)]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@req("TLS-ANY-003")
def test_broken_tls_files_never_serve_plaintext(qdrant, pki, trials, case):
    _twin(qdrant)
    trial = _trial(qdrant, pki, trials, case)
    answered = _plaintext_answers(trial)
    assert not answered, (
        f"{trial.describe()}; with TLS enabled and a broken TLS file it answered plaintext: "
        + "; ".join(o.summary() for o in answered[:4]))


@pytest.mark.parametrize("case", [c for c in CASES if c.drop], ids=[c.name for c in CASES if c.drop])
@req("TLS-ANY-004")
def test_missing_tls_file_stops_startup(qdrant, pki, trials, case):
    _twin(qdrant)
    trial = _trial(qdrant, pki, trials, case)
    missing = case.drop.rsplit("/", 1)[-1] if case.drop else ""
    assert not trial.came_up, (
        f"Qdrant (single node) exits when {case.drop} is missing (spec §1.5, exit code 1 inferred from the "
        f"thread join order); this target started listening: {trial.describe()}")
    if not trial.logs.strip() and "not ready after" in (trial.launch_error or ""):
        # Neither listening nor gone by the deadline, and nothing logged yet: it has not decided (a loaded
        # machine), so there is no log line to judge.
        inconclusive(f"the server neither listened nor exited, and logged nothing: {trial.describe()}")
    assert "TLS file could not be opened" in trial.logs and missing in trial.logs, (
        f"Qdrant names the file: 'TLS file could not be opened: ./{case.drop}' (spec §1.5); "
        f"{trial.describe()}; log tail: {trial.logs[-600:]!r}")


@req("TLS-ANY-005")
def test_mismatched_key_is_not_served(qdrant, pki, trials):
    _twin(qdrant)
    case = next(c for c in CASES if c.mismatched_key)
    trial = _trial(qdrant, pki, trials, case)
    completed = [f"{proto}: {hs.summary()}" for proto, hs in trial.handshakes if hs.completed]
    assert not completed, (
        f"{trial.describe()}; a TLS handshake completed although tls.key does not belong to tls.cert "
        "(spec §1.5: REST starts and every handshake fails, gRPC does not start): " + "; ".join(completed))
    assert not _plaintext_answers(trial), f"{trial.describe()}; it answered plaintext"

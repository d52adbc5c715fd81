"""Cluster mode and peer-to-peer TLS (spec §1.5, §3, §8; requirements CLUSTER-*).

One cluster of three peers serves the module, the harness's ``cluster`` fixture:
started once per run with ``cluster.p2p.enable_tls`` on, API keys and TLS on
REST/gRPC, ``service.enforce_internal_auth`` on (the sound configuration since
v1.18.0; older releases ignore the key), each peer with a certificate of its own
from the run CA (see :mod:`fixtures.cluster`), and always stopped. Tests that need
other peers (a foreign-CA node, a node that joins through the wrong name, a
node without ``tls.ca_cert``) start them next to it and stop them again.

Every refusal runs next to its positive twin: the p2p port answers a client
certificate from the cluster's CA where it refuses a plaintext, certificate-less
or foreign one; the nodes that joined through the bootstrap peer's real name
are the twins of the node that tries its unlisted name. A p2p port that
answers plaintext gRPC fails CLUSTER-P2P-002..005 on that answer alone (it
checks no client certificate at all), before the TLS twin, which such a port
can never answer. The enforce_internal_auth checks (010..012) are about API
keys, not TLS: they dial the port the way the cluster's own peers do.

Server-side name checks are deliberately absent: Qdrant's p2p server verifies
a client certificate's chain, validity and usage, never its names (spec §8);
names are checked by the peer that dials (CLUSTER-P2P-006).

For self-tests, ``--cluster-p2p-tls off`` (``QSC_CLUSTER_P2P_TLS=off``) starts the
cluster without p2p TLS (an insecure cluster the suite must fail). For an external
target, ``--p2p-url`` (``host:port`` of one node's p2p port) enables the
port checks; checks that must start peers are disabled there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography import x509

from qdrant_conformance.fixtures import cert_inspection, tls_probe
from qdrant_conformance.fixtures.client_tls import ssl_client_context
from qdrant_conformance.fixtures.clients.grpc import GrpcClient
from qdrant_conformance.fixtures.cluster import Cluster, ExternalCluster, PeerIdentity, normalise_uri
from qdrant_conformance.fixtures.launchers.base import Instance, LaunchError, PortConflict, poll_until
from qdrant_conformance.fixtures.outcomes import Outcome, disabled, inconclusive, no_evidence, note
from qdrant_conformance.fixtures.secrets import REDACTOR

req = pytest.mark.requirement

#: A read-only internal method on Qdrant's p2p port, with an empty request.
P2P_INTERNAL = "/qdrant.QdrantInternal/GetConsensusCommit"
P2P_HEALTH = "/qdrant.Qdrant/HealthCheck"
#: A protected public gRPC method with an empty request.
GRPC_PROTECTED = "/qdrant.Collections/List"
CA_REQUIRED = "CA certificate is required for TLS configuration"
#: How long a node that must not join is watched, unless it exits first.
JOIN_WINDOW = 20.0


# -- fixtures ------------------------------------------------------------------
# ``cluster`` (the harness's): the run's three peers, or one node of an external cluster, version-gated.


def _launched(cluster: Cluster | ExternalCluster) -> Cluster:
    if not cluster.launched:
        disabled("needs peers started by the suite; an external cluster is never reconfigured")
    return cluster


@pytest.fixture
def enforcing_cluster(run_cluster) -> Cluster:
    """Peers the suite started with ``service.enforce_internal_auth`` on: the cluster under test."""
    return _launched(run_cluster)


@pytest.fixture(scope="module")
def ca_required_attempt(run_cluster) -> Iterator[dict[str, Any]]:
    """Start a peer with p2p TLS on and ``tls.ca_cert: null``, and its twin with the CA; record both."""
    launched = _launched(run_cluster)
    if not launched.p2p_tls:
        disabled("the cluster under test runs without p2p TLS (--cluster-p2p-tls off)")
    record: dict[str, Any] = {"error": None, "logs": "", "started": None, "twin_error": None}
    no_ca = {"tls": {"ca_cert": None}}
    # Side by side: neither start depends on the other, and each costs a container start.
    with ThreadPoolExecutor(max_workers=2) as pool:
        attempt = pool.submit(launched.start_node, "noca", join=False, extra=no_ca, member=False, timeout=20)
        with_ca = pool.submit(launched.start_node, "withca", join=False, member=False, timeout=30)
        try:
            node = attempt.result()
        except PortConflict:
            raise  # another process held its port: nothing was learnt about the server (error, not a pass)
        except LaunchError as exc:
            record["error"] = str(exc)
            record["logs"] = exc.logs
        else:
            record["started"] = node
            record["logs"] = node.logs()
        try:
            twin = with_ca.result()
        except LaunchError as exc:
            record["twin_error"] = f"{exc}\n{exc.logs[-1500:]}"
        else:
            launched.stop_node(twin)
    try:
        yield record
    finally:
        if record["started"] is not None:
            launched.stop_node(record["started"])


# -- helpers -------------------------------------------------------------------


def _note_attempt(attempt: dict[str, Any]) -> None:
    """The start-up attempts a test judges, as evidence (the fixture ran them once for two tests)."""
    started = "started and serves" if attempt["started"] is not None else f"did not start: {attempt['error']}"
    note(f"node with cluster.p2p.enable_tls and tls.ca_cert: null -> {started}; last log line: "
         f"{_log_tail(attempt['logs'], 1)!r}")
    note(f"the same node with tls.ca_cert (twin) -> {attempt['twin_error'] or 'started'}")


def p2p_client(cluster: Cluster | ExternalCluster, node: Instance, *, tls: bool = True,
               identity: PeerIdentity | None = None, timeout: float = 5.0) -> GrpcClient:
    """A gRPC client for ``node``'s p2p port: plaintext, or TLS trusting the cluster's CA only."""
    if node.p2p_target is None:
        raise LaunchError(f"{node.name} has no p2p address")
    if not tls:
        return GrpcClient(node.p2p_target, timeout=timeout)
    if cluster.ca_pem is None:
        disabled("no CA certificate for the p2p port (give --ca-cert)")
    return GrpcClient(
        node.p2p_target, root_certificates=cluster.ca_pem,
        private_key=identity.key_pem if identity else None,
        certificate_chain=identity.chain_pem if identity else None,
        server_name=cluster.p2p_server_name, timeout=timeout)


def valid_identity(cluster: Cluster | ExternalCluster) -> PeerIdentity:
    identity = cluster.identity
    if identity is None:
        disabled("no client certificate the p2p port should accept (give --client-cert/--client-key)")
    return identity


def call(client: GrpcClient, method: str, metadata: list[tuple[str, str]] | None = None) -> Outcome:
    try:
        return client.call(method, b"", metadata=metadata)
    finally:
        client.close()


def assert_port_answers(cluster: Cluster | ExternalCluster, node: Instance) -> None:
    """The positive twin: a client certificate from the cluster's CA gets a gRPC answer.

    Up to three fresh connections: one dropped handshake on a loaded machine is
    not a verdict about the port. (Refusals are never retried into passes: a
    refusal test fails as soon as one probe is answered.)
    """
    outcome = call(p2p_client(cluster, node, identity=valid_identity(cluster)), P2P_HEALTH)
    for _ in range(2):
        if outcome.answered:
            break
        outcome = call(p2p_client(cluster, node, identity=valid_identity(cluster)), P2P_HEALTH)
    if not outcome.answered:
        # No answer at all is not a verdict about the port: the refusal checks that rest on
        # this twin cannot be judged (three-valued allowance), so the test is an error.
        inconclusive(f"{node.name}: the p2p port does not answer even a client certificate issued by the "
                     f"cluster's CA, so its refusals prove nothing: {outcome.summary()}")


def _speaks_tls(cluster: Cluster | ExternalCluster) -> bool:
    """Whether the suite should dial ``cluster``'s p2p port with TLS (an external one is assumed to)."""
    return cluster.p2p_tls if cluster.launched else True


def assert_no_plaintext_answer(cluster: Cluster | ExternalCluster, node: Instance, consequence: str) -> None:
    """Fail if ``node``'s p2p port answers a plaintext gRPC call.

    A port that serves plaintext checks no client certificate at all, so every
    mutual-TLS refusal is void there; that is the server's behaviour, judged
    before the TLS twin (which a plaintext port can never answer).
    """
    outcome = call(p2p_client(cluster, node, tls=False), P2P_HEALTH)
    assert outcome.refused, (
        f"{node.name}: the p2p port answers plaintext gRPC (no TLS, so {consequence}): {outcome.summary()}")


def internal_client(cluster: Cluster | ExternalCluster, node: Instance) -> GrpcClient:
    """A client for ``node``'s p2p port over the transport its peers use: mutual TLS, or plaintext.

    The enforce_internal_auth checks are about API keys, which Qdrant checks
    whether p2p TLS is on or off (spec §3, §8); dialling TLS to a plaintext
    port would report a transport mismatch as a failure of theirs.
    """
    if _speaks_tls(cluster):
        return p2p_client(cluster, node, identity=valid_identity(cluster))
    return p2p_client(cluster, node, tls=False)


def watch_join(cluster: Cluster, joiner: Instance, uri: str, window: float = JOIN_WINDOW) -> dict[str, Any]:
    """Watch ``joiner`` until it exits, shows up in a member's peer list, or ``window`` passes."""
    wanted = normalise_uri(uri)
    listed_by: list[str] = []

    def appeared() -> bool:
        with no_evidence():
            for node in cluster.nodes:
                if wanted in (cluster.peer_uris(node) or set()):
                    listed_by.append(node.name)
        return bool(listed_by)

    def exited() -> str | None:
        return None if joiner.alive() else "exited"

    poll_until(appeared, timeout=window, interval=0.1, abort=exited)
    if not listed_by:
        appeared()  # one last look after it exited
    seen: dict[str, Any] = {"listed_by": sorted(set(listed_by)), "exited": not joiner.alive(), "logs": joiner.logs()}
    seen["note"] = (f"p2p join of {joiner.name} as {uri} for up to {window:g}s -> listed by "
                    f"{seen['listed_by'] or 'no peer'}, {'exited' if seen['exited'] else 'still running'}; "
                    f"last log line: {_log_tail(seen['logs'], 1)!r}")
    return seen


def _log_tail(text: str, lines: int = 6) -> str:
    kept = [line for line in text.splitlines() if line.strip()][-lines:]
    return REDACTOR.redact("\n".join(kept))


# -- the cluster itself --------------------------------------------------------


@req("CLUSTER-P2P-001")
def test_cluster_forms_over_tls(cluster):
    views: dict[str, list[str]] = {}
    for node in cluster.nodes:
        outcome, result = cluster.cluster_info(node)
        assert result is not None, f"{node.name}: GET /cluster with the manage key failed: {outcome.summary()}"
        peers = result.get("peers") if isinstance(result.get("peers"), dict) else {}
        views[node.name] = [str(info.get("uri")) for info in peers.values() if isinstance(info, dict)]
    if cluster.launched:
        # The twin: the cluster really formed, so "every URI is https" is about a working cluster.
        expected = cluster.expected_uris()
        for name, uris in views.items():
            missing = expected - {normalise_uri(u) for u in uris}
            assert not missing, f"{name} does not list peers {sorted(missing)}; it lists {uris}"
    else:
        assert all(views.values()), f"GET /cluster lists no peers: {views}"
    plaintext = {name: [u for u in uris if not u.lower().startswith("https://")] for name, uris in views.items()}
    plaintext = {name: uris for name, uris in plaintext.items() if uris}
    assert not plaintext, (
        f"peers talk to each other over plaintext p2p (cluster.p2p.enable_tls is off or ignored): {plaintext}")
    # An https URI is only a claim: each node's p2p port must really speak TLS with the cluster's CA.
    for node in cluster.nodes:
        outcome = call(p2p_client(cluster, node, identity=valid_identity(cluster)), P2P_HEALTH)
        if not outcome.answered:  # one retry: a dropped handshake on a loaded machine is no verdict
            outcome = call(p2p_client(cluster, node, identity=valid_identity(cluster)), P2P_HEALTH)
        assert outcome.answered, (
            f"{node.name}: its p2p port does not answer mutual TLS with a certificate from the cluster's CA, "
            f"although its peers list https URIs: {outcome.summary()}")


@req("CLUSTER-REST-002")
def test_cluster_endpoint_reports_peers(cluster):
    for node in cluster.nodes:
        outcome, result = cluster.cluster_info(node)
        assert result is not None, f"{node.name}: {outcome.summary()}"
        assert result.get("status") == "enabled", f"{node.name}: status is {result.get('status')!r}"
        assert isinstance(result.get("peer_id"), int), f"{node.name}: peer_id is {result.get('peer_id')!r}"
        peers = result.get("peers")
        assert isinstance(peers, dict) and str(result["peer_id"]) in peers, (
            f"{node.name}: its own peer_id is not a key of peers: {peers!r}")
        assert all(isinstance(v, dict) and isinstance(v.get("uri"), str) for v in peers.values()), peers
        assert isinstance(result.get("raft_info"), dict), f"{node.name}: no raft_info"
        if cluster.launched:
            own = normalise_uri(cluster.uris[node.name])
            assert normalise_uri(peers[str(result["peer_id"])]["uri"]) == own, (
                f"{node.name}: reports its own URI as {peers[str(result['peer_id'])]['uri']}, started with {own}")


# -- the p2p port --------------------------------------------------------------


@req("CLUSTER-P2P-002")
def test_p2p_port_refuses_plaintext(cluster):
    for node in cluster.nodes:
        # A plaintext answer fails on its own; the TLS twin only gives a refusal its meaning
        # (a port that serves plaintext never answers TLS, so the twin cannot come first).
        outcome = call(p2p_client(cluster, node, tls=False), P2P_HEALTH)
        assert outcome.refused, f"{node.name}: a plaintext gRPC call to the p2p port was answered: {outcome.summary()}"
        assert_port_answers(cluster, node)


@req("CLUSTER-P2P-003")
def test_p2p_port_requires_a_client_certificate(cluster):
    for node in cluster.nodes:
        assert_no_plaintext_answer(cluster, node, "a client without any certificate gets answers")
        assert_port_answers(cluster, node)
        for method in (P2P_HEALTH, P2P_INTERNAL):
            outcome = call(p2p_client(cluster, node, identity=None), method)
            assert outcome.refused, (
                f"{node.name}: a TLS client without a certificate got an answer from the p2p port: "
                f"{outcome.summary()}")


@req("CLUSTER-P2P-004")
def test_p2p_port_refuses_foreign_ca_certificate(cluster, pki):
    foreign = PeerIdentity(pki.foreign_client.chain_pem, pki.foreign_client.key_pem)
    for node in cluster.nodes:
        assert_no_plaintext_answer(cluster, node, "a client holding a certificate from another CA gets answers")
        assert_port_answers(cluster, node)
        for method in (P2P_HEALTH, P2P_INTERNAL):
            outcome = call(p2p_client(cluster, node, identity=foreign), method)
            assert outcome.refused, (
                f"{node.name}: a client certificate from another CA got an answer from the p2p port: "
                f"{outcome.summary()}")


@req("CLUSTER-P2P-005")
def test_p2p_port_refuses_expired_certificate(cluster, pki):
    expired = PeerIdentity(pki.expired_client.chain_pem, pki.expired_client.key_pem)
    for node in cluster.nodes:
        assert_no_plaintext_answer(cluster, node, "a client holding an expired certificate gets answers")
        assert_port_answers(cluster, node)
        outcome = call(p2p_client(cluster, node, identity=expired), P2P_HEALTH)
        assert outcome.refused, (
            f"{node.name}: an expired client certificate got an answer from the p2p port: {outcome.summary()}")


@req("CLUSTER-P2P-010")
def test_p2p_port_requires_an_api_key(cluster):
    key = cluster.credentials.api_key
    if not key:
        disabled("no manage API key known for the deployment (give --api-key-file)")
    open_nodes = []
    for node in cluster.nodes:
        keyed = call(internal_client(cluster, node), P2P_INTERNAL, [("api-key", key)])
        assert keyed.answered and not keyed.denied, (
            f"{node.name}: an internal call with the API key is not answered, so a refusal would prove nothing: "
            f"{keyed.summary()}")
        keyless = call(internal_client(cluster, node), P2P_INTERNAL)
        if not keyless.denied:
            open_nodes.append(f"{node.name}: {keyless.summary()}")
    assert not open_nodes, (
        "the p2p port answers internal calls without any credential: anyone holding a certificate from the "
        "cluster's CA can drive the internal API (set service.enforce_internal_auth, Qdrant v1.18.0+): "
        + "; ".join(open_nodes))


# -- the p2p port's own certificate ------------------------------------------------


def _p2p_certificates(cluster: Cluster | ExternalCluster, node: Instance) -> tuple[str, tls_probe.Handshake]:
    """The host peers name ``node`` by, and a handshake that verifies the p2p chain against the cluster's CA only.

    Like the public ports' checks (TLS-REST-004): host name and dates are left to the
    caller, so the failure says which property is wrong.
    """
    if node.p2p_target is None:
        raise LaunchError(f"{node.name} has no p2p address")
    if cluster.ca_path is None:
        disabled("no CA certificate for the p2p port (give --ca-cert)")
    if cluster.launched:
        name = urlsplit(cluster.uris[node.name]).hostname or ""
        client: tuple[Path, Path] | None = (cluster.pki.client.cert_path, cluster.pki.client.key_path)
    else:
        name = cluster.p2p_server_name or ""
        client = (cluster.client_cert, cluster.client_key) if cluster.client_cert and cluster.client_key else None
    if client is None:
        disabled("no client certificate the p2p port should accept (give --client-cert/--client-key)")
    ctx = tls_probe.inspection_context(ssl_client_context(cluster.ca_path))
    ctx.load_cert_chain(str(client[0]), str(client[1]))
    host, port = tls_probe.endpoint(node.p2p_target, 6335)
    return name, tls_probe.handshake(host, port, ctx, alpn=["h2"], server_hostname=name or None)


@req("CLUSTER-P2P-013")
def test_p2p_certificate_chains_names_the_node_and_is_valid(cluster):
    if cluster.launched and not cluster.p2p_tls:
        pytest.fail("the cluster runs without p2p TLS: its p2p port presents no certificate at all", pytrace=False)
    problems = []
    for node in cluster.nodes:
        name, hs = _p2p_certificates(cluster, node)
        if not hs.completed:
            problems.append(f"{node.name}: no path from its p2p certificate to the cluster's CA "
                            f"(names and dates not checked here): {hs.summary()}")
            continue
        chain = [x509.load_der_x509_certificate(der) for der in hs.chain_der]
        if not chain:
            problems.append(f"{node.name}: the handshake completed but no certificate could be read")
            continue
        if not cert_inspection.host_matches(chain[0], name):
            problems.append(f"{node.name}: its p2p certificate does not name {name!r}, the host in its peer URI "
                            f"(peers check it, spec §8): {cert_inspection.describe_cert(chain[0])}")
        problems += [f"{node.name}: {cert_inspection.describe_cert(c)} is {p}" for c in chain
                     if (p := cert_inspection.validity_problem(c)) is not None]
    assert not problems, "a p2p certificate peers must refuse: " + "; ".join(problems)


# -- joining -------------------------------------------------------------------


@pytest.fixture(scope="module")
def refused_joins(run_cluster) -> dict[str, dict[str, Any]]:
    """The joins that must fail, started side by side and watched: alias → what was seen.

    ``wrongname`` joins through a name the bootstrap peer's certificate does not carry (with p2p TLS
    only); ``foreign`` presents a certificate from a foreign CA. Each waits out a join attempt of a
    few seconds, so together they cost one wait instead of two.
    """
    launched = _launched(run_cluster)
    converged = launched.converged()
    plans: dict[str, Callable[[], tuple[Instance, str]]] = {}
    if launched.p2p_tls:
        def wrongname() -> tuple[Instance, str]:
            unlisted = launched.bootstrap_uri(unlisted=True)
            return launched.start_node("wrongname", bootstrap=unlisted, ready=lambda i: True, member=False), unlisted
        plans["wrongname"] = wrongname

    def foreign() -> tuple[Instance, str]:
        cert = launched.pki.issue(f"{launched.tag}-foreign-peer", launched.addressing.sans("foreign"),
                                  issuer="foreign-ca")
        return launched.start_node("foreign", cert=cert, ready=lambda i: True, member=False), ""
    plans["foreign"] = foreign

    def run(alias: str) -> dict[str, Any]:
        joiner, through = plans[alias]()
        try:
            seen = watch_join(launched, joiner, launched.uris[joiner.name])
        finally:
            launched.stop_node(joiner)
        return {**seen, "through": through, "converged_before": converged}

    with ThreadPoolExecutor(max_workers=len(plans)) as pool:
        futures = {alias: pool.submit(run, alias) for alias in plans}
        # A start that failed is the harness's error, raised to the test that reads it.
        return {alias: _result_or_error(future) for alias, future in futures.items()}


def _result_or_error(future: Future[dict[str, Any]]) -> dict[str, Any]:
    try:
        return future.result()
    except LaunchError as exc:
        return {"error": exc}


def _refused_join(refused_joins: dict[str, dict[str, Any]], alias: str) -> dict[str, Any]:
    seen = refused_joins[alias]
    if "error" in seen:
        raise seen["error"]
    note(seen["note"])
    assert seen["converged_before"], "the cluster's own peers do not all see each other"
    return seen


@req("CLUSTER-P2P-006")
def test_joining_through_a_name_not_in_the_certificate_fails(cluster, refused_joins):
    launched = _launched(cluster)
    if not launched.p2p_tls:
        disabled("the cluster under test runs without p2p TLS (--cluster-p2p-tls off): no names to check")
    # The twins: nodes 2 and 3 joined through the bootstrap peer's listed name.
    seen = _refused_join(refused_joins, "wrongname")
    assert not seen["listed_by"], (
        f"a peer joined through {seen['through']}, a name the bootstrap peer's certificate does not carry "
        f"({', '.join(launched.certs[launched.nodes[0].name].sans)}): it is listed by {seen['listed_by']}; "
        f"the joining peer did not check the certificate against the URI host.\n"
        f"joiner log:\n{_log_tail(seen['logs'])}")


@req("CLUSTER-P2P-007")
def test_node_with_foreign_ca_certificate_cannot_join(cluster, refused_joins):
    _launched(cluster)
    seen = _refused_join(refused_joins, "foreign")
    assert not seen["listed_by"], (
        f"a node with a certificate from a foreign CA joined the cluster: listed by {seen['listed_by']}.\n"
        f"joiner log:\n{_log_tail(seen['logs'])}")


# -- start-up without a CA -----------------------------------------------------


@req("CLUSTER-P2P-008")
def test_p2p_tls_without_ca_refuses_to_start(cluster, ca_required_attempt):
    attempt = ca_required_attempt
    _note_attempt(attempt)
    assert attempt["twin_error"] is None, (
        f"the same node with tls.ca_cert set did not start either, so this proves nothing: {attempt['twin_error']}")
    node = attempt["started"]
    if node is not None:
        with no_evidence():
            ready = cluster.rest(node).request("GET", "/readyz")
        pytest.fail(f"a node with cluster.p2p.enable_tls and no tls.ca_cert started and serves REST "
                    f"({ready.summary()}).\nlog:\n{_log_tail(attempt['logs'])}")
    assert attempt["error"], "the node neither started nor failed"


@req("CLUSTER-P2P-009")
def test_p2p_tls_without_ca_names_the_reason(cluster, ca_required_attempt):
    attempt = ca_required_attempt
    _note_attempt(attempt)
    assert attempt["started"] is None, "the node started without tls.ca_cert (see CLUSTER-P2P-008)"
    assert CA_REQUIRED in attempt["logs"], (
        f"start-up failed without the message {CA_REQUIRED!r}.\nlog:\n{_log_tail(attempt['logs'])}")


# -- enforce_internal_auth -----------------------------------------------------


@req("CLUSTER-P2P-011")
def test_enforce_internal_auth_refuses_keyless_p2p_calls(cluster, enforcing_cluster):
    enforcing = enforcing_cluster
    assert enforcing.converged(), "peers with enforce_internal_auth did not form a cluster (do they send their key?)"
    key = enforcing.credentials.api_key
    assert key
    for node in enforcing.nodes:
        keyed = tls_probe.until_answered(lambda n=node: call(internal_client(enforcing, n), P2P_INTERNAL,
                                                             [("api-key", key)]))
        if not keyed.answered:
            inconclusive(f"positive twin: {node.name}: an internal call with the API key got no answer, so a "
                         f"refusal would prove nothing: {keyed.summary()}")
        assert not keyed.denied, f"{node.name}: the API key is refused: {keyed.summary()}"
        keyless = call(internal_client(enforcing, node), P2P_INTERNAL)
        assert keyless.denied_unauthenticated, (
            f"{node.name}: with enforce_internal_auth an internal call without a credential was not refused "
            f"with UNAUTHENTICATED: {keyless.summary()}")


@req("CLUSTER-P2P-012")
def test_enforce_internal_auth_keeps_health_open(cluster, enforcing_cluster):
    for node in enforcing_cluster.nodes:
        outcome = tls_probe.until_answered(lambda n=node: call(internal_client(enforcing_cluster, n), P2P_HEALTH))
        if not outcome.answered:
            inconclusive(f"{node.name}: p2p HealthCheck got no answer at all: {outcome.summary()}")
        assert outcome.succeeded, f"{node.name}: p2p HealthCheck without a credential: {outcome.summary()}"


# -- REST and gRPC on every node -----------------------------------------------


@req("CLUSTER-REST-001")
def test_every_node_rest_refuses_keyless_requests(cluster):
    if not cluster.credentials.api_key:
        disabled("no manage API key known for the deployment (give --api-key-file)")
    for node in cluster.nodes:
        rest = cluster.rest(node)
        keyed = rest.request("GET", "/cluster", headers=cluster.manage_headers())
        if keyed.status is None:
            inconclusive(f"positive twin: {node.name}: GET /cluster with the manage key got no answer: "
                         f"{keyed.summary()}")
        assert keyed.succeeded, f"{node.name}: the manage key is refused: {keyed.summary()}"
        keyless = rest.request("GET", "/cluster")
        assert not keyless.succeeded, f"{node.name}: GET /cluster without a credential succeeded: {keyless.summary()}"


@req("CLUSTER-GRPC-001")
def test_every_node_grpc_refuses_keyless_calls(cluster):
    key = cluster.credentials.api_key
    if not key:
        disabled("no manage API key known for the deployment (give --api-key-file)")
    for node in cluster.nodes:
        if not node.grpc_target:
            disabled("no gRPC address for the deployment (give --grpc-url)")
        if node.tls and cluster.ca_pem is None:
            disabled("no CA certificate for the gRPC port (give --ca-cert)")
        host = urlsplit(node.rest_url).hostname if node.tls else None
        client = GrpcClient(node.grpc_target, root_certificates=cluster.ca_pem if node.tls else None,
                            server_name=host, timeout=10.0)
        try:
            # The positive twin waits out a handshake a loaded node drops; no answer at all is no evidence.
            keyed = tls_probe.until_answered(lambda c=client: c.call(GRPC_PROTECTED, b"", metadata=[("api-key", key)]))
            if not keyed.answered:
                inconclusive(f"positive twin: {node.name}: the manage key's call got no answer: {keyed.summary()}")
            assert keyed.succeeded, f"{node.name}: the manage key is refused on gRPC: {keyed.summary()}"
            keyless = client.call(GRPC_PROTECTED, b"")
            if not keyless.answered:
                inconclusive(f"{node.name}: the keyless call got no answer, refused or not: {keyless.summary()}")
            assert not keyless.succeeded, (
                f"{node.name}: {GRPC_PROTECTED} without a credential succeeded: {keyless.summary()}")
        finally:
            client.close()

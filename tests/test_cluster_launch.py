"""Self-tests of cluster mode: the reference server's p2p behaviour and fixtures/cluster.py.

A process cluster and a Docker cluster each form (every peer lists every peer)
and are torn down completely: no process, container or network left, also
when start-up is interrupted.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qdrant_conformance.fixtures.cluster import Cluster, normalise_uri, start_cluster
from qdrant_conformance.fixtures.launchers.base import Instance, LaunchError, poll_until
from qdrant_conformance.fixtures.launchers.process import ProcessTarget, processes_under
from qdrant_conformance.fixtures.pki import RunPKI
from qdrant_conformance.fixtures.profiles import Credentials

#: The brief's target on this 2-core machine: start to "all peers visible".
FORM_TARGET_S = 10.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunPKI]:
    made = RunPKI.create(tmp_path_factory.mktemp("cluster-pki") / "pki")
    yield made
    made.cleanup()


@pytest.fixture(scope="module")
def keys() -> Credentials:
    return Credentials.generate()


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[ProcessTarget]:
    made = ProcessTarget(tmp_path / "nodes")
    yield made
    made.close()


def _pid_of(instance: Instance) -> int:
    """The pid of a process node, found by its work dir (the launcher keeps no public handle)."""
    assert instance.workdir is not None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) == instance.workdir:
                return int(entry.name)
        except OSError:
            continue
    raise AssertionError(f"no process runs in {instance.workdir}")


def _zygote_pids(root: Path) -> list[int]:
    """The launcher's zygote runs in the work root itself; servers run in a directory below it."""
    return [pid for pid in processes_under(root) if Path(os.readlink(f"/proc/{pid}/cwd")) == root]


def test_process_cluster_forms_fast_and_tears_down(launcher, pki, keys, tmp_path):
    cluster = start_cluster(launcher, pki, keys, nodes=3)
    try:
        assert cluster.formed_in is not None and cluster.formed_in < FORM_TARGET_S, cluster.formed_in
        expected = cluster.expected_uris()
        assert len(expected) == 3 and all(u.startswith("https://127.0.0.1:") for u in expected)
        for node in cluster.nodes:
            assert cluster.peer_uris(node) == expected
        pids = [_pid_of(node) for node in cluster.nodes]
    finally:
        cluster.stop()
    # Only the launcher's zygote (the warm parent it forks servers from, in the work root) outlives the nodes.
    nodes = tmp_path / "nodes"
    assert set(processes_under(nodes)) <= set(_zygote_pids(nodes)), "cluster nodes still run after Cluster.stop()"
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    cluster.stop()  # twice is fine


def test_interrupted_start_leaves_nothing_running(launcher, pki, keys, tmp_path):
    calls: list[str] = []

    def ready(instance: Instance) -> bool:
        calls.append(instance.name)
        if instance.name.endswith("node2"):
            raise KeyboardInterrupt  # Ctrl-C while node 2 is coming up
        return _rest_ready(instance, pki)

    with pytest.raises(KeyboardInterrupt):
        start_cluster(launcher, pki, keys, nodes=3, ready=ready)
    assert any(name.endswith("node1") for name in calls)
    nodes_dir = tmp_path / "nodes"
    # Nodes that finished starting were stopped by the cluster; the one interrupted inside
    # launcher.start() belongs to the launcher until its close(), as for any interrupted start.
    left = {Path(os.readlink(f"/proc/{pid}/cwd")).name for pid in processes_under(nodes_dir)
            if pid not in _zygote_pids(nodes_dir)}
    assert all(name.endswith("node2") for name in left), left
    launcher.close()
    assert poll_until(lambda: not processes_under(nodes_dir), timeout=15), (
        "an interrupted cluster start left processes behind after the launcher closed")


def _rest_ready(instance: Instance, pki: RunPKI) -> bool:
    from qdrant_conformance.fixtures.client_tls import ssl_client_context
    from qdrant_conformance.fixtures.clients.rest import RestClient

    client = RestClient(instance.rest_url, ssl_context=ssl_client_context(pki.ca_path), timeout=2.0)
    try:
        return client.request("GET", "/readyz").status == 200
    finally:
        client.close()


def test_plain_cluster_reports_http_uris(launcher, pki, keys):
    cluster = start_cluster(launcher, pki, keys, nodes=2, p2p_tls=False)
    try:
        for node in cluster.nodes:
            uris = cluster.peer_uris(node)
            assert uris is not None and len(uris) == 2 and all(u.startswith("http://") for u in uris), uris
    finally:
        cluster.stop()


def test_get_cluster_reports_qdrant_shape(launcher, pki, keys):
    cluster = start_cluster(launcher, pki, keys, nodes=2)
    try:
        outcome, result = cluster.cluster_info(cluster.nodes[1])
        assert outcome.succeeded and result is not None, outcome.summary()
        body = __import__("json").loads(outcome.body)
        assert body["status"] == "ok" and isinstance(body["time"], float)
        assert result["status"] == "enabled"
        peers = result["peers"]
        assert str(result["peer_id"]) in peers and len(peers) == 2, peers
        assert all(v["uri"].startswith("https://") and v["uri"].endswith("/") for v in peers.values())
        assert result["raft_info"]["role"] == "Follower"
        leader = result["raft_info"]["leader"]
        _, first = cluster.cluster_info(cluster.nodes[0])
        assert first is not None and first["peer_id"] == leader and first["raft_info"]["role"] == "Leader"
        # keyless: refused like any protected route
        assert cluster.rest(cluster.nodes[0]).request("GET", "/cluster").status == 401
    finally:
        cluster.stop()


def test_get_cluster_without_cluster_mode_is_disabled(launcher, pki, keys):
    import json

    from qdrant_conformance.fixtures.client_tls import ssl_client_context
    from qdrant_conformance.fixtures.clients.rest import RestClient
    from qdrant_conformance.fixtures.launchers.base import NodeSpec
    from qdrant_conformance.fixtures.profiles import profile, render

    rendered = render(profile("api-key"), pki, keys)
    node = launcher.start(NodeSpec(rendered=rendered, name="single",
                                   ready=lambda i: RestClient(i.rest_url).request("GET", "/readyz").status == 200))
    client = RestClient(node.rest_url, ssl_context=ssl_client_context(pki.ca_path))
    try:
        outcome = client.request("GET", "/cluster", headers={"api-key": keys.api_key or ""})
        assert outcome.status == 200, outcome.summary()
        assert json.loads(outcome.body)["result"] == {"status": "disabled"}
    finally:
        client.close()


# -- start-up and join failures of the reference server ----------------------------------------


def _extra_node(cluster: Cluster, alias: str, **kwargs: Any) -> tuple[Instance, bool]:
    """Start a node expected not to join; return it and whether it exited within the window."""
    node = cluster.start_node(alias, ready=lambda i: True, member=False, **kwargs)
    exited = poll_until(lambda: not node.alive(), timeout=20)
    return node, exited


def test_failed_joins_exit_non_zero_and_name_the_reason(launcher, pki, keys):
    cluster = start_cluster(launcher, pki, keys, nodes=1)
    try:
        foreign = pki.issue(f"{cluster.tag}-foreign", ["127.0.0.1"], issuer="foreign-ca")
        cases = {
            "foreign": ({"cert": foreign}, "Can't initialize consensus"),
            "wrongname": ({"bootstrap": cluster.bootstrap_uri(unlisted=True)}, "Hostname Verification Check failed"),
            "httpuri": ({"bootstrap": cluster.bootstrap_uri().replace("https://", "http://")},
                        "Can't initialize consensus"),
        }
        for alias, (kwargs, message) in cases.items():
            node, exited = _extra_node(cluster, alias, **kwargs)
            assert exited, f"{alias}: still running after a failed join"
            logs = node.logs()
            assert message in logs, f"{alias}: {logs[-800:]}"
            assert "Error: Can't initialize consensus" in logs, logs[-800:]
            uris = cluster.peer_uris(cluster.nodes[0]) or set()
            assert normalise_uri(cluster.uris[node.name]) not in uris
    finally:
        cluster.stop()


def test_https_uri_without_p2p_tls_fails_to_join(launcher, pki, keys):
    cluster = start_cluster(launcher, pki, keys, nodes=1, p2p_tls=False)
    try:
        https = cluster.bootstrap_uri().replace("http://", "https://")
        node, exited = _extra_node(cluster, "tlsuri", bootstrap=https)
        assert exited
        assert "needs TLS but cluster.p2p.enable_tls is off" in node.logs(), node.logs()[-800:]
    finally:
        cluster.stop()


def test_p2p_tls_without_ca_is_a_one_line_startup_error(launcher, pki, keys):
    cluster = start_cluster(launcher, pki, keys, nodes=1)
    try:
        with pytest.raises(LaunchError) as failure:
            cluster.start_node("noca", join=False, extra={"tls": {"ca_cert": None}}, member=False, timeout=20)
        assert "exited with code 1" in str(failure.value)
        lines = [line for line in failure.value.logs.splitlines() if line.strip()]
        assert lines == ["Error: CA certificate is required for TLS configuration"], lines
    finally:
        cluster.stop()


def test_enforce_internal_auth_cluster_forms(launcher, pki, keys):
    cluster = start_cluster(launcher, pki, keys, nodes=2, profile_extra={"service": {"enforce_internal_auth": True}})
    try:
        assert cluster.converged()
        logs = cluster.nodes[0].logs()
        assert keys.api_key is not None and keys.api_key not in logs
    finally:
        cluster.stop()


# -- Docker --------------------------------------------------------------------------------


def _docker_or_skip() -> Any:
    from qdrant_conformance.fixtures.launchers.base import BadTargetInput
    from qdrant_conformance.fixtures.launchers.docker import connect

    try:
        return connect(timeout=30)
    except BadTargetInput as exc:
        pytest.skip(f"no Docker engine reachable: {exc}")


@pytest.mark.parametrize("network_mode", ["bridge", "host"])
def test_docker_cluster_forms_and_tears_down(network_mode, pki, keys, tmp_path):
    import docker.errors

    from qdrant_conformance.fixtures.launchers.docker import LABEL_RUN, DockerTarget

    client = _docker_or_skip()
    image = "local/qsc-reference:latest"
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{image} is not built (docker/build.sh)")
    run_id = "qsc-cluster-selftest-" + secrets.token_hex(4)
    launcher = DockerTarget(image, run_id, network_mode=network_mode, workroot=tmp_path / "nodes", client=client)
    try:
        started = time.monotonic()
        cluster = start_cluster(launcher, pki, keys, nodes=3)
        try:
            assert cluster.converged()
            for node in cluster.nodes:
                assert all(u.startswith("https://") for u in cluster.peer_uris(node) or set())
            if network_mode == "bridge":
                assert cluster.expected_uris() == {f"https://node{i}:6335" for i in (1, 2, 3)}
            labelled = client.containers.list(all=True, filters={"label": f"{LABEL_RUN}={run_id}"})
            assert len(labelled) == 3
        finally:
            cluster.stop()
        took = time.monotonic() - started
        print(f"docker {network_mode}: formed in {cluster.formed_in:.1f} s, whole test {took:.1f} s")
        assert not client.containers.list(all=True, filters={"label": f"{LABEL_RUN}={run_id}"})
        assert not client.networks.list(filters={"label": f"{LABEL_RUN}={run_id}"})
    finally:
        launcher.close()
        client.close()
    leftovers = subprocess.run(["docker", "ps", "-a", "-q", "--filter", f"label={LABEL_RUN}={run_id}"],
                               capture_output=True, text=True, check=True).stdout.split()
    assert not leftovers

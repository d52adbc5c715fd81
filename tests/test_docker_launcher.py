"""Self-tests of the Docker launcher and the offline reference image (docker/build.sh).

They need a Docker engine and are skipped, with the reason, only when none is
reachable. The reference image is built on first use, and rebuilt when the
checkout's ``reference_server/`` no longer matches the digest stamped on it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import re
import secrets
import socket
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from qdrant_conformance.fixtures.launchers.base import (
    BadTargetInput,
    Instance,
    LaunchError,
    NodeSpec,
    Ports,
    RenderedConfig,
    answers,
    free_port,
    poll_until,
)
from qdrant_conformance.fixtures.launchers.containers import list_containers
from qdrant_conformance.fixtures.launchers.docker import (
    LABEL_NODE,
    LABEL_OWNER,
    LABEL_RUN,
    REFERENCE_LABEL,
    DockerTarget,
    connect,
    container_command,
    listening_ports,
    remove_orphans,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The reference image under test; QSC_IMAGE (which docker/build.sh also reads) picks another tag.
IMAGE = os.environ.get("QSC_IMAGE") or "local/qsc-reference:latest"
BUILD_TIMEOUT = 20 * 60
READY_TIMEOUT = 60.0
# The server imports its data plane on the first data call: seconds on a loaded 2-core machine.
DATA_TIMEOUT = 30.0


def _source_digest() -> str:
    spec = importlib.util.spec_from_file_location("qsc_source_digest", REPO_ROOT / "docker" / "source_digest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.source_digest(REPO_ROOT / "reference_server"))


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    try:
        client = connect(timeout=30)
    except BadTargetInput as exc:
        pytest.skip(f"no Docker engine reachable, so the Docker launcher cannot be exercised: {exc}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def reference_image(docker_client: Any) -> str:
    """``local/qsc-reference:latest``, built from this checkout if missing or stale."""
    import docker.errors

    try:
        labels = docker_client.images.get(IMAGE).labels or {}
    except docker.errors.ImageNotFound:
        labels = {}
    if labels.get(REFERENCE_LABEL) != _source_digest():
        done = subprocess.run(["bash", str(REPO_ROOT / "docker" / "build.sh")], capture_output=True,
                              text=True, timeout=BUILD_TIMEOUT, check=False)
        if done.returncode != 0:
            pytest.fail(f"docker/build.sh failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return IMAGE


@pytest.fixture
def run_id() -> str:
    return f"selftest-{secrets.token_hex(4)}"


@pytest.fixture
def launcher_factory(reference_image: str, run_id: str,
                     tmp_path: Path) -> Iterator[Callable[..., DockerTarget]]:
    made: list[DockerTarget] = []

    def make(network_mode: str = "bridge", image: str = reference_image) -> DockerTarget:
        launcher = DockerTarget(image, run_id, network_mode=network_mode, workroot=tmp_path / "nodes")
        made.append(launcher)
        return launcher

    yield make
    for launcher in made:
        launcher.close()


def api_key_config(key: str, profile: str = "api-key", extra_yaml: str = "") -> RenderedConfig:
    relpath = f"config/{profile}.yaml"
    text = f"service:\n  api_key: {key}\n{extra_yaml}"
    return RenderedConfig(profile=profile, config_relpath=relpath, env={},
                          files={relpath: (text.encode(), 0o600)}, tls=False, mtls=False)


def tls_config(ca: trustme.CA, key: str) -> RenderedConfig:
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    relpath = "config/tls.yaml"
    config = (f"service:\n  api_key: {key}\n  enable_tls: true\n"
              "tls:\n  cert: ./tls/cert.pem\n  key: ./tls/key.pem\n  ca_cert: ./tls/cacert.pem\n  cert_ttl: 0\n")
    return RenderedConfig(
        profile="tls", config_relpath=relpath, env={}, tls=True, mtls=False,
        files={
            relpath: (config.encode(), 0o600),
            "tls/cert.pem": (b"".join(p.bytes() for p in leaf.cert_chain_pems), 0o644),
            "tls/key.pem": (leaf.private_key_pem.bytes(), 0o600),
            "tls/cacert.pem": (ca.cert_pem.bytes(), 0o644),
        },
    )


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=ca.cert_pem.bytes().decode())


def http_ready(verify: ssl.SSLContext | bool = True) -> Callable[[Instance], bool]:
    def ready(instance: Instance) -> bool:
        try:
            return httpx.get(f"{instance.rest_url}/readyz", timeout=2, verify=verify).status_code == 200
        except httpx.HTTPError:
            return False

    return ready


def run_labelled(client: Any, run_id: str) -> tuple[list[Any], list[Any]]:
    flt = {"label": f"{LABEL_RUN}={run_id}"}
    return client.containers.list(all=True, filters=flt, sparse=True), client.networks.list(filters=flt)


def test_image_is_laid_out_like_qdrant(docker_client: Any, reference_image: str) -> None:
    # qdrant/qdrant v1.18.3 (spec §1.3): CMD ["./entrypoint.sh"], no ENTRYPOINT, WORKDIR /qdrant.
    attrs = docker_client.images.get(reference_image).attrs["Config"]
    assert attrs["WorkingDir"] == "/qdrant"
    assert "RUN_MODE=production" in attrs["Env"]
    assert set(attrs["ExposedPorts"]) == {"6333/tcp", "6334/tcp"}
    assert not attrs["Entrypoint"]
    assert attrs["Cmd"] == ["./entrypoint.sh"]
    assert attrs["Labels"]["qsc.image"] == "reference-server"
    layout = ("test -x qdrant && test -x entrypoint.sh && test -f config/config.yaml "
              "&& test -f config/production.yaml && test -f static/index.html && grep -q './qdrant' entrypoint.sh")
    docker_client.containers.run(reference_image, ["sh", "-c", layout], remove=True)  # ContainerError if not


def test_serves_api_key_profile_on_loopback(docker_client: Any, launcher_factory: Callable[..., DockerTarget],
                                            run_id: str) -> None:
    key = secrets.token_urlsafe(24)
    launcher = launcher_factory()
    started = time.monotonic()
    instance = launcher.start(NodeSpec(rendered=api_key_config(key), name="n1", ready=http_ready(),
                                       timeout=READY_TIMEOUT))
    print(f"container start to ready: {time.monotonic() - started:.2f} s")

    root = httpx.get(f"{instance.rest_url}/", timeout=DATA_TIMEOUT)
    assert root.status_code == 200
    assert root.json()["title"] == "qdrant - vector search engine"
    assert httpx.get(f"{instance.rest_url}/collections", timeout=DATA_TIMEOUT).status_code == 401
    with_key = httpx.get(f"{instance.rest_url}/collections", headers={"api-key": key}, timeout=DATA_TIMEOUT)
    assert with_key.status_code == 200

    container = docker_client.containers.get(instance.description["container_id"])
    assert container.labels[LABEL_RUN] == run_id
    assert container.labels[LABEL_NODE] == "n1"
    bindings = [b for port in container.attrs["NetworkSettings"]["Ports"].values() for b in (port or [])]
    assert bindings and all(b["HostIp"] == "127.0.0.1" for b in bindings)
    assert instance.ports is not None
    assert {int(b["HostPort"]) for b in bindings} == {instance.ports.http, instance.ports.grpc}
    assert container.attrs["HostConfig"]["Init"] is True

    # The profile is mounted beside the image's own config files, not over them.
    listing = container.exec_run(["ls", "/qdrant/config"]).output.decode().split()
    assert {"api-key.yaml", "config.yaml", "production.yaml"} <= set(listing)

    assert instance.description["image_id"].startswith("sha256:")
    assert launcher.describe()["image"] == IMAGE
    assert key not in instance.logs()
    assert key not in repr(launcher.describe()) + repr(instance.description)


def test_stop_is_fast_and_removes(docker_client: Any, launcher_factory: Callable[..., DockerTarget]) -> None:
    launcher = launcher_factory()
    instance = launcher.start(NodeSpec(rendered=api_key_config(secrets.token_urlsafe(16)), name="n1",
                                       ready=http_ready(), timeout=READY_TIMEOUT))
    container_id = instance.description["container_id"]
    started = time.monotonic()
    instance.stop()
    # A kill and a removal, no grace period: the container is thrown away.
    assert time.monotonic() - started < 2.0
    assert not instance.alive()
    assert docker_client.containers.list(all=True, filters={"id": container_id}, sparse=True) == []
    # Logs survive the container. (A request's log line is written after its answer, so the
    # readiness request may not be logged yet: the listening line comes before the port answers.)
    assert "HTTP listening" in instance.logs()
    instance.stop()  # idempotent


def test_image_stops_on_sigterm(docker_client: Any, launcher_factory: Callable[..., DockerTarget]) -> None:
    # What `docker stop` does for a user: SIGTERM, through entrypoint.sh and ./qdrant, reaches the
    # server (both exec), which exits 0. A shell in between would lose it: exit 137 after the timeout.
    launcher = launcher_factory()
    instance = launcher.start(NodeSpec(rendered=api_key_config(secrets.token_urlsafe(16)), name="n1",
                                       ready=http_ready(), timeout=READY_TIMEOUT))
    container = docker_client.containers.get(instance.description["container_id"])
    assert container.top()["Processes"][-1][-1].startswith("/opt/venv/bin/python -m reference_server")
    started = time.monotonic()
    container.stop(timeout=20)
    took = time.monotonic() - started
    container.reload()
    assert container.attrs["State"]["ExitCode"] == 0
    assert took < 15


def test_close_removes_containers_networks_and_workdirs(docker_client: Any, reference_image: str, run_id: str,
                                                        tmp_path: Path) -> None:
    launcher = DockerTarget(reference_image, run_id, workroot=tmp_path / "nodes")
    try:
        launcher.create_network("cluster")
        instance = launcher.start(NodeSpec(rendered=api_key_config(secrets.token_urlsafe(16)), name="alpha",
                                           ready=http_ready(), timeout=READY_TIMEOUT, network="cluster"))
        containers, networks = run_labelled(docker_client, run_id)
        assert len(containers) == 1 and len(networks) == 1
        # Peers on the network reach a node by its alias, as p2p will need.
        probe = ("import urllib.request; "
                 "print(urllib.request.urlopen('http://alpha:6333/readyz', timeout=30).status)")
        result = containers[0].exec_run(["/opt/venv/bin/python", "-c", probe])
        assert result.exit_code == 0 and result.output.decode().strip() == "200"
        assert instance.workdir is not None and instance.workdir.is_dir()
    finally:
        launcher.close()
    assert run_labelled(docker_client, run_id) == ([], [])
    assert not (tmp_path / "nodes" / "alpha").exists()
    launcher.close()  # safe twice


def test_close_sweeps_containers_it_lost_track_of(docker_client: Any, reference_image: str, run_id: str,
                                                  tmp_path: Path) -> None:
    stray = docker_client.containers.create(reference_image, ["--help"], labels={LABEL_RUN: run_id})
    try:
        DockerTarget(reference_image, run_id, workroot=tmp_path).close()
        assert run_labelled(docker_client, run_id)[0] == []
    finally:
        with_stray = docker_client.containers.list(all=True, filters={"id": stray.id})
        for c in with_stray:
            c.remove(force=True)


def test_tls_files_are_mounted_and_served(docker_client: Any,
                                          launcher_factory: Callable[..., DockerTarget]) -> None:
    ca = trustme.CA()
    key = secrets.token_urlsafe(24)
    rendered = tls_config(ca, key)
    trust = trusting(ca)
    launcher = launcher_factory()
    instance = launcher.start(NodeSpec(rendered=rendered, name="tls1", ready=http_ready(trust), timeout=READY_TIMEOUT))
    assert instance.rest_url.startswith("https://127.0.0.1:")
    assert httpx.get(f"{instance.rest_url}/collections", headers={"api-key": key}, verify=trust,
                     timeout=DATA_TIMEOUT).status_code == 200
    other = trusting(trustme.CA())
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{instance.rest_url}/", verify=other, timeout=DATA_TIMEOUT)

    # The private key stays 0600 on the host; the image's root user reads it anyway.
    assert instance.workdir is not None
    assert stat.S_IMODE(os.stat(instance.workdir / "tls" / "key.pem").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(instance.workdir / "tls").st_mode) == 0o755

    # tls/ is a directory mount: a file replaced on the host (rename, as a
    # rotation does) is what the container sees next.
    container = docker_client.containers.get(instance.description["container_id"])
    fresh = ca.issue_cert("127.0.0.1", "localhost")
    new_pem = b"".join(p.bytes() for p in fresh.cert_chain_pems)
    staged = instance.workdir / "tls" / "cert.pem.new"
    staged.write_bytes(new_pem)
    os.replace(staged, instance.workdir / "tls" / "cert.pem")
    seen = container.exec_run(["sha256sum", "/qdrant/tls/cert.pem"]).output.decode().split()[0]
    assert seen == hashlib.sha256(new_pem).hexdigest()


def test_exit_before_ready_raises_with_logs(docker_client: Any, launcher_factory: Callable[..., DockerTarget],
                                            run_id: str) -> None:
    # TLS on, but no certificate files: the server refuses to start (spec §1.5).
    rendered = api_key_config(secrets.token_urlsafe(16), profile="broken", extra_yaml="  enable_tls: true\n")
    launcher = launcher_factory()
    started = time.monotonic()
    with pytest.raises(LaunchError) as info:
        launcher.start(NodeSpec(rendered=rendered, name="broken", ready=http_ready(False), timeout=READY_TIMEOUT))
    assert time.monotonic() - started < READY_TIMEOUT / 2, "the exit should end the wait, not the deadline"
    message = str(info.value)
    assert "\n" not in message
    assert "exit code 1" in message
    assert "tls" in info.value.logs.lower()
    assert run_labelled(docker_client, run_id)[0] == []


def test_host_network_mode(launcher_factory: Callable[..., DockerTarget]) -> None:
    key = secrets.token_urlsafe(16)
    launcher = launcher_factory("host")
    chosen = Ports(free_port(), free_port(), free_port())
    p2p_override = free_port()
    instance = launcher.start(
        NodeSpec(rendered=api_key_config(key), name="h1",
                 extra_env={"QDRANT__CLUSTER__P2P__PORT": str(p2p_override)}, ready=http_ready(),
                   timeout=READY_TIMEOUT, ports=chosen))
    assert instance.rest_url == f"http://127.0.0.1:{chosen.http}"
    assert instance.grpc_target == f"127.0.0.1:{chosen.grpc}"
    assert instance.ports == Ports(chosen.http, chosen.grpc, p2p_override)
    assert httpx.get(f"{instance.rest_url}/collections", timeout=DATA_TIMEOUT).status_code == 401
    with_key = httpx.get(f"{instance.rest_url}/collections", headers={"api-key": key}, timeout=DATA_TIMEOUT)
    assert with_key.status_code == 200


def _forbid_pulls(monkeypatch: pytest.MonkeyPatch, client: Any) -> list[str]:
    pulls: list[str] = []

    def pull(*args: Any, **kwargs: Any) -> None:
        pulls.append(str(args[:1]))
        raise AssertionError("the launcher tried to pull an image")

    monkeypatch.setattr(client.images, "pull", pull)
    monkeypatch.setattr(client.api, "pull", pull)
    return pulls


def test_missing_image_is_bad_input_without_pull(docker_client: Any, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    pulls = _forbid_pulls(monkeypatch, docker_client)
    missing = f"local/qsc-missing-{secrets.token_hex(4)}:latest"
    with pytest.raises(BadTargetInput) as info:
        DockerTarget(missing, "selftest", workroot=tmp_path, client=docker_client)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"image {missing} is not present locally and this machine cannot pull it")
    assert "docker pull" in message
    assert pulls == []


def test_image_removed_after_check_is_bad_input_without_pull(docker_client: Any, reference_image: str,
                                                             monkeypatch: pytest.MonkeyPatch, run_id: str,
                                                             tmp_path: Path) -> None:
    # An image of its own (a label makes a new id), so removing it leaves the reference image alone.
    doomed = f"local/qsc-doomed-{secrets.token_hex(4)}:latest"
    recipe = f"FROM {reference_image}\nLABEL qsc.selftest={secrets.token_hex(8)}\n".encode()
    docker_client.images.build(fileobj=io.BytesIO(recipe), tag=doomed, rm=True, forcerm=True)
    try:
        launcher = DockerTarget(doomed, run_id, workroot=tmp_path, client=docker_client)
    finally:
        docker_client.images.remove(doomed, force=True)
    pulls = _forbid_pulls(monkeypatch, docker_client)
    try:
        with pytest.raises(BadTargetInput, match="no longer present locally") as info:
            launcher.start(NodeSpec(rendered=api_key_config("k" * 16), name="n1", ready=http_ready(), timeout=5))
        assert "\n" not in str(info.value)
    finally:
        launcher.close()
    assert pulls == []
    assert run_labelled(docker_client, run_id) == ([], [])


def test_nodes_run_the_image_id_described(docker_client: Any, launcher_factory: Callable[..., DockerTarget]
                                          ) -> None:
    launcher = launcher_factory()
    instance = launcher.start(NodeSpec(rendered=api_key_config(secrets.token_urlsafe(16)), name="n1",
                                       ready=http_ready(), timeout=READY_TIMEOUT))
    container = docker_client.containers.get(instance.description["container_id"])
    assert container.image.id == launcher.image_id == instance.description["image_id"]


def test_unreachable_engine_is_one_line_bad_input(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    with pytest.raises(BadTargetInput) as info:
        DockerTarget(IMAGE, "selftest", workroot=tmp_path)
    message = str(info.value)
    assert message.startswith("cannot reach the Docker engine: ")
    assert "\n" not in message


@pytest.fixture(scope="session")
def nonroot_image(docker_client: Any, reference_image: str) -> Iterator[str]:
    """The reference image running as uid 1000, like qdrant/qdrant's ``-unprivileged`` variants."""
    tag = f"local/qsc-selftest-nonroot:{secrets.token_hex(4)}"
    recipe = f"FROM {reference_image}\nUSER 1000:1000\n".encode()
    docker_client.images.build(fileobj=io.BytesIO(recipe), tag=tag, rm=True, forcerm=True,
                               labels={"qsc.selftest": "nonroot"})
    yield tag
    docker_client.images.remove(tag, force=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can hand the key files to the container's uid")
def test_non_root_image_reads_its_keys(docker_client: Any, nonroot_image: str, run_id: str,
                                       tmp_path: Path) -> None:
    ca = trustme.CA()
    key = secrets.token_urlsafe(24)
    launcher = DockerTarget(nonroot_image, run_id, workroot=tmp_path / "nodes")
    try:
        assert launcher.describe()["image_user"] == "1000:1000"
        instance = launcher.start(NodeSpec(rendered=tls_config(ca, key), name="u1", ready=http_ready(trusting(ca)),
                                           timeout=READY_TIMEOUT))
        assert instance.description["file_owner"] == "1000:1000"
        assert instance.workdir is not None
        key_file = os.stat(instance.workdir / "tls" / "key.pem")
        assert (key_file.st_uid, stat.S_IMODE(key_file.st_mode)) == (1000, 0o600)
        container = docker_client.containers.get(instance.description["container_id"])
        assert container.exec_run(["id", "-u"]).output.decode().strip() == "1000"
        assert httpx.get(f"{instance.rest_url}/collections", headers={"api-key": key}, verify=trusting(ca),
                         timeout=DATA_TIMEOUT).status_code == 200
    finally:
        launcher.close()
    assert run_labelled(docker_client, run_id) == ([], [])


def test_cluster_nodes_meet_over_p2p_tls_on_a_network(
        docker_client: Any, launcher_factory: Callable[..., DockerTarget]) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("node1", "node2", "127.0.0.1", "localhost")
    key = secrets.token_urlsafe(24)
    relpath = "config/p2p.yaml"
    config = (f"service:\n  api_key: {key}\ncluster:\n  enabled: true\n  p2p:\n    enable_tls: true\n"
              "tls:\n  cert: ./tls/cert.pem\n  key: ./tls/key.pem\n  ca_cert: ./tls/cacert.pem\n")
    rendered = RenderedConfig(
        profile="p2p", config_relpath=relpath, env={}, tls=False, mtls=False,
        files={
            relpath: (config.encode(), 0o600),
            "tls/cert.pem": (b"".join(p.bytes() for p in leaf.cert_chain_pems), 0o644),
            "tls/key.pem": (leaf.private_key_pem.bytes(), 0o600),
            "tls/cacert.pem": (ca.cert_pem.bytes(), 0o644),
        },
    )
    launcher = launcher_factory()
    launcher.create_network("cluster")
    first = launcher.start(NodeSpec(rendered=rendered, name="node1", args=["--uri", "https://node1:6335"],
                                    ready=http_ready(), timeout=READY_TIMEOUT, network="cluster"))
    second = launcher.start(
        NodeSpec(rendered=rendered, name="node2",
                 args=["--bootstrap", "https://node1:6335", "--uri", "https://node2:6335"], ready=http_ready(),
                 timeout=READY_TIMEOUT, network="cluster"))

    def peers_of(instance: Instance) -> set[str]:
        reply = httpx.get(f"{instance.rest_url}/cluster", headers={"api-key": key}, timeout=DATA_TIMEOUT)
        return {peer["uri"].rstrip("/") for peer in reply.json()["result"].get("peers", {}).values()}

    both = {"https://node1:6335", "https://node2:6335"}
    poll_until(lambda: peers_of(first) == both, timeout=READY_TIMEOUT, interval=0.1)
    assert peers_of(first) == both
    assert peers_of(second) == both

    # Clustered nodes also publish p2p, on loopback, and it speaks the node's TLS.
    assert first.p2p_target is not None and first.p2p_target.startswith("127.0.0.1:")
    container = docker_client.containers.get(first.description["container_id"])
    p2p_bindings = container.attrs["NetworkSettings"]["Ports"]["6335/tcp"]
    assert [b["HostIp"] for b in p2p_bindings] == ["127.0.0.1"]
    context = trusting(ca)
    leaf.configure_cert(context)
    host, port = first.p2p_target.split(":")
    with socket.create_connection((host, int(port)), timeout=DATA_TIMEOUT) as raw, \
            context.wrap_socket(raw, server_hostname="node1") as tls_sock:
        served = tls_sock.getpeercert(binary_form=True)
    assert served is not None
    assert ssl.DER_cert_to_PEM_cert(served).encode().strip() == leaf.cert_chain_pems[0].bytes().strip()


def test_connect_only_ready_check_is_not_fooled_by_docker_proxy(
        launcher_factory: Callable[..., DockerTarget]) -> None:
    # docker-proxy accepts on the published port before the server listens; a ready check that
    # only connects must still not return before the server answers.
    def connects(instance: Instance) -> bool:
        host, port = instance.rest_url.rsplit("/", 1)[1].split(":")
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                return True
        except OSError:
            return False

    launcher = launcher_factory()
    instance = launcher.start(NodeSpec(rendered=api_key_config(secrets.token_urlsafe(16)), name="n1", ready=connects,
                                       timeout=READY_TIMEOUT))
    assert httpx.get(f"{instance.rest_url}/readyz", timeout=DATA_TIMEOUT).status_code == 200


def test_bridge_mode_publishes_on_requested_ports(docker_client: Any,
                                                  launcher_factory: Callable[..., DockerTarget]) -> None:
    chosen = Ports(free_port(), free_port(), free_port())
    launcher = launcher_factory()
    instance = launcher.start(NodeSpec(rendered=api_key_config(secrets.token_urlsafe(16)), name="n1",
                                       ready=http_ready(), timeout=READY_TIMEOUT, ports=chosen))
    assert instance.rest_url == f"http://127.0.0.1:{chosen.http}"
    assert instance.grpc_target == f"127.0.0.1:{chosen.grpc}"
    container = docker_client.containers.get(instance.description["container_id"])
    assert container.attrs["NetworkSettings"]["Ports"]["6333/tcp"] == [
        {"HostIp": "127.0.0.1", "HostPort": str(chosen.http)}]


def test_listening_ports_reads_the_process_namespace() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        found = listening_ports(os.getpid())
        assert found is not None and port not in found
        listener.listen()
        found = listening_ports(os.getpid())
        assert found is not None and port in found
    assert listening_ports(2**22 + 12345) is None


# -- how the container is started: the image's own Entrypoint + Cmd, arguments appended (spec §1.3) ----------

ARGS = ["--config-path", "/qdrant/config/p.yaml"]


@pytest.mark.parametrize(("entrypoint", "cmd", "command"), [
    (None, ["./entrypoint.sh"], ["./entrypoint.sh", *ARGS]),  # qdrant/qdrant: CMD only
    (["/qdrant/entrypoint.sh"], None, ARGS),  # the server as ENTRYPOINT: the engine keeps it
    (["/usr/bin/tini", "--"], ["./qdrant"], ["./qdrant", *ARGS]),  # a wrapper ENTRYPOINT, the server as CMD
], ids=["cmd-only", "entrypoint-only", "entrypoint-and-cmd"])
def test_container_command_appends_to_the_image_command(entrypoint: list[str] | None, cmd: list[str] | None,
                                                        command: list[str]) -> None:
    assert container_command("img", entrypoint, cmd, ARGS) == command


@pytest.mark.parametrize(("entrypoint", "cmd", "says"), [
    (None, None, "has neither ENTRYPOINT nor CMD"),
    (None, ["/bin/sh", "-c", "./entrypoint.sh"], "shell-form CMD"),
    (["/bin/sh", "-c", "exec ./qdrant"], ["x"], "shell-form ENTRYPOINT"),
], ids=["nothing", "shell-cmd", "shell-entrypoint"])
def test_image_that_cannot_take_arguments_is_one_line_bad_input(entrypoint: list[str] | None,
                                                                cmd: list[str] | None, says: str) -> None:
    with pytest.raises(BadTargetInput, match=says) as info:
        container_command("img", entrypoint, cmd, ARGS)
    assert "\n" not in str(info.value)


@pytest.fixture(scope="session")
def derived_images(docker_client: Any, reference_image: str) -> Iterator[Callable[[str, str], str]]:
    """Images built offline FROM the reference image with other start-up instructions."""
    made: list[str] = []

    def build(name: str, instructions: str) -> str:
        tag = f"local/qsc-selftest-{name}:{secrets.token_hex(4)}"
        recipe = f"FROM {reference_image}\n{instructions}\n".encode()
        docker_client.images.build(fileobj=io.BytesIO(recipe), tag=tag, rm=True, forcerm=True,
                                   labels={"qsc.selftest": name})
        made.append(tag)
        return tag

    yield build
    for tag in made:
        docker_client.images.remove(tag, force=True)


@pytest.mark.parametrize("instructions", [
    # The minimal CMD-only image: no entrypoint.sh at all, the server executable as the whole CMD.
    'ENTRYPOINT []\nCMD ["/qdrant/qdrant"]',
    # The layout the reference image had before it mirrored Qdrant's: the entrypoint script as ENTRYPOINT.
    'ENTRYPOINT ["/qdrant/entrypoint.sh"]\nCMD []',
], ids=["cmd-only-minimal", "entrypoint-script"])
def test_images_with_other_start_up_instructions_serve(docker_client: Any, derived_images: Callable[[str, str], str],
                                                       launcher_factory: Callable[..., DockerTarget],
                                                       instructions: str) -> None:
    image = derived_images("layout", instructions)
    key = secrets.token_urlsafe(24)
    launcher = launcher_factory(image=image)
    instance = launcher.start(NodeSpec(rendered=api_key_config(key), name="n1", ready=http_ready(),
                                       timeout=READY_TIMEOUT))
    # The profile's key is in force, so --config-path reached the server.
    assert httpx.get(f"{instance.rest_url}/collections", timeout=DATA_TIMEOUT).status_code == 401
    assert httpx.get(f"{instance.rest_url}/collections", headers={"api-key": key},
                     timeout=DATA_TIMEOUT).status_code == 200
    container = docker_client.containers.get(instance.description["container_id"])
    assert container.attrs["Args"][-2:] == ["--config-path", "/qdrant/config/api-key.yaml"]


def test_shell_form_image_is_bad_input_before_any_container(docker_client: Any, run_id: str, tmp_path: Path,
                                                            derived_images: Callable[[str, str], str]) -> None:
    image = derived_images("shellform", "CMD ./entrypoint.sh")
    with pytest.raises(BadTargetInput, match="shell-form CMD"):
        DockerTarget(image, run_id, workroot=tmp_path, client=docker_client)
    assert run_labelled(docker_client, run_id) == ([], [])


@pytest.fixture(scope="session")
def dead_on_arrival_image(derived_images: Callable[[str, str], str]) -> str:
    # Like qdrant/qdrant started with a bare argument list: the command cannot run, the container exits at once.
    return derived_images("doa", 'CMD ["/qdrant/no-such-server"]')


def test_container_that_exits_at_once_is_a_one_line_launch_error(
        docker_client: Any, dead_on_arrival_image: str, launcher_factory: Callable[..., DockerTarget],
        run_id: str) -> None:
    launcher = launcher_factory(image=dead_on_arrival_image)
    with pytest.raises(LaunchError) as info:
        launcher.start(NodeSpec(rendered=api_key_config(secrets.token_urlsafe(16)), name="n1", ready=http_ready(),
                                timeout=READY_TIMEOUT))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("docker node n1 (api-key) exited")
    assert "no-such-server" in message  # the engine's or the init's last word names what failed
    assert run_labelled(docker_client, run_id)[0] == []


def test_suite_run_against_a_target_that_cannot_start_exits_3_in_one_line(dead_on_arrival_image: str,
                                                                          tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "suites/test_auth_api_key.py", "-q", "-p", "no:cacheprovider",
         "--target", "docker", "--image", dead_on_arrival_image, "--report-dir", str(tmp_path / "reports")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 3, output[-3000:]
    lines = [line for line in output.splitlines() if "qsc: the target did not start" in line]
    assert len(lines) == 1, output[-3000:]
    assert "exited" in lines[0] and "no-such-server" in lines[0]
    assert "NOT SECURE" not in output and "verdict:" not in output
    assert "FAILED" not in output and not re.search(r"\b\d+ failed\b", output)


# -- readiness: an application-level answer, never a TCP accept ----------------------------------------------------


def test_docker_proxy_port_with_nothing_listening_is_not_up(
        docker_client: Any, reference_image: str, launcher_factory: Callable[..., DockerTarget], run_id: str) -> None:
    # A container that runs but listens on nothing; docker-proxy still publishes 6333.
    idle = docker_client.containers.run(reference_image, ["sleep", "120"], detach=True, init=True,
                                        ports={"6333/tcp": ("127.0.0.1",)}, labels={LABEL_RUN: run_id})
    try:
        idle.reload()
        port = int(idle.attrs["NetworkSettings"]["Ports"]["6333/tcp"][0]["HostPort"])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass  # the userland proxy accepted although nothing listens inside
        except OSError:
            pytest.skip("this engine does not run a userland proxy (no accept without a listener to guard against)")
        assert not answers("127.0.0.1", port)
    finally:
        idle.remove(force=True)

    # Through the launcher: the server listens, but not on the published ports. An application-level
    # check never passes, and neither does a connect-only one (the launcher's own guard).
    launcher = launcher_factory()
    elsewhere = {"QDRANT__SERVICE__HTTP_PORT": "7333", "QDRANT__SERVICE__GRPC_PORT": "7334"}

    def up(instance: Instance) -> bool:
        host, port_text = instance.rest_url.rsplit("/", 1)[1].split(":")
        return answers(host, int(port_text))

    for name, check in (("app", up), ("connect", _connects)):
        with pytest.raises(LaunchError, match="was not ready after 6 s"):
            launcher.start(NodeSpec(rendered=api_key_config(secrets.token_urlsafe(16)), name=name,
                                    extra_env=elsewhere, ready=check, timeout=6))


def _connects(instance: Instance) -> bool:
    host, port = instance.rest_url.rsplit("/", 1)[1].split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def test_answers_tells_a_server_from_a_bare_accept() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        free = closed.getsockname()[1]
    assert not answers("127.0.0.1", free)
    with socket.socket() as listener:  # accepts (the kernel does) but never answers: like a proxy with no backend
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert not answers("127.0.0.1", listener.getsockname()[1], timeout=0.3)


# -- listing while other runs start and stop containers ----------------------------------------------------------


def test_orphan_sweep_and_close_list_sparsely(docker_client: Any, reference_image: str, run_id: str,
                                              monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A container that vanishes between the list call and a per-container inspect made the
    # SDK raise NotFound out of the listing. Listing sparsely inspects nothing: simulate the
    # vanishing by making every inspect fail.
    gone = subprocess.Popen(["true"])
    gone.wait()
    stray = docker_client.containers.create(reference_image, labels={
        LABEL_RUN: run_id, LABEL_OWNER: f"{socket.gethostname()}:{gone.pid}"})
    try:
        import docker.errors

        def vanished(*args: Any, **kwargs: Any) -> None:
            raise docker.errors.NotFound("404 Client Error: no such container (simulated)")

        monkeypatch.setattr(docker_client.api, "inspect_container", vanished)
        assert stray.name in remove_orphans(docker_client)
        DockerTarget(reference_image, run_id, workroot=tmp_path, client=docker_client).close()
    finally:
        monkeypatch.undo()
        for c in docker_client.containers.list(all=True, filters={"id": stray.id}, sparse=True):
            c.remove(force=True)
    assert run_labelled(docker_client, run_id)[0] == []


def test_only_the_labelled_reference_image_counts_as_the_reference_server(docker_client: Any, reference_image: str,
                                                                          run_id: str, tmp_path: Path) -> None:
    """The reference image's own config keys (a short cluster join timeout) go only to the image built by
    docker/build.sh; any other image, like a real qdrant/qdrant, is configured as Qdrant alone."""
    tag = f"local/qsc-selftest-unlabelled:{secrets.token_hex(4)}"
    recipe = f'FROM {reference_image}\nLABEL {REFERENCE_LABEL}=""\n'.encode()
    docker_client.images.build(fileobj=io.BytesIO(recipe), tag=tag, rm=True, forcerm=True,
                               labels={"qsc.selftest": "unlabelled"})
    try:
        for image, expected in ((reference_image, True), (tag, False)):
            launcher = DockerTarget(image, run_id, workroot=tmp_path / "nodes")
            try:
                assert launcher.embedded_reference is expected, image
            finally:
                launcher.close()
    finally:
        docker_client.images.remove(tag, force=True)


def test_bench_engine_probe_measures_and_leaves_nothing(docker_client: Any, reference_image: str) -> None:
    from bench import engine

    run = engine.probe(reference_image, containers=2)
    assert run.ok, run.problem
    assert run.stats["containers"] == 2 and run.stats["engine_cpu_per_container"] > 0
    left = [c for c in list_containers(docker_client, {"label": LABEL_RUN})
            if str((c.attrs.get("Labels") or {}).get(LABEL_RUN, "")).startswith("bench-engine-")]
    assert not left, f"the probe left containers behind: {[c.id[:12] for c in left]}"

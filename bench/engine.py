"""What the Docker engine itself spends on one container, with no server in it.

Each container is made as the docker target makes a node (the image, ``init``, two ports published
on 127.0.0.1, the run's labels), runs ``sleep`` instead of the image's command, and is removed with
``force`` as the target's clean-up does. The machine's busy CPU time over the whole cycle, divided by
the containers, is the engine's share of a start-up (dockerd, containerd, runc, docker-proxy, the
kernel's namespaces and network set-up, and this process's API calls): the part of a Docker run's
cost that no image and no harness change can remove. Without ``sleep`` in the image the probe
reports a problem and the figure is n/a.
"""

from __future__ import annotations

import os
import secrets
import time

from bench.runner import Run, busy_cpu

#: Containers per measurement: enough to average the engine's jitter, few enough to take seconds.
CONTAINERS = 6


def probe(image: str, containers: int = CONTAINERS) -> Run:
    """Create, start and remove ``containers`` containers of ``image`` one after another; a Run of it."""
    from qdrant_conformance.fixtures.launchers.containers import (
        LABEL_OWNER,
        LABEL_RUN,
        connect,
        docker_errors,
        list_containers,
        owner_label,
        require_image,
    )

    run = Run(label=f"Docker engine, {containers} containers without a server", argv=[], env={},
              saved_command="python -m bench --only full --targets docker")
    run_id = f"bench-engine-{secrets.token_hex(4)}"
    client = connect()
    run.load = os.getloadavg()[0]
    try:
        image_id = str(require_image(client, image).id)
        started, machine_before = time.monotonic(), busy_cpu()
        for _ in range(containers):
            container = client.containers.create(
                image_id, [], entrypoint=["sleep", "30"], detach=True, init=True,
                ports={"6333/tcp": ("127.0.0.1",), "6334/tcp": ("127.0.0.1",)},
                labels={LABEL_RUN: run_id, LABEL_OWNER: owner_label()})
            try:
                container.start()
            finally:
                container.remove(v=True, force=True)
        run.wall = time.monotonic() - started
        run.machine = run.cpu = busy_cpu() - machine_before
        run.load_after = os.getloadavg()[0]
        run.others = 0.0  # the machine's CPU is the figure itself: nothing else is told apart
        run.stats = {"containers": containers, "engine_cpu_per_container": run.machine / containers}
    except docker_errors.DockerException as exc:
        run.problem = f"engine probe failed: {str(exc).splitlines()[0][:200]}"
    finally:
        for leftover in list_containers(client, {"label": f"{LABEL_RUN}={run_id}"}):
            leftover.remove(v=True, force=True)
        client.close()
    return run

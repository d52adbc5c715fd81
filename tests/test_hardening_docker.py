"""The launcher-level fault of the hardening family, killed against the reference image.

``docker-socket-mounted`` (reference_server.faults.LAUNCHER_FAULTS) is a launch option,
not server code, so the embedded-server kill test cannot see it. Here the container
checks run against the reference image twice, clean and with the fault: HARD-ANY-008
must hold on the clean container and fail on the faulty one, and no other container
check may change. Needs a Docker engine and the image (QSC_IMAGE, default
local/qsc-reference:latest); skipped with the reason otherwise. The image is never built here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IMAGE = os.environ.get("QSC_IMAGE") or "local/qsc-reference:latest"


def _image_present() -> str | None:
    from qdrant_conformance.fixtures.launchers.base import BadTargetInput
    from qdrant_conformance.fixtures.launchers.docker import connect, require_image

    try:
        client = connect(timeout=10)
    except BadTargetInput as exc:
        return str(exc)
    try:
        require_image(client, IMAGE)
    except BadTargetInput as exc:
        return str(exc)
    finally:
        client.close()
    return None


def _run(tmp_path: Path, fault: str | None) -> dict[str, str]:
    out = tmp_path / ("fault" if fault else "clean")
    cmd = [sys.executable, "-m", "pytest", "suites/test_hard_container.py", "-q", "-p", "no:cacheprovider",
           "--target", "docker", "--image", IMAGE, "--report-dir", str(out)]
    if fault:
        cmd += ["--reference-fault", fault]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QSC_", "QDRANT__", "PYTEST_"))}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    results = sorted(out.glob("*/results.json"))
    assert len(results) == 1, proc.stdout[-1500:] + proc.stderr[-1500:]
    data = json.loads(results[0].read_text())
    return {row["requirement"]: row["outcome"] for row in data["matrix"] if row.get("outcome")}


def test_docker_socket_fault_is_killed(tmp_path: Path) -> None:
    missing = _image_present()
    if missing is not None:
        pytest.skip(f"no Docker engine or image {IMAGE}: {missing}")
    clean = _run(tmp_path, None)
    faulty = _run(tmp_path, "docker-socket-mounted")
    assert clean.get("HARD-ANY-008") == "pass", clean
    assert faulty.get("HARD-ANY-008") == "fail", faulty
    others = {k: (clean.get(k), faulty.get(k)) for k in set(clean) | set(faulty)
              if k != "HARD-ANY-008" and clean.get(k) != faulty.get(k)}
    assert not others, f"the fault changed other container checks too: {others}"

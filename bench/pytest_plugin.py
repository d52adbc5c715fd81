"""A pytest plugin that ``python -m bench`` loads into the runs it measures (``-p bench.pytest_plugin``).

It changes nothing about what a run checks or how it is judged; it only watches:

- every server start-up (``ProcessTarget.start``, ``DockerTarget.start``, and with them
  ``BinaryTarget`` and the cluster helper, which start through the same methods): count, seconds
  from the call to ready, and whether it came up (the start-up checks start servers that must fail);
- the peak memory of each server it started (``VmHWM`` from ``/proc`` for a process, the memory
  cgroup's high-water mark for a container), sampled once a second and once more before the launcher
  stops them, and the peak RSS of the test process itself;
- the setup + call + teardown seconds of each test, summed per suite file and per protocol mark, and
  per protocol and sweep pass (a row copy ``<id>~bench<k>`` of ``QSC_BENCH_ROW_FACTOR`` is pass k;
  everything else is pass 1), so one run at 4x rows shows the time after 1x, 2x and 4x of them.

The numbers go to ``$QSC_BENCH_STATS.<process>.json``; without that
variable the plugin does nothing.
"""

from __future__ import annotations

import functools
import json
import os
import re
import resource
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench.probes import cpu_seconds, peak_rss

STATS_ENV = "QSC_BENCH_STATS"
SAMPLE_INTERVAL_S = 1.0


class _Watch:
    """What one pytest process (the controller, or one xdist worker) saw."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.starts: list[dict[str, Any]] = []
        #: label -> how to read (peak bytes, CPU seconds) of that server now (None when gone), and the
        #: largest values seen (both only grow while the server lives).
        self.readers: dict[str, Callable[[], tuple[int | None, float | None]]] = {}
        self.memory_peaks: dict[str, int] = {}
        self.cpu_seconds: dict[str, float] = {}
        self.file_seconds: dict[str, float] = defaultdict(float)
        self.protocol_seconds: dict[str, float] = defaultdict(float)
        self.protocol_tests: dict[str, int] = defaultdict(int)
        #: protocol -> sweep pass -> seconds / tests.
        self.pass_seconds: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
        self.pass_tests: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        with self.lock:
            readers = list(self.readers.items())
        for label, read in readers:
            memory, cpu = read()
            with self.lock:
                if memory is not None:
                    self.memory_peaks[label] = max(self.memory_peaks.get(label, 0), memory)
                if cpu is not None:
                    self.cpu_seconds[label] = max(self.cpu_seconds.get(label, 0.0), cpu)

    def run_sampler(self) -> None:
        def loop() -> None:
            while not self._stop.wait(SAMPLE_INTERVAL_S):
                self.sample()

        self._thread = threading.Thread(target=loop, name="bench-rss", daemon=True)
        self._thread.start()

    def stop_sampler(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


WATCH = _Watch()



def _first_readable(paths: tuple[str, ...]) -> str | None:
    for path in paths:
        try:
            return Path(path).read_text()
        except OSError:
            continue
    return None


def _cgroup_peak(container_id: str) -> int | None:
    """The container's memory high-water mark in bytes (cgroup v1 or v2), or None when unreadable."""
    text = _first_readable((f"/sys/fs/cgroup/memory/docker/{container_id}/memory.max_usage_in_bytes",
                            f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/memory.peak",
                            f"/sys/fs/cgroup/docker/{container_id}/memory.peak"))
    try:
        return int(text.strip()) if text else None
    except ValueError:
        return None


def _cgroup_cpu(container_id: str) -> float | None:
    """CPU seconds the container has used (cgroup v1 cpuacct or v2 cpu.stat), or None when unreadable."""
    text = _first_readable((f"/sys/fs/cgroup/cpuacct/docker/{container_id}/cpuacct.usage",
                            f"/sys/fs/cgroup/cpu,cpuacct/docker/{container_id}/cpuacct.usage"))
    if text:
        return int(text.strip()) / 1e9
    text = _first_readable((f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/cpu.stat",
                            f"/sys/fs/cgroup/docker/{container_id}/cpu.stat"))
    for line in (text or "").splitlines():
        if line.startswith("usage_usec "):
            return int(line.split()[1]) / 1e6
    return None


def _cwd_under(pid: int, root: Path | None) -> bool:
    if root is None:
        return False
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return False
    return cwd == root or root in cwd.parents


def _process_pids(workdir: Path) -> list[int]:
    from qdrant_conformance.fixtures.launchers.process import processes_under

    return processes_under(workdir)


#: The sweep's bench-only row copies: ``test_authz[root~bench3-rest-whitelist]`` is pass 3.
_PASS = re.compile(r"~bench(\d+)-")


def sweep_pass(nodeid: str) -> int:
    found = _PASS.search(nodeid)
    return int(found.group(1)) if found else 1


#: A cluster's node names start with its random tag (fixtures/cluster.py): ``c3ab12-node1``.
_CLUSTER_TAG = re.compile(r"^c\d+[0-9a-f]{4}-")


def server_label(kind: str, name: str) -> str:
    """``kind:name`` with a cluster's random tag replaced, so repetitions of a run name the same servers."""
    return f"{kind}:{_CLUSTER_TAG.sub('cluster-', name)}"


def _watch_instance(kind: str, instance: Any) -> None:
    """Register a reader for the peak memory of the server behind ``instance``."""
    label = server_label(kind, instance.name)
    with WATCH.lock:
        # A second start of the same node name (a restart) is another server: keep both.
        n = sum(1 for existing in WATCH.readers if existing == label or existing.startswith(label + "#"))
        if n:
            label = f"{label}#{n + 1}"
    if kind == "docker":
        container_id = instance.description.get("container_id", "")

        def read() -> tuple[int | None, float | None]:
            if not container_id:
                return None, None
            return _cgroup_peak(container_id), _cgroup_cpu(container_id)
    else:
        workdir = instance.workdir
        pids = _process_pids(workdir) if workdir is not None else []

        def read() -> tuple[int | None, float | None]:
            # A pid is only ours while its cwd is still the node's work dir (pids are reused).
            live = [pid for pid in pids if _cwd_under(pid, workdir)]
            memory = [v for v in (peak_rss(pid) for pid in live) if v is not None]
            cpu = [v for v in (cpu_seconds(pid) for pid in live) if v is not None]
            return (sum(memory) if memory else None), (sum(cpu) if cpu else None)
    with WATCH.lock:
        WATCH.readers[label] = read
    WATCH.sample()


def _timed_start(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def start(self: Any, spec: Any, *args: Any, **kwargs: Any) -> Any:
        began = time.monotonic()
        ok = False
        try:
            instance = original(self, spec, *args, **kwargs)
            ok = True
            return instance
        finally:
            seconds = time.monotonic() - began
            with WATCH.lock:
                WATCH.starts.append({"kind": self.kind, "name": spec.name, "profile": spec.profile,
                                     "seconds": round(seconds, 4), "ok": ok})
            if ok:
                _watch_instance(self.kind, instance)

    return start


def _sampled_close(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def close(self: Any, *args: Any, **kwargs: Any) -> Any:
        WATCH.sample()  # the last look before the servers go
        return original(self, *args, **kwargs)

    return close


def _install() -> None:
    """Wrap the targets' start and close (BinaryTarget inherits ProcessTarget's).

    The docker target only when the run has imported it already (a docker target, checked at
    configure time): a process run must not pay for importing the docker SDK because it is watched.
    """
    from qdrant_conformance.fixtures.launchers.process import ProcessTarget

    classes: list[Any] = [ProcessTarget]
    docker_module = sys.modules.get("qdrant_conformance.fixtures.launchers.docker")
    if docker_module is not None:
        classes.append(docker_module.DockerTarget)
    for cls in classes:
        if getattr(cls.start, "_bench_wrapped", False):
            continue
        cls.start = _timed_start(cls.start)
        cls.close = _sampled_close(cls.close)
        cls.start._bench_wrapped = True


def _enabled() -> bool:
    return bool(os.environ.get(STATS_ENV))


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    # After every plugin's configure (the harness's checks a docker target there), before any fixture.
    if not _enabled():
        return
    _install()
    WATCH.run_sampler()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not _enabled():
        return
    path = report.nodeid.split("::", 1)[0]
    protocol = dict(report.user_properties).get("qsc_protocol", "any")
    n = sweep_pass(report.nodeid)
    with WATCH.lock:
        WATCH.file_seconds[path] += report.duration
        WATCH.protocol_seconds[str(protocol)] += report.duration
        WATCH.pass_seconds[str(protocol)][n] += report.duration
        if report.when == "call":
            WATCH.protocol_tests[str(protocol)] += 1
            WATCH.pass_tests[str(protocol)][n] += 1


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if not _enabled():
        return
    WATCH.sample()
    WATCH.stop_sampler()
    workerinput = getattr(config, "workerinput", None)
    who = str(workerinput["workerid"]) if workerinput else "main"
    with WATCH.lock:
        data = {
            "process": who,
            "pid": os.getpid(),
            # ru_maxrss is in KiB on Linux.
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "starts": list(WATCH.starts),
            "server_peak_bytes": dict(WATCH.memory_peaks),
            # Sampled, so a little short of the truth; for a container the only CPU figure there is.
            "server_cpu_seconds": {k: round(v, 3) for k, v in WATCH.cpu_seconds.items()},
            "file_seconds": {k: round(v, 4) for k, v in WATCH.file_seconds.items()},
            "protocol_seconds": {k: round(v, 4) for k, v in WATCH.protocol_seconds.items()},
            "protocol_tests": dict(WATCH.protocol_tests),
            "pass_seconds": {p: {str(k): round(v, 4) for k, v in d.items()} for p, d in WATCH.pass_seconds.items()},
            "pass_tests": {p: {str(k): v for k, v in d.items()} for p, d in WATCH.pass_tests.items()},
        }
    target = Path(f"{os.environ[STATS_ENV]}.{who}.json")
    target.write_text(json.dumps(data, indent=1))

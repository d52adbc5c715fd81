"""Start ``python -m reference_server`` as a real process for self-tests, and always stop it.

Usage::

    with running_server({"service": {"api_key": KEY}}) as srv:
        httpx.get(srv.url("/collections"), headers={"api-key": KEY})

or, when a test needs several servers, the ``reference_server`` fixture in
``tests/conftest.py`` (``srv = reference_server(config, files=...)``), which
stops every server it started at teardown.

Each server gets a fresh work dir (its cwd; ``config/test.yaml`` is written
there, plus any ``files`` such as ``tls/key.pem``, keys with mode 0600), free
loopback ports and an environment without ambient ``QDRANT*``/TLS variables.
Readiness is polled against a deadline: the "HTTP listening" log line, then
an HTTP answer to ``GET /readyz`` (plain, or HTTPS when ``ready_context`` is
given; any status, as versions before 1.5.0 have no such route), then
a TCP connect to the gRPC port if gRPC is on.
"""

from __future__ import annotations

import copy
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Per-request timeout for self-tests. Generous on purpose: the machine may be
#: busy, and a server's first data call waits for qdrant_client's import.
#: Deadlines only cost time when something is already wrong.
T = 60.0
CONFIG_RELPATH = "config/test.yaml"
READY_LINE = "Qdrant HTTP listening on"
#: gRPC readiness is its own log line: an open port alone may belong to another process that took
#: the free port first, since the server keeps serving REST when gRPC cannot bind (spec §1.5).
GRPC_READY_LINE = "Qdrant gRPC listening on"
GRPC_FAILED_LINE = "Error while starting gRPC server"
#: Log text of a port another process took between free_port() and the bind: start again on fresh ports.
PORT_TAKEN = ("Address already in use", "cannot bind")
_DROPPED_ENV = {"SSL_CERT_FILE", "SSL_CERT_DIR", "SSLKEYLOGFILE", "RUN_MODE"}


class ServerFailed(Exception):
    """The server exited or did not become ready in time; the message holds its log."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def poll(check: Callable[[], bool], deadline_s: float, interval: float = 0.02) -> bool:
    """Call ``check`` until it is true or ``deadline_s`` seconds have passed."""
    end = time.monotonic() + deadline_s
    while True:
        if check():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(interval)


def assert_refused(request: Callable[[], object]) -> None:
    """``request`` must fail at the transport (TLS alert, reset, close), not time out or answer.

    Under TLS 1.3 a refused client certificate surfaces after the handshake,
    as any of ConnectError/ReadError/WriteError/RemoteProtocolError.
    """
    try:
        answer = request()
    except httpx.TimeoutException as exc:
        raise AssertionError(f"timed out instead of being refused: {exc!r}") from exc
    except httpx.TransportError:
        return
    raise AssertionError(f"not refused: {answer!r}")


def write_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` with ``mode`` from the first byte on (keys are never briefly world-readable)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass
class ServerProcess:
    """A running reference server."""

    proc: subprocess.Popen[bytes]
    workdir: Path
    host: str
    http_port: int
    grpc_port: int | None
    tls: bool
    log_path: Path
    owns_workdir: bool
    exit_code: int | None = field(default=None)
    _final_logs: str | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.http_port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def grpc_target(self) -> str:
        assert self.grpc_port is not None
        return f"{self.host}:{self.grpc_port}"

    def logs(self) -> str:
        """The server's output so far (kept after :meth:`stop` removed the work dir)."""
        if self._final_logs is not None:
            return self._final_logs
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_for_log(self, needle: str, deadline_s: float = 10.0) -> bool:
        return poll(lambda: needle in self.logs(), deadline_s)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Signal the server, wait (kill after ``timeout``), remove its work dir; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.exit_code = self.proc.returncode
        if self._final_logs is None:
            self._final_logs = self.logs()
        if self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return self.exit_code


def prepare_workdir(
    workdir: Path,
    config: Mapping[str, Any],
    files: Mapping[str, bytes] | None = None,
) -> Path:
    """Write ``config/test.yaml`` and ``files`` (``*key*.pem`` as 0600) below ``workdir``."""
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for rel, data in (files or {}).items():
        write_file(workdir / rel, data, 0o600 if "key" in Path(rel).name else 0o644)
    write_file(workdir / CONFIG_RELPATH, yaml.safe_dump(dict(config)).encode(), 0o600)
    return workdir


def launch(
    workdir: Path,
    *,
    args: tuple[str, ...] = ("--config-path", CONFIG_RELPATH),
    env: Mapping[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], Path]:
    """Spawn the server in ``workdir`` with its output in ``workdir/server.log``."""
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith("QDRANT") and k not in _DROPPED_ENV
    }
    environment["PYTHONPATH"] = str(REPO_ROOT)
    environment["GRPC_VERBOSITY"] = "NONE"
    environment.update(env or {})
    log_path = workdir / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reference_server", *args],
            cwd=workdir,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return proc, log_path


def _ready_over_http(srv: ServerProcess, context: ssl.SSLContext | None) -> bool:
    """REST answers HTTP (any status: versions before 1.5.0 have no ``/readyz``)."""
    try:
        httpx.get(srv.url("/readyz"), verify=context if context is not None else False, timeout=1.0)
    except httpx.HTTPError:
        return False
    return True


def start_server(
    config: Mapping[str, Any] | None = None,
    *,
    files: Mapping[str, bytes] | None = None,
    workdir: Path | None = None,
    grpc: bool = True,
    ready_context: ssl.SSLContext | None = None,
    env: Mapping[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
    config_arg: str = CONFIG_RELPATH,
    ready_timeout: float = T,
    attempts: int = 3,
) -> ServerProcess:
    """Start a server on free ports and wait until it is ready; the caller must :meth:`stop` it.

    ``config`` is merged over host/ports chosen here (which are also passed
    as ``QDRANT__SERVICE__*`` variables). ``config_arg`` is what
    ``--config-path`` gets. With TLS on and no
    ``ready_context``, readiness is the log line plus the gRPC port only (a
    handshake would need the test's CA or client certificate).
    """
    last_logs = ""
    for _ in range(attempts):
        http_port = free_port()
        grpc_port = free_port() if grpc else None
        base = {"service": {"host": "127.0.0.1", "http_port": http_port, "grpc_port": grpc_port}}
        merged = _merge(base, config or {})
        owns = workdir is None
        wd = Path(tempfile.mkdtemp(prefix="refsrv-")) if workdir is None else workdir
        prepare_workdir(wd, merged, files)
        # Ports also go in as environment (which beats every config file), so
        # they hold even when ``config_arg`` names a file that does not exist.
        port_env = {
            "QDRANT__SERVICE__HOST": "127.0.0.1",
            "QDRANT__SERVICE__HTTP_PORT": str(http_port),
            "QDRANT__SERVICE__GRPC_PORT": str(grpc_port) if grpc_port is not None else "null",
        }
        proc, log_path = launch(wd, args=("--config-path", config_arg, *extra_args), env={**port_env, **(env or {})})
        srv = ServerProcess(
            proc=proc,
            workdir=wd,
            host="127.0.0.1",
            http_port=http_port,
            grpc_port=grpc_port,
            tls=bool(merged["service"].get("enable_tls")),
            log_path=log_path,
            owns_workdir=owns,
        )
        try:
            wait_ready(srv, ready_context, ready_timeout)
            return srv
        except ServerFailed as exc:
            last_logs = str(exc)
            srv.stop()
            if not any(marker in last_logs for marker in PORT_TAKEN):
                raise
    raise ServerFailed(last_logs)


def wait_ready(srv: ServerProcess, ready_context: ssl.SSLContext | None, timeout: float) -> None:
    def ready() -> bool:
        if not srv.alive():
            return True  # stop polling; reported below
        if READY_LINE not in srv.logs():
            return False
        if not srv.tls or ready_context is not None:
            if not _ready_over_http(srv, ready_context):
                return False
        if srv.grpc_port is None:
            return True
        logs = srv.logs()
        if GRPC_FAILED_LINE in logs:
            return True  # stop polling; reported below
        return GRPC_READY_LINE in logs and port_open(srv.grpc_port)

    finished = poll(ready, timeout)
    if not srv.alive():
        raise ServerFailed(f"server exited with {srv.proc.returncode}:\n{srv.logs()}")
    if srv.grpc_port is not None and GRPC_FAILED_LINE in srv.logs():
        # A bind failure in the log (PORT_TAKEN) makes the caller retry on fresh ports.
        raise ServerFailed(f"gRPC did not start on port {srv.grpc_port}:\n{srv.logs()}")
    if not finished:
        raise ServerFailed(f"server not ready after {timeout:g} s:\n{srv.logs()}")


@contextmanager
def running_server(config: Mapping[str, Any] | None = None, **kwargs: Any) -> Iterator[ServerProcess]:
    """:func:`start_server` as a context manager that always stops the server."""
    srv = start_server(config, **kwargs)
    try:
        yield srv
    finally:
        srv.stop()


def run_to_exit(
    config: Mapping[str, Any] | None,
    *,
    files: Mapping[str, bytes] | None = None,
    args: tuple[str, ...] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 15.0,
) -> tuple[int, str, int, int]:
    """Run a server that is expected to fail at start-up.

    Returns ``(exit code, output, http_port, grpc_port)``; the ports are
    the ones the config named, for checking that nothing listens on them.
    The process is killed if it is still running after ``timeout``.
    """
    http_port, grpc_port = free_port(), free_port()
    base = {"service": {"host": "127.0.0.1", "http_port": http_port, "grpc_port": grpc_port}}
    workdir = Path(tempfile.mkdtemp(prefix="refsrv-"))
    try:
        prepare_workdir(workdir, _merge(base, config or {}), files)
        argv = args if args is not None else ("--config-path", CONFIG_RELPATH)
        proc, log_path = launch(workdir, args=argv, env=env)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            raise
        return code, log_path.read_text(errors="replace"), http_port, grpc_port
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

"""A warm parent that forks reference servers: ``python -m reference_server.zygote SOCKET``.

Why: a fresh ``python -m reference_server`` spends about 1.1 s of CPU importing
itself and qdrant-client (its data plane) before it can answer; a run starts
about twenty servers, and the kill test thousands. The zygote imports all of it
once and forks a child per server, which then runs exactly what ``python -m
reference_server`` runs (:func:`reference_server.__main__.main`) in the work
dir, environment and log file the launcher asked for. Nothing here is part of
the behaviour under test: a child is indistinguishable from a server started
by hand, apart from its ``/proc/PID/cmdline``.

Safety of ``fork``: the zygote never creates a gRPC channel or server, an
event loop, a thread or an OpenSSL context before forking (importing those
libraries starts none of them), and it is single-threaded. ``random``
re-seeds itself in a forked child; ``secrets``/``os.urandom`` and OpenSSL's
RNG are fork-safe.

Protocol, one Unix-socket connection per child (the socket lives in a private 0700
directory of its own, which the zygote removes when it ends):

- request: one JSON line ``{"argv": [...], "cwd": DIR, "env": {...}, "log": FILE}``
- reply: ``{"pid": PID}`` (the child leads its own session, so its process
  group is its PID), or ``{"error": "..."}``;
- later, on the same connection: ``{"exit": CODE}`` when the child ends
  (``-N`` for signal N, as :class:`subprocess.Popen` reports it).

The zygote ends when its parent (``QSC_PARENT_PID``) is gone or on SIGTERM, and
takes its children with it.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import sys
import time
import traceback

from .watchdog import pid_alive

# Same as ``python -m reference_server``: before anything loads OpenSSL.
os.environ.setdefault("OPENSSL_CONF", os.path.join(os.path.dirname(os.path.abspath(__file__)), "openssl.cnf"))

PARENT_CHECK_S = 1.0
MAX_REQUEST = 1 << 20
#: How long stopping servers get after SIGTERM before SIGKILL, when the zygote itself is told to end.
STOP_GRACE_S = 8.0


def preload() -> None:
    """Import everything a server imports, including what it imports lazily on its first data request."""
    import qdrant_client.local.qdrant_local  # noqa: F401  (the data plane; the bulk of the start-up cost)

    from . import __main__ as entry  # noqa: F401
    from . import data_plane, logging_setup, server, watchdog  # noqa: F401


def _child(conn: socket.socket, listener: socket.socket, request: dict[str, object]) -> None:
    """In the forked child: become the server the launcher asked for. Never returns."""
    code = 1
    try:
        listener.close()
        conn.close()
        # Back to what a fresh interpreter has (SIGPIPE stays ignored, as Python sets it at start-up).
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        os.setsid()
        os.chdir(str(request["cwd"]))
        env = request["env"]
        assert isinstance(env, dict)
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in env.items()})
        log_fd = os.open(str(request["log"]), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        os.close(null_fd)
        argv = request["argv"]
        assert isinstance(argv, list)
        sys.argv = ["reference_server", *map(str, argv)]
        from .__main__ import main

        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _send(conn: socket.socket, message: dict[str, object]) -> None:
    try:
        conn.sendall(json.dumps(message).encode() + b"\n")
    except OSError:
        pass  # the launcher went away; the child is still reaped


def _read_request(conn: socket.socket) -> dict[str, object]:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            raise ValueError("connection closed before a whole request arrived")
        data += chunk
        if len(data) > MAX_REQUEST:
            raise ValueError("request too large")
    request = json.loads(data)
    if not isinstance(request, dict) or not {"argv", "cwd", "env", "log"} <= request.keys():
        raise ValueError("request needs argv, cwd, env and log")
    return request


def serve(path: str) -> int:
    parent = int(os.environ.get("QSC_PARENT_PID", "0") or 0)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    signal.set_wakeup_fd(wake_w)
    stopping = False

    def on_term(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGCHLD, lambda _s, _f: None)  # wakes the selector through the wakeup fd
    children: dict[int, socket.socket] = {}
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)

    def reap() -> None:
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = children.pop(pid, None)
            if conn is not None:
                _send(conn, {"exit": os.waitstatus_to_exitcode(status)})
                conn.close()

    while not stopping:
        if parent and not pid_alive(parent):
            break
        for key, _ in selector.select(timeout=PARENT_CHECK_S):
            if key.fileobj is listener:
                conn, _addr = listener.accept()
                try:
                    conn.settimeout(10)
                    request = _read_request(conn)
                except (OSError, ValueError) as exc:
                    _send(conn, {"error": str(exc)})
                    conn.close()
                    continue
                pid = os.fork()
                if pid == 0:
                    _child(conn, listener, request)
                children[pid] = conn
                _send(conn, {"pid": pid})
            else:
                try:
                    while os.read(wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
        reap()
    # Our launcher is gone or asked us to stop: so do the servers we forked.
    for pid in list(children):
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while children and time.monotonic() < deadline:
        reap()
        if children:
            selector.select(timeout=0.05)
    for pid, conn in list(children.items()):
        _signal_group(pid, signal.SIGKILL)
        try:
            _, status = os.waitpid(pid, 0)
            _send(conn, {"exit": os.waitstatus_to_exitcode(status)})
        except ChildProcessError:
            pass
        conn.close()
    listener.close()
    try:
        os.unlink(path)
        # The socket's directory is its own (the launcher makes a private one): with a launcher that died
        # and cannot clean up, nothing is left behind.
        os.rmdir(os.path.dirname(os.path.abspath(path)))
    except OSError:
        pass
    return 0


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m reference_server.zygote SOCKET", file=sys.stderr)
        return 2
    preload()
    return serve(args[0])


if __name__ == "__main__":
    sys.exit(main())

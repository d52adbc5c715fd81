"""Stop when the harness that started us is gone.

A test runner killed with SIGKILL cannot stop its servers; the launcher
therefore passes its PID in ``QSC_PARENT_PID`` and the server ends itself
(SIGTERM to its own process, the normal clean shutdown) once that PID no
longer exists. A real Qdrant has no such switch; the harness stops it itself.
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "QSC_PARENT_PID"
CHECK_INTERVAL_S = 1.0


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_from_env() -> None:
    """Watch ``$QSC_PARENT_PID`` in a daemon thread, if it is set."""
    raw = os.environ.get(ENV, "")
    if not raw.isdigit():
        return
    parent = int(raw)
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(CHECK_INTERVAL_S):
            if not pid_alive(parent):
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="qsc-parent-watchdog", daemon=True).start()

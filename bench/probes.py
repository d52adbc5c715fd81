"""What the bench reads of a server it measures: CPU and peak memory from ``/proc`` (Linux), and readiness."""

from __future__ import annotations

import http.client
import os
import ssl

_KIB = 1024


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds ``pid`` has used so far (all threads), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def peak_rss(pid: int) -> int | None:
    """Peak resident set of ``pid`` in bytes (``VmHWM``), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * _KIB
    except (OSError, ValueError):
        return None
    return None


def readyz_ok(port: int, tls: ssl.SSLContext | None = None) -> bool:
    """``GET /readyz`` on 127.0.0.1 answers 200, asked with the stdlib client (so the probe steals no CPU from
    the server it times)."""
    conn: http.client.HTTPConnection
    if tls is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    else:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=1, context=tls)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()

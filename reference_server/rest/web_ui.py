"""The Web UI at ``/dashboard``: static files, present only when their directory is (spec §1.1, §2.5).

Qdrant mounts actix-files under the ``/dashboard`` scope when
``service.enable_static_content`` is not false and ``service.static_content_dir``
(default ``./static``, relative to the working directory) is a directory; the
same condition adds ``/dashboard`` to the auth whitelist. Observed on v1.18.3
(spec §9b): a path under ``/dashboard`` that names no file, ``..`` included,
gets 404 with an empty body; nothing outside the directory is ever reached.
The scope sets ``X-Frame-Options: DENY`` on its responses from v1.9.7.
"""

from __future__ import annotations

import logging
import mimetypes
import posixpath
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from ..fault_policy import NO_FAULTS, FaultPolicy
from ..settings import Settings
from ..versioning import Emulation
from .responses import Response, empty, plain

WEB_UI_PATH = "/dashboard"
INDEX_FILE = "index.html"

log = logging.getLogger("reference_server.rest")


def web_ui_folder(settings: Settings, cwd: Path | None = None) -> Path | None:
    """The static-content directory, or ``None`` when the UI is off or the directory is missing."""
    if not settings.service.enable_static_content:
        return None
    configured = settings.service.static_content_dir
    folder = Path(configured)
    if not folder.is_absolute():
        folder = (cwd or Path.cwd()) / folder
    if not folder.is_dir():
        # Qdrant logs the same warning and starts without the UI (and without its whitelist entry).
        log.warning("Static content folder for Web UI '%s' does not exist", configured)
        return None
    return folder


def claims(route_path: str) -> bool:
    """Does the ``/dashboard`` scope match ``route_path``? Whole segments only, as an actix scope matches."""
    return route_path == WEB_UI_PATH or route_path.startswith(WEB_UI_PATH + "/")


@dataclass(frozen=True)
class WebUi:
    folder: Path
    frame_deny: bool
    faults: FaultPolicy = NO_FAULTS

    @classmethod
    def from_settings(cls, settings: Settings, emulation: Emulation, cwd: Path | None = None,
                      faults: FaultPolicy = NO_FAULTS) -> WebUi | None:
        if not emulation.has_web_ui:
            return None
        folder = web_ui_folder(settings, cwd)
        return None if folder is None else cls(folder.resolve(), emulation.web_ui_frame_deny, faults)

    def api_fallthrough(self, route_path: str) -> str | None:
        """Fault seam ``dashboard-dot-fallthrough``: the API path a ``..`` path resolves to, else ``None``."""
        if not self.faults.active("dashboard-dot-fallthrough"):
            return None
        resolved = posixpath.normpath(route_path)
        return None if claims(resolved) else resolved

    def serve(self, method: str, route_path: str) -> Response:
        """The file ``route_path`` names below the folder (``index.html`` for a directory), else 404, empty."""
        if method not in ("GET", "HEAD"):
            # actix-files answers only GET and HEAD (inferred: spec §2.5 names no other method).
            response = plain(405, "Request did not meet this resource's requirements.")
        else:
            found = self._file(route_path[len(WEB_UI_PATH):])
            response = empty(404) if found is None else _file_response(found)
        if self.frame_deny:
            response.headers.append((b"x-frame-options", b"DENY"))
        return response

    def _file(self, rest: str) -> Path | None:
        parts: list[str] = []
        for segment in rest.split("/"):
            if "%2f" in segment.lower():
                return None  # an encoded slash never becomes a separator
            segment = unquote(segment)
            if segment == "..":
                if parts:
                    parts.pop()  # actix-files pops, so ".." never climbs out of the folder
            elif segment.startswith((".", "*")) or "\\" in segment or "\x00" in segment:
                return None  # hidden files and odd segments are never served
            elif segment:
                parts.append(segment)
        candidate = self.folder.joinpath(*parts)
        if candidate.is_dir():
            candidate = candidate / INDEX_FILE
        try:
            real = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not real.is_file() or not real.is_relative_to(self.folder):
            return None
        return real


def _file_response(path: Path) -> Response:
    try:
        body = path.read_bytes()
    except OSError:
        return empty(404)
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if kind.startswith("text/") or kind == "application/javascript":
        kind += "; charset=utf-8"
    return Response(200, body, [(b"content-type", kind.encode("ascii"))])

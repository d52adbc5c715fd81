"""The Web UI at /dashboard: served and whitelisted exactly when its static content exists.

Qdrant serves ``service.static_content_dir`` (default ``./static``) at
``/dashboard`` and adds ``/dashboard`` to the auth whitelist only when
``service.enable_static_content`` is not false and that directory exists
(spec §1.1, §2.5); the official image always ships ``/qdrant/static`` (§1.3).
The ``dashboard`` profile places a small ``static/`` in the work dir; the
``api-key`` profile turns the UI off. What paths under /dashboard must not
reach is checked in ``test_authz_special.py`` (AUTHZ-REST-012, -019).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest

from qdrant_conformance.fixtures.outcomes import Outcome, disabled, harness_error
from qdrant_conformance.fixtures.profiles import WEB_UI_INDEX
from qdrant_conformance.fixtures.secrets import REDACTOR

pytestmark = pytest.mark.profiles("api-key", "dashboard")

req = pytest.mark.requirement
WITH_UI = "dashboard"
WITHOUT_UI = "api-key"
UI_PATHS = [b"/dashboard", b"/dashboard/", b"/dashboard/index.html"]


def keyed_server(qdrant: Callable[[str], Any], name: str) -> Any:
    server = qdrant(name)
    if not server.credentials.api_key:
        harness_error(f"the {name} profile has no manage key: give --api-key-file for an external target")
    return server


def manage(server: Any) -> list[tuple[str, str]]:
    return [("api-key", server.credentials.api_key)]


def shown(outcome: Outcome) -> str:
    return REDACTOR.redact(outcome.summary())


def fail_with(title: str, problems: list[str]) -> None:
    if problems:
        pytest.fail(REDACTOR.redact(title + "\n  - " + "\n  - ".join(problems)), pytrace=False)


def auth_is_on(server: Any) -> list[str]:
    """Twins: a protected route is refused without a credential and served with the manage key.

    Without them a 200 on /dashboard could come from an open server, not from the whitelist.
    """
    rest = server.rest()
    problems = []
    bare = rest.request("GET", "/collections")
    if not bare.denied:
        problems.append(f"GET /collections without a credential: {shown(bare)}; it must be refused, or a "
                        "whitelisted /dashboard proves nothing")
    keyed = rest.request("GET", "/collections", headers=manage(server))
    if not keyed.succeeded:
        problems.append(f"GET /collections with the manage key (positive twin): {shown(keyed)}")
    return problems


def is_ui(outcome: Outcome, ours: bool) -> bool:
    """200 with HTML: our own index.html byte for byte when the suite placed it (``ours``)."""
    if outcome.status != 200 or not outcome.headers.get("content-type", "").startswith("text/html"):
        return False
    return outcome.body == WEB_UI_INDEX if ours else bool(outcome.body)


@req("AUTHZ-REST-020")
def test_web_ui_is_served_without_a_credential_when_its_files_exist(qdrant: Callable[[str], Any]) -> None:
    server = keyed_server(qdrant, WITH_UI)
    ours = server.web_ui is True
    wrong = "api-key", "qsc-wrong-" + secrets.token_urlsafe(24)  # a fresh value, never derived from a key
    problems = auth_is_on(server)
    for path in UI_PATHS:
        for who, headers in (("without a credential", []), ("with an invalid key", [wrong])):
            outcome = server.rest().request("GET", "/", raw_path=path, headers=headers)
            if not is_ui(outcome, ours):
                want = "the index.html placed in static/" if ours else "the UI's HTML"
                problems.append(f"GET {path.decode()} {who}: {shown(outcome)}; Qdrant: 200 text/html, {want}")
    fail_with("with static content, /dashboard is the Web UI and whitelisted (spec §2.5):", problems)


@req("AUTHZ-REST-021")
def test_web_ui_forbids_framing(qdrant: Callable[[str], Any]) -> None:
    server = keyed_server(qdrant, WITH_UI)
    problems = []
    for path in UI_PATHS:
        outcome = server.rest().request("GET", "/", raw_path=path)
        if not is_ui(outcome, server.web_ui is True):
            problems.append(f"GET {path.decode()} (positive twin: the UI itself): {shown(outcome)}")
            continue
        frame = outcome.headers.get("x-frame-options")
        if frame is None or frame.strip().upper() != "DENY":
            problems.append(f"GET {path.decode()}: X-Frame-Options {frame!r}; Qdrant: DENY")
    fail_with("the Web UI must not be framed (spec §2.5, §10, v1.9.7):", problems)


@req("AUTHZ-REST-022")
def test_dashboard_is_not_whitelisted_without_static_content(qdrant: Callable[[str], Any]) -> None:
    server = keyed_server(qdrant, WITHOUT_UI)
    present = server.web_ui_present()
    if server.web_ui is None and present is not False:
        # The suite did not configure this deployment; without knowing its static_content_dir
        # a served or odd /dashboard says nothing about this requirement.
        disabled("the external deployment serves /dashboard or does not say, and whether its static content "
                 "exists is not known: nothing to judge")
    expected = 401 if server.version_tuple >= (1, 9, 0) else 403
    problems = auth_is_on(server)
    for path in UI_PATHS:
        bare = server.rest().request("GET", "/", raw_path=path)
        if bare.status != expected:
            problems.append(f"GET {path.decode()} without a credential: {shown(bare)}; Qdrant: {expected}")
        keyed = server.rest().request("GET", "/", raw_path=path, headers=manage(server))
        if keyed.status != 404:
            problems.append(f"GET {path.decode()} with the manage key: {shown(keyed)}; Qdrant: 404 (no such route)")
    fail_with("without static content /dashboard is no route and not whitelisted (spec §1.1, §2.5):", problems)

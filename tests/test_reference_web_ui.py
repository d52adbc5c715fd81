"""The reference server's Web UI at /dashboard, with and without its static content.

Expectations from the spec: §1.1 (enable_static_content, static_content_dir,
default ./static relative to the working dir), §2.5 (whitelisted only when the
directory exists; route pattern from v1.18.2, raw-path prefix before),
§9 (v1.3.0, X-Frame-Options from v1.9.7) and §9b (v1.18.3 with static/:
/dashboard/../collections 404 with an empty body, /dashboard%2f..%2fcollections 401).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from qdrant_conformance.fixtures.clients.rest import RestClient
from qdrant_conformance.fixtures.outcomes import Outcome
from qdrant_conformance.fixtures.pki import RunPKI
from qdrant_conformance.fixtures.profiles import WEB_UI_INDEX, Credentials, profile, render
from qdrant_conformance.reference_server.settings import load_settings
from tests.server_helpers import ServerProcess, T, running_server

MANAGE = "manage-" + secrets.token_hex(12)
INDEX = b"<!doctype html><html><body>reference web ui test</body></html>\n"
APP_JS = b"console.log('ui');\n"
OUTSIDE = b"outside the static folder\n"


def config(version: str | None = None, **service: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {"service": {"api_key": MANAGE, **service}}
    if version is not None:
        conf["reference_server"] = {"version": version}
    return conf


def ui_files(folder: str = "static") -> dict[str, bytes]:
    return {f"{folder}/index.html": INDEX, f"{folder}/assets/app.js": APP_JS,
            f"{folder}/.hidden": b"hidden\n", "outside.txt": OUTSIDE}


def get(http: RestClient, path: str, key: str | None = None, method: str = "GET") -> Outcome:
    """``path`` sent byte for byte (httpx alone would resolve ``..``)."""
    return http.request(method, "/", raw_path=path.encode(), headers=[("api-key", key)] if key else None)


@pytest.fixture(scope="module")
def ui() -> Iterator[ServerProcess]:
    with running_server(config(), grpc=False, files=ui_files()) as server:
        # A symlink out of the folder: never followed out of it.
        os.symlink(server.workdir / "outside.txt", server.workdir / "static" / "escape.txt")
        yield server


@contextmanager
def client(server: ServerProcess) -> Iterator[RestClient]:
    rest = RestClient(server.base_url, timeout=T)
    try:
        yield rest
    finally:
        rest.close()


@pytest.fixture(scope="module")
def http(ui: ServerProcess) -> Iterator[RestClient]:
    with client(ui) as rest:
        yield rest


# -- with static content (default ./static) -------------------------------------------------


@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/", "//dashboard/", "/dashboard/index.html"])
@pytest.mark.parametrize("key", [None, "bogus-" + secrets.token_hex(6), MANAGE], ids=["none", "bogus", "manage"])
def test_index_is_served_to_anyone_and_not_framable(http: RestClient, path: str, key: str | None) -> None:
    response = get(http, path, key)
    assert response.status == 200
    assert response.body == INDEX
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["x-frame-options"] == "DENY"


def test_other_files_are_served_with_their_type(http: RestClient) -> None:
    response = get(http, "/dashboard/assets/app.js")
    assert response.status == 200
    assert response.body == APP_JS
    assert "javascript" in response.headers["content-type"]


def test_head_is_answered_like_get(http: RestClient) -> None:
    response = get(http, "/dashboard", method="HEAD")
    assert response.status == 200
    assert response.body == b""


@pytest.mark.parametrize("path", [
    "/dashboard/../collections",  # observed on v1.18.3 (spec §9b)
    "/dashboard/qsc-no-such-file",
    "/dashboard/../../collections",
    "/dashboard/assets/../../outside.txt",
    "/dashboard/.hidden",
    "/dashboard/escape.txt",
    "/dashboard/assets%2f..%2findex.html",
])
@pytest.mark.parametrize("key", [None, MANAGE], ids=["none", "manage"])
def test_paths_naming_no_file_get_an_empty_404(http: RestClient, path: str, key: str | None) -> None:
    response = get(http, path, key)
    assert response.status == 404
    assert response.body == b""
    assert response.headers["x-frame-options"] == "DENY"


def test_ui_methods_other_than_get_are_refused_by_the_file_handler(http: RestClient) -> None:
    assert get(http, "/dashboard", method="POST").status == 405
    # ...and never reach the API: the collection survives a DELETE sent through the UI's path.
    name = "c_" + secrets.token_hex(4)
    assert http.request("PUT", f"/collections/{name}", json={"vectors": {"size": 4, "distance": "Dot"}},
                        headers=[("api-key", MANAGE)]).status == 200
    try:
        assert get(http, f"/dashboard/../collections/{name}", method="DELETE").status == 405
        assert http.request("GET", f"/collections/{name}", headers=[("api-key", MANAGE)]).status == 200
    finally:
        http.request("DELETE", f"/collections/{name}", headers=[("api-key", MANAGE)])


@pytest.mark.parametrize(("path", "no_key", "with_key"), [
    ("/dashboard%2f..%2fcollections", 401, 404),  # observed on v1.18.3 (spec §9b)
    ("/dashboardX", 401, 404),  # an actix scope matches whole segments
    ("/collections", 401, 200),
    ("/healthz", 200, 200),
])
def test_the_whitelist_covers_the_ui_scope_only(http: RestClient, path: str, no_key: int, with_key: int) -> None:
    assert get(http, path).status == no_key
    assert get(http, path, MANAGE).status == with_key


def test_api_responses_are_not_marked(http: RestClient) -> None:
    assert "x-frame-options" not in get(http, "/healthz").headers


# -- without it ---------------------------------------------------------------------------------


def assert_no_ui(server: ServerProcess) -> None:
    with client(server) as http:
        for path in ("/dashboard", "/dashboard/index.html", "/dashboard/../collections"):
            assert get(http, path).status == 401, path
            refused = get(http, path, MANAGE)
            assert refused.status == 404, path
            assert "x-frame-options" not in refused.headers


def test_no_static_directory_means_no_ui_and_no_whitelist_entry() -> None:
    with running_server(config(), grpc=False) as server:
        assert_no_ui(server)
        assert "Static content folder for Web UI './static' does not exist" in server.logs()


def test_enable_static_content_false_turns_it_off() -> None:
    with running_server(config(enable_static_content=False), grpc=False, files=ui_files()) as server:
        assert_no_ui(server)
        assert "Static content folder" not in server.logs()


def test_enable_static_content_false_from_the_environment() -> None:
    env = {"QDRANT__SERVICE__ENABLE_STATIC_CONTENT": "false"}
    with running_server(config(), grpc=False, files=ui_files(), env=env) as server:
        assert_no_ui(server)


def test_static_content_dir_pointing_nowhere_turns_it_off() -> None:
    with running_server(config(static_content_dir="./qsc-no-such-dir"), grpc=False, files=ui_files()) as server:
        assert_no_ui(server)


def test_static_content_dir_elsewhere_is_served() -> None:
    files = {"web/index.html": INDEX}
    with running_server(config(static_content_dir="web"), grpc=False, files=files) as server, \
            client(server) as http:
        assert get(http, "/dashboard").body == INDEX


# -- versions (spec §9) -------------------------------------------------------------------------


def test_before_v1_18_2_the_whitelist_is_a_raw_prefix() -> None:
    with running_server(config("1.18.1"), grpc=False, files=ui_files()) as server, \
            client(server) as http:
        assert get(http, "/dashboard").body == INDEX
        # Skipped auth by prefix and fell through to 404 (spec §2.5): no data either way.
        assert get(http, "/dashboardX").status == 404
        assert get(http, "/dashboard%2f..%2fcollections").status == 404
        assert get(http, "/dashboard/../collections").status == 404
        assert get(http, "/collections").status == 401


def test_before_v1_9_7_no_frame_options_and_before_v1_3_0_no_ui() -> None:
    with running_server(config("1.9.6"), grpc=False, files=ui_files()) as server, \
            client(server) as http:
        served = get(http, "/dashboard")
        assert served.body == INDEX
        assert "x-frame-options" not in served.headers
    with running_server(config("1.2.0"), grpc=False, files=ui_files()) as server, \
            client(server) as http:
        assert get(http, "/dashboard").status == 403  # no UI yet: refused as any path (403 before v1.9.0)


# -- settings and profiles ------------------------------------------------------------------------


def test_settings_defaults_and_overrides(tmp_path: Path) -> None:
    default = load_settings(None, environ={}, cwd=tmp_path)
    assert default.service.enable_static_content is True
    assert default.service.static_content_dir == "./static"
    env = {"QDRANT__SERVICE__ENABLE_STATIC_CONTENT": "false", "QDRANT__SERVICE__STATIC_CONTENT_DIR": "/srv/ui"}
    changed = load_settings(None, environ=env, cwd=tmp_path)
    assert changed.service.enable_static_content is False
    assert changed.service.static_content_dir == "/srv/ui"


def test_profiles_render_the_ui_on_and_off_in_qdrants_own_keys(tmp_path: Path) -> None:
    import yaml

    pki = RunPKI.create(tmp_path)
    keys = Credentials(api_key="k-" + secrets.token_hex(8))
    with_ui = render(profile("dashboard"), pki, keys)
    assert with_ui.files["static/index.html"][0] == WEB_UI_INDEX
    assert "enable_static_content" not in with_ui.config_text  # Qdrant's default: ./static, on
    without = render(profile("api-key"), pki, keys)
    assert not any(rel.startswith("static/") for rel in without.files)
    assert yaml.safe_load(without.config_text)["service"]["enable_static_content"] is False

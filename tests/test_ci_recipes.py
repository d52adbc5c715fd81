"""The CI recipes in docs/ci/: they parse, use only options the suite has, and the Actions one works.

The GitHub Actions recipe's ``run:`` steps are executed here in order, as a
runner would (bash -eo pipefail, ``$GITHUB_ENV`` carried to later steps,
``$GITHUB_STEP_SUMMARY`` set), against the reference server started with API
keys and TLS from a CA of our own. Steps that call actions (checkout,
upload-sarif) are not run; the install step is not either, since the suite is
already installed in this venv.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from qdrant_conformance.fixtures.target import FLAGS, OPTIONS
from tests.server_helpers import running_server

ROOT = Path(__file__).resolve().parents[1]
ACTIONS = ROOT / "docs" / "ci" / "github-actions.yml"
HELM = ROOT / "docs" / "ci" / "helm-test-hook.yaml"

SUITE_FLAGS = {flag for flag, _ in OPTIONS.values()} | {flag for flag, _ in FLAGS.values()} | {"--target-file"}
SUITE_ENV = {f"QSC_{dest.upper()}" for dest in (*OPTIONS, *FLAGS, "target_file")}
PYTEST_FLAGS = {"-p", "-q"}
KNOWN_ACTIONS = {"actions/checkout", "actions/setup-python", "github/codeql-action/upload-sarif",
                 "actions/upload-artifact"}
_EXPR = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _suite_args(tokens: list[str]) -> list[str]:
    """The arguments after ``python -m pytest``."""
    for n in range(len(tokens) - 2):
        if tokens[n:n + 3] == ["python", "-m", "pytest"]:
            return tokens[n + 3:]
    raise AssertionError(f"no 'python -m pytest' in {tokens}")


def _check_args(args: list[str]) -> None:
    assert args[0] == "suites/", args
    for token in args[1:]:
        if token.startswith("-"):
            assert token in SUITE_FLAGS | PYTEST_FLAGS, f"option {token} does not exist"


def _steps() -> list[dict[str, Any]]:
    jobs = _load(ACTIONS)["jobs"]
    (job,) = jobs.values()
    steps: list[dict[str, Any]] = job["steps"]
    return steps


# ---------------------------------------------------------------------------
# both recipes parse and use only options that exist


def test_actions_recipe_parses_and_uses_only_existing_options() -> None:
    workflow = _load(ACTIONS)
    # PyYAML reads the bare key `on` as True (YAML 1.1); GitHub reads it as "on".
    assert set(workflow[True]) >= {"workflow_dispatch"}
    assert workflow["permissions"]["security-events"] == "write"
    (job,) = workflow["jobs"].values()
    for name in job["env"]:
        assert name in SUITE_ENV, f"{name} is not an option of the suite"
    steps = job["steps"]
    uses = {step["uses"].split("@")[0] for step in steps if "uses" in step}
    assert uses <= KNOWN_ACTIONS, uses - KNOWN_ACTIONS
    suite = next(step for step in steps if step.get("id") == "suite")
    _check_args(_suite_args(shlex.split(suite["run"])))
    for step in steps:
        script = step.get("run", "")
        # Expressions inside a script are a script-injection risk; values come in through env.
        assert "${{" not in script, step.get("name")
        for name in re.findall(r"\bQSC_[A-Z_]+", script):
            assert name in SUITE_ENV, f"{name} is not an option of the suite"
    upload = next(step for step in steps if step.get("uses", "").startswith("github/codeql-action/upload-sarif"))
    assert upload["with"]["sarif_file"] == "${{ runner.temp }}/qsc-reports"
    assert "--report-dir \"$RUNNER_TEMP/qsc-reports\"" in suite["run"]
    assert upload["if"] == "${{ !cancelled() }}", "the SARIF must be uploaded when the gate fails too"


def test_helm_hook_parses_and_uses_only_existing_options() -> None:
    job = _load(HELM)
    assert job["kind"] == "Job" and job["apiVersion"] == "batch/v1"
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "test"
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] == 0
    (container,) = pod["containers"]
    args = _suite_args([*container["command"], *container["args"]])
    _check_args(args)
    options = {token: args[n + 1] for n, token in enumerate(args[:-1]) if token.startswith("--")}
    assert options["--target"] == "external"
    for env in container.get("env", []):
        assert env["name"] in SUITE_ENV, env["name"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    keys = volumes["keys"]["secret"]
    assert keys["defaultMode"] == 0o400 and mounts["keys"]["readOnly"] is True
    mounted = {f"{mounts['keys']['mountPath']}/{item['path']}" for item in keys["items"]}
    assert {options["--api-key-file"], options["--read-only-key-file"]} <= mounted
    assert options["--ca-cert"].startswith(mounts["ca"]["mountPath"] + "/")
    assert options["--rest-url"].startswith("https://") and ".svc:6333" in options["--rest-url"]


# ---------------------------------------------------------------------------
# the Actions recipe's commands, run locally against the reference server


def _substitute(text: str, values: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        expression = match.group(1)
        assert expression in values, f"the test does not know ${{{{ {expression} }}}}"
        return values[expression]

    return _EXPR.sub(one, text)


def _read_github_env(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            out[key] = value
    return out


def _run_steps(tmp_path: Path, values: dict[str, str]) -> tuple[dict[str, subprocess.CompletedProcess[str]], Path]:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "qsc").symlink_to(ROOT)  # the "Check out the suite" step
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    github_env = tmp_path / "github-env"
    github_env.touch()
    step_summary = tmp_path / "step-summary.md"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("QSC_", "PYTEST_XDIST", "QDRANT", "GITHUB_"))}
    base.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}",
        TMPDIR=str(tmp_path),
        RUNNER_TEMP=str(runner_temp),
        GITHUB_WORKSPACE=str(workspace),
        GITHUB_ENV=str(github_env),
        GITHUB_STEP_SUMMARY=str(step_summary),
    )
    (job,) = _load(ACTIONS)["jobs"].values()
    job_env = {k: _substitute(str(v), values) for k, v in job["env"].items()}
    done = {}
    for step in job["steps"]:
        if "run" not in step:
            continue
        if step.get("id") == "install":
            assert step["run"].startswith("python -m pip install") and step["run"].endswith("./qsc")
            continue
        env = {**base, **job_env, **_read_github_env(github_env)}
        env.update({k: _substitute(str(v), values) for k, v in step.get("env", {}).items()})
        cwd = workspace / step.get("working-directory", ".")
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
        )
        done[step.get("id") or step["name"]] = proc
        if proc.returncode != 0 and step.get("id") != "suite":
            raise AssertionError(f"step {step['name']!r} failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return done, runner_temp


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def test_actions_recipe_commands_pass_against_the_reference_server(tmp_path: Path, ca: trustme.CA) -> None:
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    files = {
        "tls/cert.pem": b"".join(blob.bytes() for blob in leaf.cert_chain_pems),
        "tls/key.pem": leaf.private_key_pem.bytes(),
        "tls/cacert.pem": ca.cert_pem.bytes(),
    }
    manage, read_only = "qsc-ci-m-" + os.urandom(16).hex(), "qsc-ci-r-" + os.urandom(16).hex()
    config = {"service": {"api_key": manage, "read_only_api_key": read_only, "enable_tls": True}}
    ready = ssl.create_default_context()
    ca.configure_trust(ready)
    with running_server(config, files=files, ready_context=ready) as srv:
        values = {
            "vars.QDRANT_REST_URL": srv.base_url,
            "vars.QDRANT_GRPC_URL": srv.grpc_target,
            "vars.QDRANT_PROFILE": "tls",
            "secrets.QDRANT_API_KEY": manage,
            "secrets.QDRANT_READ_ONLY_API_KEY": read_only,
            "secrets.QDRANT_ALT_API_KEY": "",  # not configured: the step must cope with an unset secret
            "secrets.QDRANT_CA_CERT": ca.cert_pem.bytes().decode(),
        }
        done, runner_temp = _run_steps(tmp_path, values)
    suite = done["suite"]
    output = suite.stdout + suite.stderr
    assert suite.returncode == 0, output[-4000:]
    assert "verdict: SECURE" in output and "severity >= high" in output, output[-2000:]
    (run_dir,) = (runner_temp / "qsc-reports").iterdir()
    names = {p.name for p in run_dir.iterdir()}
    assert {"results.sarif", "summary.md", "results.json", "junit.xml", "report.html"} <= names
    results = json.loads((run_dir / "results.json").read_text())
    counts = results["counts"]
    assert counts["pass"] >= 10 and counts["fail"] == counts["error"] == 0, counts
    assert results["target"]["rest_url"] == srv.base_url and results["severity_threshold"] == "high"
    summary = (tmp_path / "step-summary.md").read_text()
    assert summary.startswith("## Qdrant security conformance") and "**SECURE**" in summary
    # The clean-up step removed the key files; no key reached the reports or the log.
    assert not (runner_temp / "qsc-credentials").exists()
    for text in [output, summary, *(p.read_text() for p in run_dir.iterdir())]:
        assert manage not in text and read_only not in text

"""No JWT or secret in anything a JWT run prints or writes (issue 12; GUIDE "Secrets").

The JWT family mints hundreds of tokens (every one registered with the
redactor as it is minted) and signs them with the deployment's keys. One run of
the whole family, with ``tests.key_spy`` recording every secret the run
registered, must leave none of them, and no JWT-shaped string at all, in the
terminal output or any report file (results.json, junit.xml, report.html,
results.sarif, summary.md).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.test_harness_run import run_suite

JWT_FILES = ["suites/test_jwt_tokens.py", "suites/test_jwt_scope.py", "suites/test_jwt_sweep.py",
             "suites/test_jwt_audit.py"]
#: A compact JWS, whoever minted it: header and claims are base64url JSON objects (``eyJ`` = ``{"``).
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
REPORT_FILES = {"results.json", "junit.xml", "report.html", "results.sarif", "summary.md"}


def test_jwt_run_prints_and_writes_no_token_or_secret(tmp_path: Path) -> None:
    spy = tmp_path / "secrets.json"
    proc = run_suite([*JWT_FILES, "-p", "tests.key_spy"], tmp_path, env={"QSC_SPY_FILE": str(spy)}, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    recorded = json.loads(spy.read_text())
    minted = sum(1 for s in recorded if JWT_SHAPE.fullmatch(s))  # a count only: assertions never show tokens
    # The check means something only if the run minted tokens and registered them as it did
    # (equal claims minted in the same second give the same token, so distinct tokens number fewer).
    assert minted >= 30, f"only {minted} tokens were registered: the minting path bypasses the redactor"
    (run_dir,) = (tmp_path / "reports").iterdir()
    assert {p.name for p in run_dir.iterdir()} >= REPORT_FILES
    texts = [("terminal output", output)]
    texts += [(str(p.relative_to(tmp_path)), p.read_text(errors="replace"))
              for p in (tmp_path / "reports").rglob("*") if p.is_file()]
    secrets = [s for s in recorded if len(s) >= 8]
    leaks = sorted({where for where, text in texts if any(s in text for s in secrets)})
    assert not leaks, f"a token, key or secret appears in: {leaks}"
    shaped = sorted({where for where, text in texts if JWT_SHAPE.search(text)})
    assert not shaped, f"a JWT-shaped string appears in: {shaped}"

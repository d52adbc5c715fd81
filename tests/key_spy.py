"""A pytest plugin for self-tests: writes the run's registered secrets to ``$QSC_SPY_FILE``.

Loaded only by ``tests/test_harness_run.py`` (``-p tests.key_spy``) so the test
can search everything the run printed and wrote for the keys it generated.
The file is 0600 in the test's temporary directory.
"""

from __future__ import annotations

import json
import os

import pytest


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from fixtures.secrets import REDACTOR

    path = os.environ.get("QSC_SPY_FILE")
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(REDACTOR.secrets(), fh)

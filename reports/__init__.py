"""Verdicts and reports for a qdrant-security-conformance run.

The plugin builds a :class:`RunResult`, scrubs it (:func:`reports.scrub.scrub_run`),
then calls :func:`compute_verdicts` once and hands that run and its verdicts to
:func:`write_all`, :func:`summary_lines` and :func:`exit_code`. See
``reports/README.md`` for the file formats and the verdict rules.

The names below are loaded on first use: the harness imports small modules of
this package (``reports.model``, ``reports.redaction``, ``reports.exit_codes``)
in every pytest process, and must not pay for the writers and the JSON-schema
validator there.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reports.baseline import BaselineStatus, load_baseline
    from reports.errors import ReportInputError
    from reports.gate import exit_code, gate_holds
    from reports.model import BaselineEntry, Requirement, RunResult, TestRecord
    from reports.results_json import load_results
    from reports.summary import summary_lines
    from reports.verdicts import Verdict, Verdicts, compute_verdicts
    from reports.waivers import load_all_waivers, load_waivers
    from reports.writers import write_all

_HOME = {
    "BaselineEntry": "reports.model",
    "BaselineStatus": "reports.baseline",
    "ReportInputError": "reports.errors",
    "Requirement": "reports.model",
    "RunResult": "reports.model",
    "TestRecord": "reports.model",
    "Verdict": "reports.verdicts",
    "Verdicts": "reports.verdicts",
    "compute_verdicts": "reports.verdicts",
    "exit_code": "reports.gate",
    "gate_holds": "reports.gate",
    "load_all_waivers": "reports.waivers",
    "load_baseline": "reports.baseline",
    "load_results": "reports.results_json",
    "load_waivers": "reports.waivers",
    "summary_lines": "reports.summary",
    "write_all": "reports.writers",
}

__all__ = [
    "BaselineEntry",
    "BaselineStatus",
    "ReportInputError",
    "Requirement",
    "RunResult",
    "TestRecord",
    "Verdict",
    "Verdicts",
    "compute_verdicts",
    "exit_code",
    "gate_holds",
    "load_all_waivers",
    "load_baseline",
    "load_results",
    "load_waivers",
    "summary_lines",
    "write_all",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'reports' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value

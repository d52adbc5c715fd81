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
    from qdrant_conformance.reports.baseline import BaselineStatus, load_baseline
    from qdrant_conformance.reports.errors import ReportInputError
    from qdrant_conformance.reports.gate import exit_code, gate_holds
    from qdrant_conformance.reports.model import BaselineEntry, Requirement, RunResult, TestRecord
    from qdrant_conformance.reports.results_json import load_results
    from qdrant_conformance.reports.summary import summary_lines
    from qdrant_conformance.reports.verdicts import Verdict, Verdicts, compute_verdicts
    from qdrant_conformance.reports.waivers import load_all_waivers, load_waivers
    from qdrant_conformance.reports.writers import write_all

_HOME = {
    "BaselineEntry": "qdrant_conformance.reports.model",
    "BaselineStatus": "qdrant_conformance.reports.baseline",
    "ReportInputError": "qdrant_conformance.reports.errors",
    "Requirement": "qdrant_conformance.reports.model",
    "RunResult": "qdrant_conformance.reports.model",
    "TestRecord": "qdrant_conformance.reports.model",
    "Verdict": "qdrant_conformance.reports.verdicts",
    "Verdicts": "qdrant_conformance.reports.verdicts",
    "compute_verdicts": "qdrant_conformance.reports.verdicts",
    "exit_code": "qdrant_conformance.reports.gate",
    "gate_holds": "qdrant_conformance.reports.gate",
    "load_all_waivers": "qdrant_conformance.reports.waivers",
    "load_baseline": "qdrant_conformance.reports.baseline",
    "load_results": "qdrant_conformance.reports.results_json",
    "load_waivers": "qdrant_conformance.reports.waivers",
    "summary_lines": "qdrant_conformance.reports.summary",
    "write_all": "qdrant_conformance.reports.writers",
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

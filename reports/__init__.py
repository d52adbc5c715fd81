"""Verdicts and reports for a qdrant-security-conformance run.

The plugin builds a :class:`RunResult`, then calls :func:`compute_verdicts`,
:func:`write_all`, :func:`summary_lines` and :func:`exit_code`. See
``reports/README.md`` for the file formats and the verdict rules.
"""

from reports.baseline import BaselineStatus, load_baseline
from reports.errors import ReportInputError
from reports.model import BaselineEntry, Requirement, RunResult, TestRecord
from reports.results_json import load_results
from reports.summary import summary_lines
from reports.verdicts import Verdict, Verdicts, compute_verdicts, exit_code, gate_holds
from reports.waivers import load_all_waivers, load_waivers
from reports.writers import write_all

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

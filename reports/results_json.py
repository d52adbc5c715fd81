"""``results.json``: the machine-readable record of a run, and reading it back.

The document is the :class:`~reports.model.RunResult` plus everything derived
from it (verdicts, gate, counts, the requirement x protocol matrix), so a
consumer never has to re-implement the verdict rules. Its shape is fixed by
``results.schema.json``; ``load_results`` refuses any file that does not match.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

from qdrant_conformance.reports.errors import ReportInputError
from qdrant_conformance.reports.findings import findings, observations
from qdrant_conformance.reports.gate import exit_code, gate_holds, outcome_counts
from qdrant_conformance.reports.model import RunResult
from qdrant_conformance.reports.scrub import guard
from qdrant_conformance.reports.verdicts import Verdicts

SCHEMA_PATH = Path(__file__).with_name("results.schema.json")


@functools.cache
def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


def results_document(run: RunResult, verdicts: Verdicts) -> dict[str, Any]:
    """The JSON object written to ``results.json`` (``run`` must already be scrubbed)."""
    doc = run.to_dict()
    doc["verdicts"] = {"secure": verdicts.secure.to_dict(), "compatible": verdicts.compatible.to_dict()}
    doc["gate_result"] = {
        "gate": run.gate,
        "strict": run.strict,
        "holds": gate_holds(verdicts, run.gate),
        "exit_code": exit_code(run, verdicts),
        "severity_threshold": run.severity_threshold,
    }
    doc["counts"] = outcome_counts(run, verdicts)
    doc["matrix"] = [result.to_dict() for result in verdicts.results]
    doc["baseline_status"] = [status.to_dict() for status in verdicts.baseline]
    doc["unattributed"] = [record.nodeid for record in verdicts.unattributed]
    doc["findings"] = [finding.to_dict() for finding in findings(verdicts)]
    doc["observations"] = [item.to_dict() for item in observations(verdicts)]
    return doc


def render_results_json(run: RunResult, verdicts: Verdicts) -> str:
    text = json.dumps(results_document(run, verdicts), indent=2, ensure_ascii=False, default=str)
    return guard(text) + "\n"


def validate_document(doc: object, where: str) -> None:
    """Raise :class:`ReportInputError` naming the first schema violation in ``doc``."""
    validator = jsonschema.Draft202012Validator(load_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is not None:
        path = "/".join(str(part) for part in error.absolute_path) or "(top level)"
        raise ReportInputError(f"{where} does not match results.schema.json at {path}: {error.message}")


def load_results(path: str | Path) -> RunResult:
    """Read a ``results.json`` back into a :class:`RunResult`, checking it against the schema."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ReportInputError(f"{where}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ReportInputError(f"cannot read {where}: {reason}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportInputError(f"{where} is not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    validate_document(doc, where)
    return RunResult.from_dict(doc)

"""``write_all``: the one call that turns a finished run into its report files."""

from __future__ import annotations

from pathlib import Path

from qdrant_conformance.reports.html_report import render_html
from qdrant_conformance.reports.junit import render_junit
from qdrant_conformance.reports.model import RunResult
from qdrant_conformance.reports.results_json import render_results_json
from qdrant_conformance.reports.sarif import render_sarif
from qdrant_conformance.reports.scrub import scrub_run
from qdrant_conformance.reports.summary_md import render_summary_md
from qdrant_conformance.reports.verdicts import Verdicts, compute_verdicts


def write_all(run: RunResult, verdicts: Verdicts | None, out_dir: str | Path) -> dict[str, Path]:
    """Write ``results.json``, ``junit.xml``, ``report.html``, ``results.sarif`` and ``summary.md`` into ``out_dir``.

    No writer ever sees an unredacted string: a run that :func:`~reports.scrub.scrub_run`
    has not scrubbed is scrubbed here, and its verdicts are then computed from the
    scrubbed copy (``verdicts`` is not used for it). The plugin scrubs first and
    passes the verdicts of that scrubbed run, so a run's verdicts are computed once;
    they must be ``compute_verdicts(run)`` of this very run. Returns the written
    paths keyed ``results``, ``junit``, ``html``, ``sarif`` and ``summary``.
    """
    if verdicts is None or not run.scrubbed:
        run = scrub_run(run)
        verdicts = compute_verdicts(run)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "results": (out / "results.json", render_results_json(run, verdicts)),
        "junit": (out / "junit.xml", render_junit(run, verdicts)),
        "html": (out / "report.html", render_html(run, verdicts)),
        "sarif": (out / "results.sarif", render_sarif(run, verdicts)),
        "summary": (out / "summary.md", render_summary_md(run, verdicts)),
    }
    written: dict[str, Path] = {}
    for key, (path, text) in files.items():
        # Write beside and rename, so a CI job never picks up a half-written report.
        partial = path.with_name(path.name + ".partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
        written[key] = path
    return written

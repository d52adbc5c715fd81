"""``write_all``: the one call that turns a finished run into its report files."""

from __future__ import annotations

from pathlib import Path

from reports.html_report import render_html
from reports.junit import render_junit
from reports.model import RunResult
from reports.results_json import render_results_json
from reports.sarif import render_sarif
from reports.scrub import scrub_run
from reports.summary_md import render_summary_md
from reports.verdicts import Verdicts, compute_verdicts


def write_all(run: RunResult, verdicts: Verdicts | None, out_dir: str | Path) -> dict[str, Path]:
    """Write ``results.json``, ``junit.xml``, ``report.html``, ``results.sarif`` and ``summary.md`` into ``out_dir``.

    The run is scrubbed of registered secrets first and the verdicts are
    derived again from the scrubbed run, so no writer ever sees an unredacted
    string. ``verdicts`` is accepted for symmetry with the plugin's flow and
    must agree with ``run``; passing ``None`` is fine. Returns the written
    paths keyed ``results``, ``junit``, ``html``, ``sarif`` and ``summary``.
    """
    clean = scrub_run(run)
    derived = compute_verdicts(clean)
    if verdicts is not None and (
        verdicts.secure.status != derived.secure.status or verdicts.compatible.status != derived.compatible.status
    ):
        raise ValueError("verdicts passed to write_all do not belong to this run")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "results": (out / "results.json", render_results_json(clean, derived)),
        "junit": (out / "junit.xml", render_junit(clean, derived)),
        "html": (out / "report.html", render_html(clean, derived)),
        "sarif": (out / "results.sarif", render_sarif(clean, derived)),
        "summary": (out / "summary.md", render_summary_md(clean, derived)),
    }
    written: dict[str, Path] = {}
    for key, (path, text) in files.items():
        # Write beside and rename, so a CI job never picks up a half-written report.
        partial = path.with_name(path.name + ".partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
        written[key] = path
    return written

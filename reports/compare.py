"""Merge several runs into one compatibility matrix: ``compare.html`` and ``compare.md``.

    python -m reports.compare RESULTS.json [RESULTS.json ...] -o OUT_DIR

Each input is a ``results.json`` checked against ``results.schema.json``. Rows
are requirements (the union of the runs' catalogs), columns are runs, a cell is
the requirement's outcome in that run; rows where the runs disagree are marked.
Bad input prints one ``qsc: error: ...`` line and exits 4.
"""

from __future__ import annotations

import argparse
import html
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from reports.errors import ReportInputError
from reports.html_style import VERDICT_CLASS, badge, e, page
from reports.labels import run_label
from reports.markdown import md, md_table
from reports.model import NOT_RUN, Requirement, RunResult
from reports.results_json import load_results
from reports.scrub import guard, scrub_run
from reports.verdicts import Verdicts, compute_verdicts

EXIT_BAD_INPUT = 4
#: A requirement the run's catalog does not have (an older or newer suite).
ABSENT = "n/a"
ACCEPTED_SUFFIX = " (accepted)"


@dataclass(frozen=True)
class ComparedRun:
    run: RunResult
    verdicts: Verdicts
    label: str
    source: Path


@dataclass(frozen=True)
class Row:
    requirement: Requirement
    cells: list[str]

    @property
    def differs(self) -> bool:
        # A baseline changes the gate, not what the target did: compare outcomes only.
        present = {cell.removesuffix(ACCEPTED_SUFFIX) for cell in self.cells if cell != ABSENT}
        return len(present) > 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"qsc: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _labels(runs: Sequence[RunResult]) -> list[str]:
    """Column headers; two runs of the same target still get distinct ones."""
    labels = [run_label(run) for run in runs]
    labels = [
        f"{label} ({run.run_id})" if labels.count(label) > 1 else label for label, run in zip(labels, runs, strict=True)
    ]
    return [f"{label} #{n}" if labels.count(label) > 1 else label for n, label in enumerate(labels, start=1)]


def load_runs(paths: Sequence[str | Path]) -> list[ComparedRun]:
    runs = [scrub_run(load_results(path)) for path in paths]
    return [
        ComparedRun(run, compute_verdicts(run), label, Path(path))
        for run, label, path in zip(runs, _labels(runs), paths, strict=True)
    ]


def _cell(compared: ComparedRun, requirement_id: str) -> str:
    result = compared.verdicts.by_id().get(requirement_id)
    if result is None:
        return ABSENT
    if result.accepted:
        return result.outcome + ACCEPTED_SUFFIX
    return result.outcome


def build_rows(runs: Sequence[ComparedRun]) -> list[Row]:
    """One row per requirement in any run's catalog, in first-seen catalog order."""
    order: dict[str, Requirement] = {}
    for compared in runs:
        for req in compared.run.requirements:
            order.setdefault(req.id, req)
    return [Row(req, [_cell(c, rid) for c in runs]) for rid, req in order.items()]


# ---------------------------------------------------------------------------
# Markdown


_md_table = md_table


def _md_rows(rows: list[Row], runs: Sequence[ComparedRun]) -> list[list[str]]:
    return [
        [
            "≠" if row.differs else "",
            f"**{md(row.requirement.id)}** {md(row.requirement.text)}",
            md(row.requirement.kind),
            md(row.requirement.level),
            *[md(cell) for cell in row.cells],
        ]
        for row in rows
    ]


def render_markdown(runs: Sequence[ComparedRun], rows: list[Row]) -> str:
    differing = [row for row in rows if row.differs]
    lines = ["# Qdrant security conformance: comparison", ""]
    lines += _md_table(
        ["Run", "Target", "Secure", "Compatible", "Tests", "Run ID"],
        [
            [
                str(n),
                md(c.label),
                md(c.verdicts.secure.headline),
                md(c.verdicts.compatible.headline),
                str(len(c.run.records)),
                md(c.run.run_id),
            ]
            for n, c in enumerate(runs, start=1)
        ],
    )
    lines += ["", f"{len(differing)} of {len(rows)} requirements differ between the runs (marked ≠).", ""]
    header = ["≠", "Requirement", "Kind", "Level", *[md(c.label) for c in runs]]
    if differing:
        lines += ["## Where the runs differ", ""]
        lines += _md_table(header, _md_rows(differing, runs))
        lines.append("")
    lines += ["## All requirements", ""]
    lines += _md_table(header, _md_rows(rows, runs))
    lines += [
        "",
        f"Cells: pass, fail, warning, error, unsupported, disabled, {NOT_RUN} (no test), "
        f"{ABSENT} (not in that run's catalog); '(accepted)' marks a baselined deviation.",
    ]
    return guard("\n".join(lines) + "\n", lambda s: s.replace("<", "&lt;").replace(">", "&gt;"))


# ---------------------------------------------------------------------------
# HTML


def _html_cell(cell: str) -> str:
    if cell == ABSENT:
        return f'<td class="cell o-none" title="not in this run\'s catalog">{e(ABSENT)}</td>'
    outcome = cell.removesuffix(ACCEPTED_SUFFIX)
    return f'<td class="cell">{badge(outcome, cell)}</td>'


def _html_rows(rows: list[Row]) -> str:
    out = []
    for row in rows:
        req = row.requirement
        cls = ' class="differs"' if row.differs else ""
        mark = "≠" if row.differs else ""
        out.append(
            f"<tr{cls}><td class='mark'>{mark}</td><td><div class='rid mono'>{e(req.id)}</div>"
            f"<div class='rtext'>{e(req.text)}</div></td><td class='meta'>{e(req.kind)}</td>"
            f"<td><span class='tag{' must' if req.level == 'MUST' else ''}'>{e(req.level)}</span></td>"
            f"{''.join(_html_cell(c) for c in row.cells)}</tr>"
        )
    return "".join(out)


def render_html(runs: Sequence[ComparedRun], rows: list[Row]) -> str:
    differing = [row for row in rows if row.differs]
    head = "<th></th><th>Requirement</th><th>Kind</th><th>Level</th>" + "".join(f"<th>{e(c.label)}</th>" for c in runs)
    run_rows = "".join(
        f"<tr><td class='mono'>{n}</td><td>{e(c.label)}<div class='meta'>{e(c.source.name)} · "
        f"{e(c.run.run_id)}</div></td>"
        f"<td><span class='verdict-chip {VERDICT_CLASS[c.verdicts.secure.status]}'>"
        f"{e(c.verdicts.secure.headline)}</span></td>"
        f"<td><span class='verdict-chip {VERDICT_CLASS[c.verdicts.compatible.status]}'>"
        f"{e(c.verdicts.compatible.headline)}</span></td><td>{len(c.run.records)}</td></tr>"
        for n, c in enumerate(runs, start=1)
    )
    diff_section = ""
    if differing:
        diff_section = (
            "<h2>Where the runs differ</h2>"
            f'<table class="grid" id="differences"><thead><tr>{head}</tr></thead>'
            f"<tbody>{_html_rows(differing)}</tbody></table>"
        )
    body = (
        '<main><div class="eyebrow">Qdrant security conformance comparison</div>'
        f"<h1>{len(runs)} runs, {len(rows)} requirements</h1>"
        f'<p class="sub">{len(differing)} of {len(rows)} requirements differ between the runs '
        "(highlighted, marked ≠).</p>"
        '<h2>Runs</h2><table class="grid" id="runs"><thead><tr><th>#</th><th>Target</th><th>Secure</th>'
        f"<th>Compatible</th><th>Tests</th></tr></thead><tbody>{run_rows}</tbody></table>"
        f"{diff_section}"
        f'<h2>All requirements</h2><table class="grid" id="compare"><thead><tr>{head}</tr></thead>'
        f"<tbody>{_html_rows(rows)}</tbody></table>"
        f"<footer>{e(ABSENT)}: the requirement is not in that run's catalog. "
        "(accepted): a failure the run's baseline accepts.</footer></main>"
    )
    return guard(page("Qdrant security conformance comparison", body), html.escape)


def write_compare(paths: Sequence[str | Path], out_dir: str | Path) -> dict[str, Path]:
    """Load, compare and write; raises :class:`ReportInputError` on bad input."""
    runs = load_runs(paths)
    rows = build_rows(runs)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = {"html": out / "compare.html", "markdown": out / "compare.md"}
        written["html"].write_text(render_html(runs, rows), encoding="utf-8")
        written["markdown"].write_text(render_markdown(runs, rows), encoding="utf-8")
    except OSError as exc:
        raise ReportInputError(f"cannot write to {out}: {exc.strerror or exc}") from exc
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(
        prog="python -m reports.compare",
        description="Merge several results.json files into one requirement x run matrix.",
    )
    parser.add_argument("results", nargs="+", metavar="RESULTS.json", help="results.json of a run")
    parser.add_argument("-o", "--out", required=True, metavar="OUT_DIR", help="where compare.html/.md go")
    args = parser.parse_args(argv)
    try:
        written = write_compare(args.results, args.out)
    except ReportInputError as exc:
        print(f"qsc: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for path in written.values():
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

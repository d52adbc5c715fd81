"""Merge several runs into one compatibility matrix: ``compare.html`` and ``compare.md``.

    python -m reports.compare RESULTS.json [RESULTS.json ...] -o OUT_DIR

Each input is a ``results.json`` checked against ``results.schema.json``. Rows
are requirements (the union of the runs' catalogs), columns are runs, a cell is
the requirement's outcome in that run; rows where the runs disagree are marked.
``fleet.html`` turns it around for a platform team: one row per target, one
column per requirement family, each cell the worst severity of that target's
open findings in that family. Bad input prints one ``qsc: error: ...`` line and
exits 4.
"""

from __future__ import annotations

import argparse
import html
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from qdrant_conformance.reports.errors import ReportInputError
from qdrant_conformance.reports.exit_codes import ExitCode
from qdrant_conformance.reports.findings import findings
from qdrant_conformance.reports.html_style import SEVERITY_CLASS, VERDICT_CLASS, badge, e, page
from qdrant_conformance.reports.labels import run_label
from qdrant_conformance.reports.markdown import md, md_table
from qdrant_conformance.reports.model import NOT_RUN, Requirement, RunResult
from qdrant_conformance.reports.results_json import load_results
from qdrant_conformance.reports.scrub import guard, scrub_run
from qdrant_conformance.reports.verdicts import Verdicts, compute_verdicts

#: A requirement the run's catalog does not have (an older or newer suite).
ABSENT = "n/a"
ACCEPTED_SUFFIX = " (waived)"


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
        raise SystemExit(ExitCode.BAD_INPUT)


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
        f"Cells: pass, fail, warning, info, error, unsupported, disabled, {NOT_RUN} (no test), "
        f"{ABSENT} (not in that run's catalog); '(waived)' marks a failure an active waiver covers.",
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
        "(waived): a failure an active waiver of that run covers.</footer></main>"
    )
    return guard(page("Qdrant security conformance comparison", body), html.escape)


# ---------------------------------------------------------------------------
# fleet view

#: A family cell with no open finding: what it says depends on whether anything ran.
CLEAR = "clear"
NOTHING_RAN = "not run"


@dataclass(frozen=True)
class FleetCell:
    worst: str  # a severity, "unrated", CLEAR or NOTHING_RAN
    open: list[str]  # requirement IDs of open findings (failing, not waived)
    waived: int


def fleet_cell(compared: ComparedRun, family: str) -> FleetCell:
    rows = [r for r in compared.verdicts.results if r.requirement.family == family]
    found = [f for f in findings(compared.verdicts) if f.requirement.family == family]
    # Open = what breaks a verdict or shows a SHOULD finding; harness errors count (never a pass).
    open_ = [f for f in found if f.outcome != "waived"]
    waived = sum(1 for f in found if f.outcome == "waived")
    if open_:
        worst = open_[0].requirement.severity or "unrated"  # findings() sorts the most severe first
        return FleetCell(worst, [f.requirement.id for f in open_], waived)
    ran = any(r.outcome in ("pass", "fail", "warning", "info", "error") for r in rows)
    return FleetCell(CLEAR if ran else NOTHING_RAN, [], waived)


def render_fleet(runs: Sequence[ComparedRun]) -> str:
    families = list(dict.fromkeys(r.family for c in runs for r in c.run.requirements))
    head = "<th>Target</th><th>Secure</th>" + "".join(f"<th class='fam'>{e(f)}</th>" for f in families)
    rows = []
    for compared in runs:
        cells = []
        for family in families:
            cell = fleet_cell(compared, family)
            cls = SEVERITY_CLASS.get(cell.worst, "s-clear" if cell.worst == CLEAR else "s-unrated")
            title = ", ".join(cell.open) or ("no open finding" if cell.worst == CLEAR else "no test ran")
            note = f"<div class='meta'>{len(cell.open)} open</div>" if cell.open else ""
            if cell.waived:
                note += f"<div class='meta'>{cell.waived} waived</div>"
            cells.append(
                f"<td class='cell' title='{e(title)}' data-worst='{e(cell.worst)}'>"
                f"<span class='sev {cls}'>{e(cell.worst)}</span>{note}</td>"
            )
        verdict = compared.verdicts.secure
        rows.append(
            f"<tr><th scope='row'>{e(compared.label)}<div class='meta'>{e(compared.run.run_id)}</div></th>"
            f"<td><span class='verdict-chip {VERDICT_CLASS[verdict.status]}'>{e(verdict.headline)}</span></td>"
            f"{''.join(cells)}</tr>"
        )
    body = (
        '<main><div class="eyebrow">Qdrant security conformance fleet view</div>'
        f"<h1>{len(runs)} targets, {len(families)} requirement families</h1>"
        '<p class="sub">Each cell is the worst severity among the target\'s open findings (failures, warnings '
        "and errors not covered by an active waiver) in that family; clear means every test there held, "
        "not run means none ran.</p>"
        f'<table class="grid" id="fleet"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
        "<footer>Severity rubric: fixtures/catalog/README.md. Per-requirement detail: compare.html and each "
        "run's report.html.</footer></main>"
    )
    return guard(page("Qdrant security conformance fleet view", body), html.escape)


def write_compare(paths: Sequence[str | Path], out_dir: str | Path) -> dict[str, Path]:
    """Load, compare and write; raises :class:`ReportInputError` on bad input."""
    runs = load_runs(paths)
    rows = build_rows(runs)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = {"html": out / "compare.html", "markdown": out / "compare.md", "fleet": out / "fleet.html"}
        written["html"].write_text(render_html(runs, rows), encoding="utf-8")
        written["fleet"].write_text(render_fleet(runs), encoding="utf-8")
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
    parser.add_argument(
        "-o", "--out", required=True, metavar="OUT_DIR", help="where compare.html, compare.md and fleet.html go"
    )
    args = parser.parse_args(argv)
    try:
        written = write_compare(args.results, args.out)
    except ReportInputError as exc:
        print(f"qsc: error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    for path in written.values():
        print(path)
    return ExitCode.GATE_HOLDS


if __name__ == "__main__":
    raise SystemExit(main())

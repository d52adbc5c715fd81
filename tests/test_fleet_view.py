"""fleet.html from ``python -m reports.compare``: rows = targets, columns = families, cells = worst severity."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

from qdrant_conformance.reports import write_all
from qdrant_conformance.reports.compare import fleet_cell, load_runs
from qdrant_conformance.reports.demo import demo_run
from qdrant_conformance.reports.model import RunResult
from tests.test_report_html import _decode_png, _run_chromium, chromium  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[1]


def _clean(run: RunResult) -> RunResult:
    """The demo run with every failing record turned into a pass: a healthy target."""
    records = [
        dataclasses.replace(r, outcome="pass", reason="") if r.outcome in ("fail", "warning", "error") else r
        for r in run.records
    ]
    return dataclasses.replace(run, records=records, target={**run.target, "label": "qdrant-b (healthy)"})


def _write_runs(tmp_path: Path) -> list[Path]:
    demo = dataclasses.replace(demo_run(), target={**demo_run().target, "label": "qdrant-a (demo)"})
    paths = []
    for n, run in enumerate([demo, _clean(demo)]):
        paths.append(write_all(run, None, tmp_path / f"run{n}")["results"])
    return paths


def test_cells_are_the_worst_open_severity_per_family(tmp_path: Path) -> None:
    demo, healthy = load_runs(_write_runs(tmp_path))
    cells = {family: fleet_cell(demo, family) for family in ("AUTH", "AUTHZ", "HYG", "TLS", "CLUSTER", "ROT")}
    assert cells["AUTHZ"].worst == "high" and cells["AUTHZ"].open == ["AUTHZ-ANY-002"]
    assert cells["HYG"].worst == "medium"  # a SHOULD warning is an open finding too
    assert cells["TLS"].worst == "clear" and cells["TLS"].waived == 1  # its only failure is waived
    assert cells["ROT"].worst == "info"  # a harness error is never clear
    assert cells["CLUSTER"].worst == "not run"  # only disabled
    assert cells["AUTH"].worst == "clear"
    assert {fleet_cell(healthy, f).worst for f in ("AUTH", "AUTHZ", "HYG", "TLS")} == {"clear"}


def test_fleet_page_renders_in_headless_chromium(chromium: str, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "compare"
    proc = subprocess.run(
        [sys.executable, "-m", "qdrant_conformance.reports.compare", *map(str, _write_runs(tmp_path)), "-o", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    fleet = out / "fleet.html"
    assert str(fleet) in proc.stdout
    url = fleet.resolve().as_uri()

    dom = _run_chromium(chromium, tmp_path / "profile-dom", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr.decode(errors="replace")[-800:]
    rendered = dom.stdout.decode("utf-8", "replace")
    assert 'id="fleet"' in rendered and "<script" not in rendered
    body = rendered.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = body.split("<tr>")[1:]
    assert len(rows) == 2 and "qdrant-a (demo)" in rows[0] and "qdrant-b (healthy)" in rows[1]
    assert 'data-worst="high"' in rows[0] and 'data-worst="high"' not in rows[1]
    assert rows[1].count('data-worst="clear"') >= 4

    shot = tmp_path / "fleet.png"
    proc2 = _run_chromium(chromium, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,800", url)
    assert proc2.returncode == 0 and shot.exists(), proc2.stderr.decode(errors="replace")[-800:]
    width, height, pixels_rows, bpp = _decode_png(shot.read_bytes())
    assert (width, height) == (1280, 800)
    pixels = [tuple(row[x : x + 3]) for row in pixels_rows[::2] for x in range(0, width * bpp, bpp * 2)]
    # The "high" cell is white on #cf222e; "clear" cells are #1a7f37 on #dafbe1.
    assert any(r > 190 and g < 60 and b < 70 for r, g, b in pixels), "no high-severity red on the page"
    assert any(abs(r - 0xDA) < 8 and abs(g - 0xFB) < 8 and abs(b - 0xE1) < 8 for r, g, b in pixels), "no clear cell"

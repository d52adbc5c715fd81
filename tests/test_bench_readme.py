"""The README's performance table is what ``python -m bench --write-readme`` makes of ``bench/readme.json``.

Only the shape is compared (columns, one row per figure in the document's order, a reproducing command
on every row), never the numbers: those change with every run and every machine.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from bench.readme import (
    BEGIN,
    END,
    README,
    SNAPSHOT,
    ReadmeError,
    load,
    readme_section,
    replace_section,
    section,
    table_shape,
)
from bench.table import MARKDOWN_HEADERS


def _figure(fid: str, label: str, values: list[float | None], target: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": fid, "section": fid.split(".")[0], "label": label, "unit": "s", "values": values,
            "loads": [1.0] * len(values), "command": f"python -m bench -n 3 --only {fid.split('.')[0]}",
            "runs": [], "target": target, "status": "PASS" if target else "", "why": ""}


def _doc(figures: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schema": 1, "quick": False, "runs": 3, "started": "2026-12-02T10:00:00Z",
            "finished": "2026-12-02T10:09:00Z", "host": {"cpus": 2, "python": "3.11"}, "notes": [],
            "figures": figures, "run_log": [{"label": "full run, process", "command": "python -m pytest suites/"}]}


def test_readme_table_has_the_shape_of_the_saved_document() -> None:
    doc = load(SNAPSHOT)
    assert doc["figures"], "bench/readme.json holds no figures"
    in_readme = table_shape(readme_section(README.read_text(encoding="utf-8")))
    generated = table_shape(section(doc))
    assert in_readme[0] == generated[0] == list(MARKDOWN_HEADERS)
    assert in_readme[1] == generated[1], "the README's figures differ from bench/readme.json's: " \
        "run python -m bench --write-readme"
    assert in_readme[2] == generated[2]


def test_every_readme_figure_names_its_command() -> None:
    body = readme_section(README.read_text(encoding="utf-8"))
    rows = [line for line in body.splitlines() if line.startswith("|")][2:]
    assert rows
    for row in rows:
        assert row.rstrip(" |").endswith("`") and "`python -m bench" in row, row


def test_shape_follows_the_document_not_its_numbers() -> None:
    doc = _doc([_figure("full.process.wall", "full run | process", [30.0, 31.0, 32.5],
                        {"text": "≤ 45 s", "limit": 45.0, "absolute": False, "load_max": 2.0}),
                _figure("sweep.rest.fixed_s", "sweep fixed cost", [None, 1.0, 2.0])])
    readme = f"# x\n\n{BEGIN}\nold\n{END}\n\ntail\n"
    written = replace_section(readme, section(doc))
    assert written.endswith(f"{END}\n\ntail\n")
    shape = table_shape(readme_section(written))
    assert shape == (list(MARKDOWN_HEADERS), ["full run \\| process", "sweep fixed cost"],
                     [len(MARKDOWN_HEADERS)] * 2)

    other_numbers = copy.deepcopy(doc)
    other_numbers["figures"][0]["values"] = [90.0, 91.0, 99.0]
    assert table_shape(section(other_numbers)) == shape

    one_more = copy.deepcopy(doc)
    one_more["figures"].append(_figure("xdist.n2.wall", "with -n 2", [20.0, 21.0, 22.0]))
    assert table_shape(section(one_more)) != shape


def test_markers_are_required_once_each() -> None:
    with pytest.raises(ReadmeError):
        replace_section("no markers here", "body")
    with pytest.raises(ReadmeError):
        replace_section(f"{BEGIN}\n{END}\n{BEGIN}\n{END}\n", "body")


def test_write_readme_reports_a_missing_document(tmp_path: Path) -> None:
    from bench.readme import main

    assert main(["--from", str(tmp_path / "absent.json")]) == 4

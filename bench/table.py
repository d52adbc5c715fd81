"""The one table, from a saved bench document: as text for the terminal and as Markdown for the README."""

from __future__ import annotations

from typing import Any

from bench.stats import spread

HEADERS = ("figure", "min", "median", "max", "load", "others", "target", "status")
MARKDOWN_HEADERS = (*HEADERS, "reproduce")


def fmt(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:+.1f} %"
    if unit == "x":
        return f"{value:.2f}x"
    if unit in ("starts", "MB"):
        return f"{value:.0f} {unit}" if unit == "MB" else f"{value:.0f}"
    if unit == "ms":
        return f"{value:.2f} ms"
    digits = 1 if abs(value) >= 10 else 2
    return f"{value:.{digits}f} {unit}"


def load_range(loads: list[float | None]) -> str:
    have = [x for x in loads if x is not None]
    if not have:
        return "-"
    low, high = min(have), max(have)
    return f"{low:.1f}" if f"{low:.1f}" == f"{high:.1f}" else f"{low:.1f}-{high:.1f}"


def cells(figure: dict[str, Any]) -> list[str]:
    """One figure's row: label, min, median, max, load, others' cores, target, status."""
    got = spread(figure["values"])
    numbers = ["-", "-", "-"] if got is None else [fmt(v, figure["unit"]) for v in got]
    target = (figure.get("target") or {}).get("text", "")
    status = figure.get("status", "")
    if figure.get("why"):
        status = f"{status} ({figure['why']})"
    return [figure["label"], *numbers, load_range(figure["loads"]), load_range(figure.get("others", [])), target,
            status]


def header_lines(doc: dict[str, Any]) -> list[str]:
    host = doc.get("host", {})
    mode = "QUICK PASS (fewer runs than a measurement needs; not for the record)" if doc.get("quick") else \
        f"min / median / max over {doc['runs']} runs"
    lines = [f"{mode}; {doc['started']} to {doc['finished']}, {host.get('cpus', '?')} CPUs, "
             f"Python {host.get('python', '?')}; load = 1-minute load average before each run (it includes the "
             "bench's own previous run); others = cores other processes kept busy during the runs, on average"]
    lines.extend(f"note: {note}" for note in doc.get("notes", []))
    return lines


def render_text(doc: dict[str, Any]) -> str:
    rows = [list(HEADERS)] + [cells(f) for f in doc["figures"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    out = header_lines(doc)
    out.append("")
    for n, row in enumerate(rows):
        line = "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) if i < 6 else c.ljust(widths[i])
                         for i, c in enumerate(row))
        out.append(line.rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(doc: dict[str, Any]) -> str:
    """The README's generated table (one row per figure, in the document's order)."""
    lines = ["| " + " | ".join(MARKDOWN_HEADERS) + " |", "|" + "---|" * len(MARKDOWN_HEADERS)]
    for figure in doc["figures"]:
        row = [_md(c) for c in cells(figure)] + [f"`{figure['command']}`"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)

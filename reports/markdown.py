"""Markdown helpers shared by ``summary.md`` and ``compare.md``."""

from __future__ import annotations

from qdrant_conformance.reports.scrub import scrub_text


def md(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    text = " ".join(scrub_text(text).split())
    for char in "\\`*_[]|":
        text = text.replace(char, "\\" + char)
    return text.replace("<", "&lt;").replace(">", "&gt;")


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def md_escape_guard(text: str) -> str:
    return text.replace("<", "&lt;").replace(">", "&gt;")

"""report.html: structure, escaping, self-containment, and how it renders in headless Chromium."""

from __future__ import annotations

import dataclasses
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from qdrant_conformance.reports import compute_verdicts, write_all
from qdrant_conformance.reports.demo import demo_run
from qdrant_conformance.reports.html_report import render_html
from qdrant_conformance.reports.model import RunResult

# ---------------------------------------------------------------------------
# a small structural reading of the page


class _Page(HTMLParser):
    """Collects what the assertions need: tags, attributes, and the matrix's cells."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.matrix_head: list[str] = []
        self.matrix_rows: list[list[str]] = []
        self._table_depth = 0
        self._in_matrix = False
        self._cell: list[str] | None = None
        self._in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attributes))
        if tag == "table" and attributes.get("id") == "matrix":
            self._in_matrix = True
        if not self._in_matrix:
            return
        if tag == "thead":
            self._in_head = True
        elif tag == "tr" and not self._in_head:
            self.matrix_rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if not self._in_matrix:
            return
        if tag == "table":
            self._in_matrix = False
        elif tag == "thead":
            self._in_head = False
        elif tag in ("td", "th") and self._cell is not None:
            value = " ".join(" ".join(self._cell).split())
            if self._in_head:
                self.matrix_head.append(value)
            elif self.matrix_rows:
                self.matrix_rows[-1].append(value)
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def _parse(markup: str) -> _Page:
    page = _Page()
    page.feed(markup)
    page.close()
    return page


def _hostile_run() -> RunResult:
    """The demo run with markup in places a careless writer would paste verbatim."""
    run = demo_run()
    first = dataclasses.replace(
        run.records[0],
        evidence=['GET /collections?q=<img src=x onerror=alert(1)> -> 401 {"status":"<b>bold</b>"}'],
        reason="</pre><script>alert('x')</script>",
        outcome="fail",
    )
    requirement = dataclasses.replace(run.requirements[0], text='MUST NOT succeed & must "quote" <i>this</i>.')
    return dataclasses.replace(
        run,
        records=[first, *run.records[1:]],
        requirements=[requirement, *run.requirements[1:]],
        target={**run.target, "label": "<vendor & co>"},
    )


# ---------------------------------------------------------------------------
# structure


def test_report_has_verdicts_target_and_matrix() -> None:
    run = demo_run()
    markup = render_html(run, compute_verdicts(run))
    page = _parse(markup)
    text = " ".join(" ".join(page.text).split())
    assert "NOT SECURE" in text and "COMPATIBILITY INCOMPLETE: Qdrant v1.19.0" in text
    assert "qdrant/qdrant:v1.19.0" in text and "sslyze" in text and "6.3.1" in text
    assert page.matrix_head == ["Requirement", "Level", "Kind", "REST", "gRPC", "p2p", "any"]
    rows = [row for row in page.matrix_rows if len(row) == len(page.matrix_head)]
    assert [row[0].split()[0] for row in rows] == [r.id for r in run.requirements]
    by_id = {row[0].split()[0]: row for row in rows}
    assert by_id["AUTHZ-ANY-002"][3:5] == ["pass", "fail"]
    assert by_id["TLS-GRPC-004"][4] == "waived"
    assert by_id["TLS-GRPC-004"][0].split()[1] == "medium"  # the severity tag beside the ID
    assert by_id["CLUSTER-P2P-001"][5] == "disabled"
    assert by_id["HYG-REST-001"][1] == "SHOULD"
    # The deciding requirement links to its finding, which carries the evidence.
    assert ("a", {"href": "#finding-AUTHZ-ANY-002"}) in page.tags
    assert ("article", {"class": "finding f-fail", "id": "finding-AUTHZ-ANY-002"}) in page.tags
    assert "qdrant.Points/Upsert api-key=<redacted:read_only_key> -> OK" in text
    assert "Source: spec §2.4" in text


def test_not_run_requirement_is_shown_in_its_column() -> None:
    run = demo_run()
    run = dataclasses.replace(run, records=[r for r in run.records if r.requirement != "ROT-REST-001"])
    page = _parse(render_html(run, compute_verdicts(run)))
    row = next(r for r in page.matrix_rows if r and r[0].startswith("ROT-REST-001"))
    assert row[3] == "not run"


def test_everything_is_escaped() -> None:
    run = _hostile_run()
    markup = render_html(run, compute_verdicts(run))
    for raw in ("<script", "<img", "<b>bold", "<i>this", "<vendor"):
        assert raw not in markup, f"{raw!r} reached the page unescaped"
    assert "&lt;img src=x onerror=alert(1)&gt;" in markup
    assert "&lt;/pre&gt;&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in markup
    assert "&lt;vendor &amp; co&gt;" in markup
    assert "MUST NOT succeed &amp; must &quot;quote&quot; &lt;i&gt;this&lt;/i&gt;." in markup
    tags = {tag for tag, _ in _parse(markup).tags}
    assert "script" not in tags and "img" not in tags


def test_page_is_self_contained() -> None:
    run = demo_run()
    page = _parse(render_html(run, compute_verdicts(run)))
    for tag, attributes in page.tags:
        assert tag not in ("script", "link", "img", "iframe", "object", "embed"), tag
        assert "src" not in attributes
        href = attributes.get("href", "")
        assert not href or href.startswith("#"), href
        assert not any(name.startswith("on") for name in attributes)
    style = next(i for i, (tag, _) in enumerate(page.tags) if tag == "style")
    assert style >= 0
    css = "".join(page.text)
    assert "@import" not in css and "url(" not in css


# ---------------------------------------------------------------------------
# rendering in headless Chromium


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--run-all-compositor-stages-before-draw",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )


def _decode_png(data: bytes) -> tuple[int, int, list[bytes], int]:
    """Width, height, unfiltered rows and bytes per pixel of an 8-bit RGB(A) PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = bpp = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), (depth, colour)
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    offset = 0
    for _ in range(height):
        kind_byte, line = raw[offset], bytearray(raw[offset + 1 : offset + 1 + stride])
        offset += 1 + stride
        if kind_byte == 1:
            for x in range(bpp, stride):
                line[x] = (line[x] + line[x - bpp]) & 0xFF
        elif kind_byte == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif kind_byte == 3:
            for x in range(stride):
                left = line[x - bpp] if x >= bpp else 0
                line[x] = (line[x] + ((left + prev[x]) >> 1)) & 0xFF
        elif kind_byte == 4:
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0
                b, c = prev[x], prev[x - bpp] if x >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows, bpp


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = _chromium()
    if binary is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    return binary


def test_report_renders_in_headless_chromium(chromium: str, tmp_path: Path) -> None:
    run = demo_run()
    html_path = write_all(run, compute_verdicts(run), tmp_path / "report")["html"]
    url = html_path.resolve().as_uri()

    dom = _run_chromium(chromium, tmp_path / "profile-dom", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr.decode(errors="replace")[-800:]
    rendered = dom.stdout.decode("utf-8", "replace")
    assert 'id="matrix"' in rendered and "AUTHZ-ANY-002" in rendered and "NOT SECURE" in rendered

    shot = tmp_path / "out.png"
    proc = _run_chromium(chromium, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,2000", url)
    assert proc.returncode == 0 and shot.exists(), proc.stderr.decode(errors="replace")[-800:]
    width, height, rows, bpp = _decode_png(shot.read_bytes())
    assert (width, height) == (1280, 2000)

    pixels = [tuple(row[x : x + 3]) for row in rows[::8] for x in range(0, width * bpp, 8 * bpp)]
    non_white = sum(1 for p in pixels if min(p) < 235)
    assert non_white / len(pixels) > 0.03, "the screenshot is (nearly) blank"
    assert len(set(pixels)) > 50, "the screenshot has almost no distinct colours"
    # The NOT SECURE card is near the top and rendered in the fail colours (#cf222e on #ffebe9).
    top = [tuple(row[x : x + 3]) for row in rows[:500] for x in range(0, width * bpp, bpp * 2)]
    assert any(r > 180 and g < 70 and b < 80 for r, g, b in top), "no verdict red in the top of the page"
    assert any(r > 240 and 225 < g < 240 and 225 < b < 240 for r, g, b in top), "no fail background"

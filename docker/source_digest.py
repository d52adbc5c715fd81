"""Print a digest of the reference server's source tree.

``build.sh`` stamps it on the image as a label, so a harness can tell whether
``local/qsc-reference:latest`` was built from the checkout it is running in.
Standard library only: it runs under whatever ``python3`` the host has.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path


def image_source_files(package_dir: Path) -> list[Path]:
    """The files of ``package_dir`` that go into the image (no bytecode caches)."""
    return sorted(
        p for p in package_dir.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


def source_digest(package_dir: Path) -> str:
    outer = hashlib.sha256()
    for path in image_source_files(package_dir):
        rel = path.relative_to(package_dir.parent).as_posix()
        outer.update(hashlib.sha256(path.read_bytes()).hexdigest().encode())
        outer.update(b"  " + rel.encode() + b"\n")
    return outer.hexdigest()


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
    print(source_digest(root / "reference_server"))

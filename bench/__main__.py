"""Time to verdict: one table of the suite's performance figures (issue 15).

    python -m bench [-n RUNS] [--only SECTION[,SECTION]] [--targets KIND[,KIND]] [--qdrant-binary PATH]
                    [--image NAME] [--sweep-separate] [--quick] [--plan]
    python -m bench --write-readme          (README's performance table from bench/out/latest.json)

Sections: full (full `pytest suites/` wall, CPU and the machine's CPU per target kind; with docker,
the engine's own CPU per container, probed with `sleep` in place of the server), families (wall per requirement
family within the full process run), startups (server start-ups per run: count and seconds), sweep
(marginal cost per sweep row: the authorization sweep at 1x, 2x and 4x its rows, fitted as fixed + per
row; by default the running totals after the 1st, 2nd and 4th pass of one run at 4x rows, with
--sweep-separate three runs of their own), xdist (`-n 2` against `-n 0`), rss (peak RSS of the test
process and of each server). --targets chooses the kinds of full, startups and rss; families, sweep
and xdist always use the process kind. Target kinds: process (the embedded reference server), docker
(the reference image; skipped with one line when there is no engine or image), binary (only with
--qdrant-binary), external (a reference server this command starts before the timed run and declares
with --target external).

Every figure is min / median / max over RUNS repetitions, with the 1-minute load average beside it;
targets are judged on the median. The raw numbers go to bench/out/<UTC time>.json and
bench/out/latest.json. The default run (3 repetitions of: the full run on the process, docker and
external targets, the full process run with -n 2, the sweep at 4x rows) is planned for about 9
minutes on two quiet cores; --plan prints the runs and the estimate.
Exit code: 0 every run completed, 3 some run did not, 4 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from bench.sections import DEFAULT_IMAGE, KINDS, SECTIONS, Config, execute, figures
from bench.table import render_text

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
MIN_RUNS = 3
EXIT_INCOMPLETE = 3
EXIT_BAD_INPUT = 4


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # The project's rule for bad input: one line, exit 4.
        print(f"bench: error: {message}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def _names(raw: str | None, known: tuple[str, ...], what: str, parser: _Parser) -> tuple[str, ...] | None:
    if raw is None:
        return None
    names = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        parser.error(f"{what} must be from {', '.join(known)}, not {raw!r}")
    return names


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, Config]:
    parser = _Parser(prog="python -m bench", description=__doc__.splitlines()[0],
                     epilog="\n".join(__doc__.splitlines()[5:]), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--runs", type=int, default=None,
                        help=f"repetitions of every run (default {MIN_RUNS}; fewer only with --quick)")
    parser.add_argument("--only", default=None, help=f"sections to run, from {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--targets", default=None,
                        help="target kinds, from process, docker, binary, external (default: process, docker, "
                             "external, and binary when --qdrant-binary is given)")
    parser.add_argument("--qdrant-binary", type=Path, default=None, help="a qdrant executable: adds the binary kind")
    parser.add_argument("--image", default=DEFAULT_IMAGE, help=f"image for the docker kind (default {DEFAULT_IMAGE})")
    parser.add_argument("--quick", action="store_true",
                        help="development pass: 1 repetition unless -n says otherwise, marked as such in the table")
    parser.add_argument("--sweep-separate", action="store_true",
                        help="time the sweep at 1x, 2x and 4x rows as three runs of their own (about a minute more "
                             "per repetition) instead of the passes of one 4x run")
    parser.add_argument("--plan", action="store_true", help="print the runs and the time estimate, run nothing")
    parser.add_argument("--write-readme", action="store_true",
                        help="rewrite README.md's performance table from bench/out/latest.json, run nothing")
    parser.add_argument("--refigure", type=Path, nargs="?", const=OUT / "latest.json", default=None, metavar="JSON",
                        help="recompute the figures of a saved document (default bench/out/latest.json) from its "
                             "raw runs, save and print them; run nothing")
    args = parser.parse_args(argv)

    runs = args.runs if args.runs is not None else (1 if args.quick else MIN_RUNS)
    if runs < 1 or (runs < MIN_RUNS and not args.quick):
        parser.error(f"-n/--runs must be at least {MIN_RUNS} (fewer only with --quick), not {runs}")
    sections = _names(args.only, SECTIONS, "--only", parser) or SECTIONS
    kinds = _names(args.targets, KINDS, "--targets", parser)
    if kinds is None:
        kinds = ("process", "docker", "external") + (("binary",) if args.qdrant_binary else ())
    if "binary" in kinds:
        binary = args.qdrant_binary
        if binary is None:
            parser.error("--targets binary needs --qdrant-binary PATH")
        if not (binary.is_file() and os.access(binary, os.X_OK)):
            parser.error(f"--qdrant-binary {binary}: not an executable file")
    config = Config(runs=runs, sections=sections, kinds=kinds, image=args.image,
                    qdrant_binary=args.qdrant_binary.resolve() if args.qdrant_binary else None, quick=args.quick,
                    sweep_separate=args.sweep_separate)
    return args, config


def _docker_problem(image: str) -> str | None:
    """Why the docker kind cannot run here, or None."""
    from qdrant_conformance.fixtures.launchers.base import BadTargetInput

    try:
        from qdrant_conformance.fixtures.launchers.docker import connect, require_image

        client = connect(timeout=10)
    except BadTargetInput as exc:
        return f"no docker engine ({exc})"
    except ImportError as exc:
        return f"no docker engine (the docker SDK cannot be imported: {exc})"
    try:
        require_image(client, image)
    except BadTargetInput as exc:
        return str(exc)
    finally:
        client.close()
    return None


def document(config: Config, started: str, finished: str, elapsed: float, notes: list[str],
             figs: list[dict[str, Any]], run_log: list[dict[str, Any]], argv: list[str]) -> dict[str, Any]:
    return {
        "schema": 1,
        "argv": argv,
        "quick": config.quick,
        "runs": config.runs,
        "sections": list(config.sections),
        "kinds": list(config.kinds),
        "factors": list(config.factors),
        "sweep_separate": config.sweep_separate,
        "image": config.image,
        "qdrant_binary": str(config.qdrant_binary) if config.qdrant_binary else None,
        "started": started,
        "finished": finished,
        "elapsed_s": round(elapsed, 1),
        "host": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "notes": notes,
        "figures": figs,
        "run_log": run_log,
    }


def save(doc: dict[str, Any], out: Path = OUT) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stamp = doc["started"].replace(":", "").replace("-", "")
    path = out / f"{stamp}.json"
    text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")
    (out / "latest.json").write_text(text, encoding="utf-8")
    return path


def refigure(path: Path) -> int:
    """Recompute a saved document's figures with this version of the code (the runs stay as measured)."""
    from bench.readme import ReadmeError, load
    from bench.sections import collected_from

    try:
        doc = load(path)
    except ReadmeError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    config = Config(runs=doc["runs"], sections=tuple(doc["sections"]), kinds=tuple(doc["kinds"]),
                    image=doc.get("image", DEFAULT_IMAGE), quick=doc["quick"], factors=tuple(doc["factors"]),
                    qdrant_binary=Path(doc["qdrant_binary"]) if doc.get("qdrant_binary") else None,
                    sweep_separate=bool(doc.get("sweep_separate", True)))
    doc["figures"] = figures(config, collected_from(doc))
    saved = save(doc)
    print(render_text(doc))
    print(f"\nrecomputed from the runs in {path}; saved as {saved.relative_to(ROOT)} and bench/out/latest.json")
    return 0


def main(argv: list[str] | None = None) -> int:
    args, config = parse(argv)
    if args.write_readme:
        from bench.readme import main as readme_main

        return readme_main([])
    if args.refigure is not None:
        return refigure(args.refigure)
    notes: list[str] = []
    kinds = list(config.kinds)
    if "docker" in kinds and config.wants("full", "startups", "rss"):
        problem = _docker_problem(config.image)
        if problem is not None:
            kinds.remove("docker")
            notes.append(f"docker: skipped: {problem}")
            print(f"docker: skipped: {problem}", flush=True)
    config = Config(**{**config.__dict__, "kinds": tuple(kinds)})

    plan = config.plan()
    print(f"python -m bench: {config.runs} repetition(s) of {', '.join(plan)}; estimated "
          f"{config.estimate_s() / 60:.1f} min on two cores (load now {os.getloadavg()[0]:.2f})", flush=True)
    if args.plan:
        return 0
    started = datetime.now(UTC).replace(microsecond=0)
    began = time.monotonic()
    collected = execute(config, lambda line: print(line, flush=True))
    elapsed = time.monotonic() - began
    finished = datetime.now(UTC).replace(microsecond=0)
    notes.extend(collected.notes)
    run_log = [run.to_dict() for key in plan for run in collected.runs.get(key, [])]
    doc = document(config, started.isoformat().replace("+00:00", "Z"), finished.isoformat().replace("+00:00", "Z"),
                   elapsed, notes, figures(config, collected), run_log, list(sys.argv[1:] if argv is None else argv))
    path = save(doc)
    print()
    print(render_text(doc))
    print(f"\n{elapsed / 60:.1f} min; raw numbers: {path.relative_to(ROOT)} (and bench/out/latest.json)")
    return EXIT_INCOMPLETE if collected.notes else 0


if __name__ == "__main__":
    sys.exit(main())

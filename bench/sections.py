"""What ``python -m bench`` runs, and the figures it makes of the runs.

One repetition runs, in this order (only what the chosen sections need): the full process run
(``-n 0``), the full run per other target kind (docker, binary, external), the full process run with
``-n 2``, and the sweep at 4x rows (or at each row factor, ``--sweep-separate``). Repetitions are
interleaved rather than grouped by kind, so a change in the machine's load lands on every kind alike
and the ratios stay fair.

Every figure is one value per repetition; the table shows min / median / max and the load average
(1 minute, read just before each run) beside it. Targets are judged on the median.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from bench.runner import Run, run_pytest
from bench.stats import deviation, fit_line, spread

SECTIONS = ("full", "families", "startups", "sweep", "xdist", "rss")
KINDS = ("process", "docker", "binary", "external")
SWEEP_FACTORS = (1, 2, 4)
DEFAULT_IMAGE = "local/qsc-reference:latest"
MB = 1024 * 1024

#: Requirement families as the issue names them, by suite file (first match wins: rotation before TLS).
FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("auth", ("test_auth_*.py", "test_hygiene_*.py")),
    ("authz sweep", ("test_authz_sweep.py",)),
    ("authz other", ("test_authz_special.py", "test_web_ui.py")),
    ("JWT", ("test_jwt_*.py",)),
    ("rotation", ("test_tls_rotation.py",)),
    ("mTLS", ("test_mtls.py",)),
    ("TLS", ("test_tls_*.py",)),
    ("cluster", ("test_cluster_*.py",)),
    ("hardening", ("test_hard_*.py", "test_adv_*.py")),
)
OTHER_FAMILY = "other"

#: Rough seconds per run on two cores (a quick pass with one other core busy, 2026-12-02), for the
#: up-front estimate only.
ESTIMATE_S = {"full:process": 35.0, "full:docker": 65.0, "full:binary": 40.0, "full:external": 15.0,
              "engine:docker": 8.0, "xdist:n2": 36.0, "sweep:x1": 8.0, "sweep:x2": 12.0, "sweep:x4": 22.0}


def family_of(path: str) -> str:
    """The family a suite file belongs to (``other`` when none claims it)."""
    name = PurePosixPath(path).name
    for family, patterns in FAMILIES:
        if any(fnmatch.fnmatch(name, pattern) for pattern in patterns):
            return family
    return OTHER_FAMILY


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")


@dataclass(frozen=True)
class Config:
    runs: int
    sections: tuple[str, ...]
    kinds: tuple[str, ...]
    image: str = DEFAULT_IMAGE
    qdrant_binary: Path | None = None
    quick: bool = False
    factors: tuple[int, ...] = SWEEP_FACTORS
    #: The sweep at each factor as a run of its own (slower), instead of the passes of one run at the top factor.
    sweep_separate: bool = False

    def sweep_keys(self) -> list[str]:
        if self.sweep_separate:
            return [f"sweep:x{f}" for f in self.factors]
        return [f"sweep:x{max(self.factors)}"]

    def wants(self, *sections: str) -> bool:
        return any(s in self.sections for s in sections)

    def plan(self) -> list[str]:
        """The runs of one repetition, in order."""
        keys: list[str] = []
        if ("process" in self.kinds and self.wants("full", "startups", "rss")) or self.wants("families", "xdist"):
            keys.append("full:process")
        for kind in ("docker", "binary", "external"):
            if kind in self.kinds and self.wants("full", "startups", "rss"):
                keys.append(f"full:{kind}")
        if "docker" in self.kinds and self.wants("full"):
            keys.append("engine:docker")
        if self.wants("xdist"):
            keys.append("xdist:n2")
        if self.wants("sweep"):
            keys.extend(self.sweep_keys())
        return keys

    def estimate_s(self) -> float:
        return self.runs * sum(ESTIMATE_S.get(key, 30.0) for key in self.plan())

    def bench_command(self, section: str, kind: str | None = None) -> str:
        parts = ["python -m bench", *(["--quick"] if self.quick else []), f"-n {self.runs}", f"--only {section}"]
        if kind is not None:
            parts.append(f"--targets {kind}")
        if kind == "docker" and self.image != DEFAULT_IMAGE:
            parts.append(f"--image {self.image}")
        if kind == "binary" and self.qdrant_binary is not None:
            parts.append(f"--qdrant-binary {self.qdrant_binary}")
        if section == "sweep" and self.sweep_separate:
            parts.append("--sweep-separate")
        return " ".join(parts)


@dataclass
class Collected:
    """Every run, by plan key, one entry per repetition."""

    runs: dict[str, list[Run]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, key: str, run: Run) -> None:
        self.runs.setdefault(key, []).append(run)


def execute_one(key: str, config: Config) -> Run:
    """Make one run of the plan."""
    if key == "full:process":
        return run_pytest("full run, process", ["suites/"])
    if key == "xdist:n2":
        return run_pytest("full run, process, -n 2", ["suites/"], ["-n", "2"])
    if key == "full:docker":
        return run_pytest("full run, docker", ["suites/"], ["--target", "docker", "--image", config.image])
    if key == "full:binary":
        assert config.qdrant_binary is not None
        return run_pytest("full run, binary", ["suites/"],
                          ["--target", "binary", "--qdrant-binary", str(config.qdrant_binary)])
    if key == "full:external":
        from bench import external

        server = external.start()
        try:
            run = run_pytest("full run, external", ["suites/"], server.pytest_options, extra_cpu=server.cpu_seconds,
                             placeholders=[(str(server.root / "keys"), "<keys>"),
                                           (server.instance.rest_url, "<rest-url>"),
                                           (server.instance.grpc_target, "<grpc-url>")])
            run.stats.setdefault("server_peak_bytes", {})[f"external:{external.PROFILE}"] = server.peak_rss_bytes()
        finally:
            server.stop()
        return run
    if key == "engine:docker":
        from bench import engine

        return engine.probe(config.image)
    if key.startswith("sweep:x"):
        factor = int(key.removeprefix("sweep:x"))
        env = {"QSC_BENCH_ROW_FACTOR": str(factor)} if factor != 1 else {}
        return run_pytest(f"authz sweep, {factor}x rows", ["suites/test_authz_sweep.py"], env=env)
    raise ValueError(f"unknown run {key!r}")


def execute(config: Config, say: Callable[[str], None]) -> Collected:
    collected = Collected()
    plan = config.plan()
    for rep in range(1, config.runs + 1):
        for key in plan:
            run = execute_one(key, config)
            run.key = key
            collected.add(key, run)
            counts = ", ".join(f"{v} {k}" for k, v in run.counts.items() if v and k != "total")
            state = f"PROBLEM: {run.problem}" if run.problem else f"rc {run.rc} [{counts}]"
            say(f"  [{rep}/{config.runs}] {run.label}: {run.wall:.1f} s wall, {run.cpu:.1f} CPU-s, "
                f"load {run.load:.2f}; {state}")
            if run.problem:
                collected.notes.append(f"{run.label}, repetition {rep}: {run.problem}")
    return collected


def collected_from(doc: dict[str, Any]) -> Collected:
    """The runs of a saved document, to recompute its figures (``python -m bench --refigure``)."""
    collected = Collected(notes=[n for n in doc.get("notes", []) if not n.startswith("docker: skipped")])
    for data in doc.get("run_log", []):
        run = Run.from_dict(data)
        collected.add(run.key, run)
    return collected


# -- figures ---------------------------------------------------------------------------------------


def _target(text: str, limit: float, *, absolute: bool = False, load_max: float | None = None) -> dict[str, Any]:
    return {"text": text, "limit": limit, "absolute": absolute, "load_max": load_max}


def judge(figure: dict[str, Any]) -> tuple[str, str]:
    """(status, why) of a figure with a target: PASS, MISS, or n/a (nothing measured, or too much load)."""
    target = figure.get("target")
    if not target:
        return "", ""
    got = spread(figure["values"])
    if got is None:
        return "n/a", "not measured"
    median = got[1]
    value = abs(median) if target["absolute"] else median
    ok = value <= target["limit"]
    loads = spread(figure["loads"])
    if not ok and target["load_max"] is not None and loads is not None and loads[1] > target["load_max"]:
        return "n/a", f"median load {loads[1]:.1f} > {target['load_max']:g}: rerun on a quieter machine"
    return ("PASS", "") if ok else ("MISS", "")


def _figure(fid: str, section: str, label: str, unit: str, values: list[float | None],
            loads: list[tuple[float, float | None]], command: str, runs: list[Run],
            target: dict[str, Any] | None = None) -> dict[str, Any]:
    figure = {"id": fid, "section": section, "label": label, "unit": unit,
              "values": [None if v is None else round(v, 6) for v in values],
              "loads": [round(load, 2) for load, _ in loads],
              "others": [None if o is None else round(o, 2) for _, o in loads], "command": command,
              "runs": sorted({r.command() for r in runs}), "target": target}
    figure["status"], figure["why"] = judge(figure)
    return figure


def _ok(runs: list[Run], pick: Callable[[Run], float | None]) -> list[float | None]:
    return [pick(r) if r.ok else None for r in runs]


def _loads(*series: list[Run]) -> list[tuple[float, float | None]]:
    """Per repetition: the highest load average before, and the most cores others used during, its runs."""
    out: list[tuple[float, float | None]] = []
    for i in range(min(len(s) for s in series)):
        others = [o for o in (runs[i].others for runs in series) if o is not None]
        out.append((max(runs[i].load for runs in series), max(others) if others else None))
    return out


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return top / bottom if top is not None and bottom else None


def _engine_floor(process: Run, docker: Run, engine: Run) -> float | None:
    """The machine-CPU ratio a Docker run would reach if only the engine's own work were added to the process run's.

    What is left above it is the servers' own start-up in each container (an interpreter and its
    imports the process target shares through its zygote) and the proxied traffic.
    """
    per_container = engine.stats.get("engine_cpu_per_container") if engine.ok else None
    if not (process.ok and docker.ok) or per_container is None or not process.machine:
        return None
    starts = len(docker.stats.get("starts", []))
    return (process.machine + starts * per_container) / process.machine


def _table_rows() -> dict[str, int]:
    from qdrant_conformance.fixtures.catalog.access import load_access_table

    rows = load_access_table()
    return {"rest": sum(1 for r in rows if r.rest is not None), "grpc": sum(1 for r in rows if r.grpc is not None)}


def figures(config: Config, got: Collected) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    runs = got.runs
    process = runs.get("full:process", [])

    if config.wants("full"):
        for kind in config.kinds:
            series = runs.get(f"full:{kind}", [])
            if not series:
                continue
            cmd = config.bench_command("full", kind)
            wall_target = _target("≤ 45 s at load ≤ 2 (issue 15)", 45.0, load_max=2.0) if kind == "process" else None
            out.append(_figure(f"full.{kind}.wall", "full", f"full `pytest suites/`, {kind} target: wall", "s",
                               _ok(series, lambda r: r.wall), _loads(series), cmd, series, wall_target))
            out.append(_figure(f"full.{kind}.cpu", "full", f"full `pytest suites/`, {kind} target: CPU (pytest + "
                               "servers)", "CPU-s", _ok(series, lambda r: r.cpu), _loads(series), cmd, series))
            out.append(_figure(f"full.{kind}.machine_cpu", "full", f"full `pytest suites/`, {kind} target: machine "
                               "CPU (every process: pytest, servers, the Docker engine, the kernel)", "CPU-s",
                               _ok(series, lambda r: r.machine), _loads(series), cmd, series))
        docker = runs.get("full:docker", [])
        engine = runs.get("engine:docker", [])
        pair = config.bench_command("full", "process,docker")
        if process and docker:
            ratio = [d.wall / p.wall if d.ok and p.ok else None for p, d in zip(process, docker, strict=False)]
            out.append(_figure("full.docker_ratio", "full", "Docker full run / process full run (wall, back to back)",
                               "x", ratio, _loads(process, docker), pair, process + docker,
                               _target("≤ 1.3x (issue 15)", 1.3)))
            out.append(_figure("full.docker_machine_cpu_ratio", "full", "Docker full run / process full run "
                               "(machine CPU, back to back)", "x",
                               [_ratio(d.machine, p.machine) if d.ok and p.ok else None
                                for p, d in zip(process, docker, strict=False)],
                               _loads(process, docker), pair, process + docker))
        if engine:
            out.append(_figure("full.docker.engine_cpu", "full", "Docker engine CPU per container (create, start, "
                               "remove; `sleep` instead of the server)", "CPU-s",
                               _ok(engine, lambda r: r.stats.get("engine_cpu_per_container")), _loads(engine),
                               config.bench_command("full", "docker"), engine))
        if process and docker and engine:
            floor = [_engine_floor(p, d, e) for p, d, e in zip(process, docker, engine, strict=False)]
            out.append(_figure("full.docker_engine_floor", "full", "the engine's floor under the machine-CPU "
                               "ratio: (process run's machine CPU + Docker start-ups x engine CPU per container) / "
                               "process run's",
                               "x", floor, _loads(process, docker, engine), pair, process + docker + engine))

    if config.wants("families") and process:
        names = [name for name, _ in FAMILIES] + [OTHER_FAMILY]
        per_run: list[dict[str, float]] = []
        for run in process:
            totals: dict[str, float] = {}
            for path, seconds in run.stats.get("file_seconds", {}).items():
                fam = family_of(path)
                totals[fam] = totals.get(fam, 0.0) + seconds
            per_run.append(totals)
        for name in names:
            if not any(name in totals for totals in per_run):
                continue
            files = ", ".join(dict(FAMILIES).get(name, ("unmapped files",)))
            out.append(_figure(f"families.{_slug(name)}.wall", "families",
                               f"family {name} ({files}): wall within the full process run", "s",
                               [t.get(name, 0.0) if r.ok else None for r, t in zip(process, per_run, strict=True)],
                               _loads(process), config.bench_command("families"), process))

    if config.wants("startups"):
        for kind in config.kinds:
            series = runs.get(f"full:{kind}", [])
            if not series:
                continue
            cmd = config.bench_command("startups", kind)
            note = " (external: the suite starts nothing)" if kind == "external" else ""
            out.append(_figure(f"startups.{kind}.count", "startups", f"server start-ups per full run, {kind}{note}",
                               "starts", _ok(series, lambda r: float(len(r.stats.get("starts", [])))),
                               _loads(series), cmd, series))
            out.append(_figure(f"startups.{kind}.seconds", "startups",
                               f"server start-ups per full run, {kind}: total seconds to ready", "s",
                               _ok(series, lambda r: sum(s["seconds"] for s in r.stats.get("starts", []))),
                               _loads(series), cmd, series))

    if config.wants("sweep"):
        out.extend(_sweep_figures(config, runs))

    if config.wants("xdist") and process:
        n2 = runs.get("xdist:n2", [])
        cmd = config.bench_command("xdist")
        if n2:
            out.append(_figure("xdist.n2.wall", "xdist", "full process run with `-n 2`: wall", "s",
                               _ok(n2, lambda r: r.wall), _loads(n2), cmd, n2))
            out.append(_figure("xdist.n2.cpu", "xdist", "full process run with `-n 2`: CPU (pytest + servers)",
                               "CPU-s", _ok(n2, lambda r: r.cpu), _loads(n2), cmd, n2))
            out.append(_figure("xdist.n2.starts", "xdist", "full process run with `-n 2`: server start-ups",
                               "starts", _ok(n2, lambda r: float(len(r.stats.get("starts", [])))), _loads(n2), cmd, n2))
            out.append(_figure("xdist.speedup", "xdist", "`-n 0` wall / `-n 2` wall (back to back)", "x",
                               [p.wall / q.wall if p.ok and q.ok else None for p, q in zip(process, n2, strict=False)],
                               _loads(process, n2), cmd, process + n2))

    if config.wants("rss"):
        out.extend(_rss_figures(config, runs))
    return out


def _sweep_points(config: Config, runs: dict[str, list[Run]], proto: str, rep: int) -> list[tuple[float, float]]:
    """(sweep tests of ``proto``, their seconds) at each row factor, for one repetition.

    Separate runs: each run's own total. One run at the top factor: the running total after pass 1, 2
    and 4 of the row copies (passes run in order, pass 1 pays the module's setup, as a run of its own would).
    """
    points: list[tuple[float, float]] = []
    if config.sweep_separate:
        for f in config.factors:
            run = runs[f"sweep:x{f}"][rep]
            y = run.stats.get("protocol_seconds", {}).get(proto)
            if run.ok and y is not None:
                points.append((float(run.stats.get("protocol_tests", {}).get(proto, 0)), float(y)))
        return points
    run = runs[f"sweep:x{max(config.factors)}"][rep]
    if not run.ok:
        return points
    tests = {int(k): v for k, v in run.stats.get("pass_tests", {}).get(proto, {}).items()}
    seconds = {int(k): v for k, v in run.stats.get("pass_seconds", {}).get(proto, {}).items()}
    for f in config.factors:
        if all(k in tests for k in range(1, f + 1)):
            points.append((float(sum(tests[k] for k in range(1, f + 1))),
                           float(sum(seconds.get(k, 0.0) for k in range(1, f + 1)))))
    return points


def _sweep_figures(config: Config, runs: dict[str, list[Run]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    keys = config.sweep_keys()
    if not all(runs.get(k) for k in keys):
        return out
    series = [runs[k] for k in keys]
    reps = min(len(s) for s in series)
    every = [r for s in series for r in s]
    loads = _loads(*series)
    cmd = config.bench_command("sweep")
    table_rows = _table_rows()
    top = max(config.factors)
    how = "separate runs at " if config.sweep_separate else f"passes of one {top}x run: "
    over = "/".join(f"{f}x" for f in config.factors)
    for proto, name in (("rest", "REST"), ("grpc", "gRPC")):
        per_test: list[float | None] = []
        per_row: list[float | None] = []
        fixed: list[float | None] = []
        dev: list[float | None] = []
        for i in range(reps):
            points = [(x, y) for x, y in _sweep_points(config, runs, proto, i) if x > 0]
            if len(points) != len(config.factors) or len({x for x, _ in points}) < 2:
                for missing in (per_test, per_row, fixed, dev):
                    missing.append(None)
                continue
            a, b = fit_line([x for x, _ in points], [y for _, y in points])
            per_test.append(b * 1000)
            per_row.append(b * 1000 * (points[0][0] / min(config.factors)) / table_rows[proto])
            fixed.append(a)
            dev.append(deviation(a, b, *points[-1]) * 100)
        out.append(_figure(f"sweep.{proto}.per_test_ms", "sweep", f"sweep marginal cost per {name} row (one test: "
                           f"route or method x check), fitted over {how}{over}", "ms", per_test, loads, cmd, every,
                           _target("≤ 5 ms (issue 15)", 5.0)))
        out.append(_figure(f"sweep.{proto}.per_table_row_ms", "sweep", f"sweep marginal cost per {name} access-table "
                           "row (all its checks and credentials)", "ms", per_row, loads, cmd, every))
        out.append(_figure(f"sweep.{proto}.fixed_s", "sweep", f"sweep fixed cost, {name} (the fit at 0 rows)", "s",
                           fixed, loads, cmd, every))
        out.append(_figure(f"sweep.{proto}.dev_top_pct", "sweep", f"sweep {name}: the {top}x point's distance from "
                           "the fit", "%", dev, loads, cmd, every, _target("within ±10 % (issue 15)", 10.0,
                                                                           absolute=True)))
    for key, s in zip(keys, series, strict=True):
        f = key.removeprefix("sweep:x")
        out.append(_figure(f"sweep.wall.x{f}", "sweep", f"`pytest suites/test_authz_sweep.py` at {f}x rows: wall",
                           "s", _ok(s, lambda r: r.wall), _loads(s), cmd, s))
    return out


def _rss_figures(config: Config, runs: dict[str, list[Run]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for key, kind in [(f"full:{k}", k) for k in config.kinds] + [("xdist:n2", "process -n 2")]:
        series = runs.get(key, [])
        if not series:
            continue
        cmd = config.bench_command("rss", kind.split()[0])
        out.append(_figure(f"rss.test.{_slug(kind)}", "rss", f"peak RSS of the test process ({kind}; largest "
                           "pytest process)", "MB", _ok(series, lambda r: r.stats.get("test_peak_rss_bytes", 0) / MB),
                           _loads(series), cmd, series))
        out.append(_figure(f"rss.server.{_slug(kind)}.max", "rss", f"peak RSS of the largest server ({kind})", "MB",
                           _ok(series, lambda r: max(r.stats.get("server_peak_bytes", {}).values(), default=0) / MB),
                           _loads(series), cmd, series))
        if kind != "process":
            continue
        groups = sorted({server_group(label) for r in series for label in r.stats.get("server_peak_bytes", {})},
                        key=lambda g: (g.startswith("the largest"), g))
        for group in groups:
            def largest(run: Run, group: str = group) -> float | None:
                peaks = [v for label, v in run.stats.get("server_peak_bytes", {}).items()
                         if server_group(label) == group]
                return max(peaks) / MB if peaks else None

            out.append(_figure(f"rss.server.process.{_slug(group)}", "rss", f"peak RSS of {group} (process)",
                               "MB", _ok(series, largest), _loads(series), cmd, series))
    return out


def server_group(label: str) -> str:
    """The table row a server's peak RSS goes to: its profile's server, or one row per kind of extra server.

    The pool's servers are named after their profile; the suites start more (cluster nodes, the TLS
    enforcement and start-up checks' servers), and those share a row, showing the largest of them.
    """
    name = label.split(":", 1)[-1]
    for prefix, group in (("cluster-", "the largest cluster node"), ("tls-bad-", "the largest TLS enforcement server"),
                          ("tls-startup-", "the largest TLS start-up server")):
        if name.startswith(prefix):
            return group
    return f"server {name.split('#', 1)[0]}"

"""``python -m bench``'s own logic, in process (it never runs pytest here): fit, targets, plan, families,
and the sweep's bench-only row factor, which must be inert unless set."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.pytest_plugin import server_label
from bench.sections import FAMILIES, OTHER_FAMILY, SECTIONS, Config, family_of, judge, server_group
from bench.stats import deviation, fit_line, spread

ROOT = Path(__file__).resolve().parents[1]


def test_fit_recovers_a_line_and_measures_the_distance() -> None:
    fixed, slope = fit_line([100, 200, 400], [1.5, 2.0, 3.0])
    assert fixed == pytest.approx(1.0)
    assert slope == pytest.approx(0.005)
    assert deviation(fixed, slope, 400, 3.3) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        fit_line([1, 1], [2, 3])


def test_spread_ignores_missing_values() -> None:
    assert spread([3.0, None, 1.0, 2.0]) == (1.0, 2.0, 3.0)
    assert spread([None]) is None


def _fig(values: list[float | None], loads: list[float], limit: float = 45.0, load_max: float | None = 2.0,
         absolute: bool = False) -> dict[str, object]:
    return {"values": values, "loads": loads,
            "target": {"text": "t", "limit": limit, "absolute": absolute, "load_max": load_max}}


def test_targets_are_judged_on_the_median_and_excused_only_by_load() -> None:
    assert judge(_fig([40.0, 44.0, 60.0], [1.0, 1.0, 1.0]))[0] == "PASS"
    assert judge(_fig([46.0, 47.0, 40.0], [1.0, 1.5, 1.0]))[0] == "MISS"
    status, why = judge(_fig([46.0, 47.0, 50.0], [3.0, 3.5, 4.0]))
    assert status == "n/a" and "load" in why
    assert judge(_fig([40.0, 41.0, 42.0], [5.0, 5.0, 5.0]))[0] == "PASS"  # fast enough even under load
    assert judge(_fig([-12.0, -11.0, 3.0], [1.0] * 3, limit=10.0, load_max=None, absolute=True))[0] == "MISS"
    assert judge(_fig([None, None], [1.0, 1.0]))[0] == "n/a"


def test_every_suite_file_belongs_to_a_named_family() -> None:
    files = sorted(p.name for p in (ROOT / "suites").glob("test_*.py"))
    assert files
    unmapped = [f for f in files if family_of(f"suites/{f}") == OTHER_FAMILY]
    assert not unmapped, f"map these to a family in bench/sections.py FAMILIES: {unmapped}"
    assert family_of("suites/test_tls_rotation.py") == "rotation"
    assert family_of("suites/test_tls_posture.py") == "TLS"
    assert {name for name, _ in FAMILIES} >= {"auth", "authz sweep", "JWT", "TLS", "mTLS", "rotation", "cluster",
                                              "hardening"}


def test_the_default_run_is_planned_under_ten_minutes() -> None:
    config = Config(runs=3, sections=SECTIONS, kinds=("process", "docker", "external"))
    plan = config.plan()
    assert plan[0] == "full:process" and "xdist:n2" in plan and "sweep:x4" in plan
    assert config.estimate_s() < 600


def test_families_and_xdist_bring_the_process_run_whatever_the_targets() -> None:
    config = Config(runs=3, sections=("families",), kinds=("docker",))
    assert config.plan() == ["full:process"]
    assert Config(runs=3, sections=("sweep",), kinds=("process",)).plan() == ["sweep:x4"]
    assert Config(runs=3, sections=("sweep",), kinds=("process",), sweep_separate=True).plan() == [
        "sweep:x1", "sweep:x2", "sweep:x4"]


def test_server_labels_survive_a_clusters_random_tag() -> None:
    assert server_label("process", "c3ab12-node1") == "process:cluster-node1"
    assert server_label("process", "api-key") == "process:api-key"
    assert server_group("process:cluster-node2") == "the largest cluster node"
    assert server_group("process:tls-bad-expired-0") == "the largest TLS enforcement server"
    assert server_group("process:jwt") == "server jwt"
    assert server_group("process:rotation#2") == "server rotation"


def test_row_factor_is_inert_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from qdrant_conformance.fixtures.catalog.access import load_access_table
    from tests.test_access_table import _sweep_module

    sweep = _sweep_module()
    table = load_access_table()
    monkeypatch.delenv(sweep.ROW_FACTOR_ENV, raising=False)
    assert sweep.sweep_rows() == table
    monkeypatch.setenv(sweep.ROW_FACTOR_ENV, "2")
    doubled = sweep.sweep_rows()
    assert len(doubled) == 2 * len(table)
    assert len({row.id for row in doubled}) == len(doubled)
    assert {sweep._base_id(row.id) for row in doubled} == {row.id for row in table}
    monkeypatch.setenv(sweep.ROW_FACTOR_ENV, "lots")
    with pytest.raises(ValueError, match=sweep.ROW_FACTOR_ENV):
        sweep.sweep_rows()


def test_sweep_is_fitted_over_the_passes_of_one_run() -> None:
    from bench.runner import Run
    from bench.sections import Collected, figures

    def run(extra_s: float) -> Run:
        # 100 tests per pass and protocol; pass 1 also pays the module's setup (1 s).
        per_pass = {"1": 1.5, "2": 0.5, "3": 0.5, "4": 0.5 + extra_s}
        stats = {"pass_tests": {p: {k: 100 for k in per_pass} for p in ("rest", "grpc")},
                 "pass_seconds": {p: dict(per_pass) for p in ("rest", "grpc")}}
        return Run(label="sweep", argv=[], env={}, wall=30.0, counts={"pass": 800}, stats=stats, load=1.0,
                   others=0.2)

    config = Config(runs=3, sections=("sweep",), kinds=("process",))
    got = Collected(runs={"sweep:x4": [run(0.0), run(0.0), run(0.3)]})
    by_id = {f["id"]: f for f in figures(config, got)}
    per_test = by_id["sweep.rest.per_test_ms"]
    assert per_test["values"][0] == pytest.approx(5.0)
    assert per_test["status"] == "PASS"  # the median, 5.0 ms, is at the limit
    assert by_id["sweep.rest.fixed_s"]["values"][0] == pytest.approx(1.0)
    assert by_id["sweep.grpc.dev_top_pct"]["values"][0] == pytest.approx(0.0, abs=1e-9)
    assert by_id["sweep.grpc.dev_top_pct"]["values"][2] > 0
    assert by_id["sweep.wall.x4"]["values"] == [30.0, 30.0, 30.0]
    assert by_id["sweep.rest.per_test_ms"]["others"] == [0.2, 0.2, 0.2]


def test_the_docker_ratio_comes_with_the_machines_cpu_and_the_engines_floor() -> None:
    from bench.runner import Run
    from bench.sections import Collected, figures

    def full(machine: float, wall: float, starts: int) -> Run:
        return Run(label="full", argv=[], env={}, wall=wall, machine=machine, load=1.0, others=0.1,
                   counts={"pass": 10}, stats={"starts": [{"seconds": 1.0}] * starts})

    engine = Run(label="engine", argv=[], env={}, wall=3.0, machine=3.0, load=1.0, others=0.0,
                 stats={"engine_cpu_per_container": 0.5})
    config = Config(runs=1, sections=("full",), kinds=("process", "docker"))
    assert config.plan() == ["full:process", "full:docker", "engine:docker"]
    got = Collected(runs={"full:process": [full(30.0, 25.0, 20)], "full:docker": [full(60.0, 40.0, 20)],
                          "engine:docker": [engine]})
    by_id = {f["id"]: f for f in figures(config, got)}
    assert by_id["full.docker_ratio"]["values"] == [pytest.approx(1.6)]
    assert by_id["full.docker_machine_cpu_ratio"]["values"] == [pytest.approx(2.0)]
    assert by_id["full.docker.engine_cpu"]["values"] == [pytest.approx(0.5)]
    # (30 + 20 starts x 0.5) / 30
    assert by_id["full.docker_engine_floor"]["values"] == [pytest.approx(40 / 30)]
    failed = Run(label="engine", argv=[], env={}, problem="engine probe failed: no sleep in the image")
    got.runs["engine:docker"] = [failed]
    by_id = {f["id"]: f for f in figures(config, got)}
    assert by_id["full.docker_engine_floor"]["values"] == [None]
    assert by_id["full.docker_engine_floor"]["status"] == ""


def test_a_saved_run_keeps_the_machines_cpu() -> None:
    from bench.runner import Run

    run = Run(label="full", argv=["python"], env={}, wall=2.0, machine=3.25)
    assert Run.from_dict(run.to_dict()).machine == 3.25
    old = run.to_dict()
    del old["machine_cpu_s"]  # a document saved before the figure existed
    assert Run.from_dict(old).machine is None

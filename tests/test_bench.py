"""`gpusim bench`: the suite on tiny sizes (seconds), its files, and the peers' checks.

JAX and GPU rows are exercised where JAX or CuPy and a device are present and otherwise
must say why they did not run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gpusim.backends.devices import cupy_or_none
from gpusim.bench import peers
from gpusim.bench.jax_market import jax_device, load_jax
from gpusim.bench.results import slope
from gpusim.bench.rows import Sizes
from gpusim.bench.suite import run_suite
from gpusim.cli import main
from gpusim.model.market import market_params

TINY = Sizes(paths=(300, 600), months=(6, 12), months_at=12, paths_at=300, block=256,
             repeats=1, jax_impls=("threefry2x32",), full_paths=300, block_sweep=(256,),
             host_paths=300, host_block=256)
"""Seconds on the CPU (JAX adds a compile per shape)."""

HAVE_JAX = load_jax()[0] is not None
HAVE_GPU = cupy_or_none() is not None


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("bench") / "results.json"
    result = run_suite("quick", "auto", out, sizes={"cpu": TINY, "gpu": TINY},
                       log=lambda line: None)
    return result, out


def test_the_suite_writes_json_markdown_and_plots(tiny_run):
    _, out = tiny_run
    saved = json.loads(out.read_text())
    assert saved["suite"] == "quick"
    for key in ("hostname", "cpu", "cpus_usable", "python", "numpy", "gpusim", "date", "gpu"):
        assert key in saved["machine"]
    assert "numpy" in saved["libraries"]
    assert saved["settings"]["sizes"]["cpu"]["paths"] == [300, 600]
    assert {g["goal"].split(":")[0] for g in saved["goals"]} == {"CPU", "GPU"}
    text = out.with_suffix(".md").read_text()
    assert "| device | row |" in text and "gpusim numpy (reference)" in text
    assert (out.parent / "results-paths.png").stat().st_size > 0
    assert (out.parent / "results-months.png").stat().st_size > 0


def test_cpu_rows_measure_cold_and_warm_along_both_curves(tiny_run):
    result, _ = tiny_run
    rows = {r["key"]: r for r in result["cpu"]["rows"]}
    for key in ("gpusim_numpy", "plain_numpy", "gpusim_numpy_full"):
        assert rows[key]["status"] == "ok", rows[key]["status"]
        head = rows[key]["headline"]
        assert head["cold_s"] > 0 and 0 < head["warm_s"] <= max(head["times_s"])
        assert head["path_months_per_s"] == pytest.approx(head["path_months"] / head["warm_s"])
    points = {(p["paths"], p["months"]) for p in rows["plain_numpy"]["points"]}
    assert points == {(300, 12), (600, 12), (300, 6)}
    assert rows["gpusim_numpy_full"]["model"] == "full"


def test_plain_numpy_passes_its_checks(tiny_run):
    result, _ = tiny_run
    rows = {r["key"]: r for r in result["cpu"]["rows"]}
    assert rows["plain_numpy"]["distribution_check"]["pass"]
    checks = {c["peer"]: c for c in result["cpu"]["equation_checks"]}
    assert checks["plain_numpy"]["pass"]


def test_jax_rows_run_or_say_why(tiny_run):
    result, _ = tiny_run
    jax_rows = [r for r in result["cpu"]["rows"] if r["key"].startswith("jax_cpu_")]
    assert jax_rows
    for row in jax_rows:
        if HAVE_JAX:
            assert row["status"] == "ok", row["status"]
            assert row["distribution_check"]["pass"]
        else:
            assert row["status"] == "not installed"


def test_gpu_rows_run_or_say_why(tiny_run):
    result, _ = tiny_run
    rows = result["gpu"]["rows"]
    assert any(r["key"] == "fused_full_summary" for r in rows)
    if HAVE_GPU:
        assert result["gpu"]["bandwidth"]["d2d_copy_bytes_per_s"] > 0
        assert all(r["status"] == "ok" for r in rows if not r["key"].startswith("jax_"))
        assert all(r["distribution_check"]["pass"] for r in rows if r["distribution_check"])
        assert "fused_full_cube" in result["fractions"]
    else:
        assert all(r["status"].startswith("no GPU") and not r["headline"] for r in rows)
        assert all(g["met"] is None and g["note"] for g in result["goals"]
                   if g["goal"].startswith("GPU"))


@pytest.mark.skipif(not HAVE_JAX, reason="JAX is not installed")
def test_jax_market_follows_the_engine_fed_its_draws():
    from gpusim.bench.jax_market import jax_equation_check

    config, _ = peers.load_market_config(None, 24)
    device, _ = jax_device("cpu")
    check = jax_equation_check(config, market_params(config), device, seed=5, n=512)
    assert check["pass"], check["max_rel_err"]


def test_short_horizons_drop_items_after_their_last_month():
    config, _ = peers.load_market_config(None, 12)
    assert config.horizon_months == 12
    assert all(launch.month <= "2026-12" for launch in config.market.price.launches)
    full = peers.load_full_config(None, 12)
    assert full is None or full.horizon_months == 12


def test_slope_of_linear_costs_is_one():
    points = [{"paths": n, "warm_s": 1e-6 * n} for n in (10, 100, 1000)]
    assert slope(points, "paths") == pytest.approx(1.0)
    assert slope(points[:1], "paths") is None


def test_distribution_check_flags_a_shifted_distribution():
    rng = np.random.default_rng(0)
    a = {name: np.exp(rng.standard_normal(20_000)) for name in peers.CHECKED}
    b = {name: np.exp(rng.standard_normal(20_000) + 0.1) for name in peers.CHECKED}
    assert peers.distribution_check(a, a)["pass"]
    assert not peers.distribution_check(a, b)["pass"]


@pytest.mark.skipif(HAVE_GPU, reason="a GPU is present")
def test_cli_bench_on_a_gpu_without_one_is_bad_input(tmp_path, capsys):
    assert main(["bench", "--device", "gpu", "--out", str(tmp_path / "x.json")]) == 2
    assert "no GPU" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_sketch_check_holds_sketches_to_their_bound():
    """A summary row's sketches pass against the exact values of the same paths, and fail
    once the values move by more than the sketch's relative accuracy."""
    from gpusim import sketch

    rng = np.random.default_rng(1)
    ref = {name: np.exp(rng.standard_normal(5000)) for name in peers.CHECKED}

    def sketches(scale: float) -> dict[str, np.ndarray]:
        out = {}
        for name, values in ref.items():
            out[name] = np.zeros(sketch.BUCKETS, np.int64)
            sketch.accumulate(out[name][None], (scale * values)[None])
        return out

    assert peers.sketch_check(ref, sketches(1.0))["pass"]
    assert not peers.sketch_check(ref, sketches(1.05))["pass"]


def test_native_rows_run_next_to_the_numpy_reference(tiny_run):
    """One thread and all cores, market and full model, cube and summary, both dtypes;
    each row's last month agrees with the reference's (same paths, same draws)."""
    from gpusim.backends.native import native

    result, _ = tiny_run
    rows = {r["key"]: r for r in result["cpu"]["rows"]}
    keys = [f"native_{m}_{mode}_{t}" for m in ("market", "full") for mode in ("cube", "summary")
            for t in ("1t", "mt")] + ["native_full_summary_mt_float32",
                                      "native_market_cube_mt_float32"]
    assert rows["gpusim_numpy_full_summary"]["status"] == "ok"
    if native().library is None:
        assert all(rows[k]["status"].startswith("no native build") for k in keys)
        return
    for key in keys:
        assert rows[key]["status"] == "ok", (key, rows[key]["status"])
    for key in ("native_market_cube_1t", "native_market_summary_mt"):
        assert rows[key]["distribution_check"]["pass"], key
    goals = {g["goal"]: g for g in result["goals"]}
    goal = goals["CPU: native (all cores) ÷ gpusim numpy, full model summary [×]"]
    assert goal["value"] > 0 and goal["target"] == 3

"""Summary stores (sketches) and exact resume of interrupted runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr
import yaml
import zarr
from helpers import LESSOR, MINER, SMALL, firms_config
from test_store import assert_same_values

from gpusim import run, sketch
from gpusim.cli import main
from gpusim.config import apply_overrides
from gpusim.errors import InputError
from gpusim.store import CONTROL_GROUP, open_store, quiet_zarr


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("both")
    config = firms_config()
    cube = run(config, tmp / "cube.zarr", paths=6000, seed=11, block_paths=1500)
    summary = run(config, tmp / "summary.zarr", paths=6000, seed=11, block_paths=1500,
                  mode="summary")
    return open_store(cube), open_store(summary), summary


def test_sketch_bound_holds_against_numpy():
    rng = np.random.default_rng(0)
    values = np.stack([rng.lognormal(0, 3, 20_001), -rng.lognormal(2, 1, 20_001),
                       rng.normal(0, 1e6, 20_001), np.zeros(20_001)])
    counts = np.zeros((4, sketch.BUCKETS), np.int64)
    for part in np.array_split(values, 7, axis=1):  # merged from blocks
        sketch.accumulate(counts, part)
    q = [0.0, 0.001, 0.05, 0.5, 0.95, 0.999, 1.0]
    exact = np.quantile(values, q, axis=1, method="lower").T
    got = sketch.quantiles(counts, q)
    tiny = np.abs(exact) < sketch.MIN_MAGNITUDE
    assert np.all(np.abs(got - exact)[~tiny] <= sketch.ALPHA * np.abs(exact)[~tiny])
    assert np.all(np.abs(got[tiny]) < sketch.MIN_MAGNITUDE)


def test_summary_store_has_no_per_path_monthly_data(both):
    _, summary = both[:2]
    for name, var in summary.data_vars.items():
        if "path" in var.dims:
            assert name in ("default_month", "loss_total", "exposure_at_default")
            assert var.dims in (("path", "firm"), ("path", "facility"))
    assert summary.attrs["mode"] == "summary"
    assert summary.rental_price_sketch.sum("bucket").min() == 6000


def test_sketch_quantiles_agree_with_the_cube(both):
    cube, summary = both[:2]
    q = (0.01, 0.1, 0.5, 0.9, 0.99)
    for variable in ("rental_price", "collateral_value", "utilization", "cash", "balance"):
        exact = cube[variable].load().quantile(list(q), dim="path", method="lower")
        approx = summary.gpusim.fan(variable, q)
        exact, approx = xr.align(exact, approx, join="exact")
        err = np.abs(approx - exact)
        bound = sketch.ALPHA * np.abs(exact) + sketch.MIN_MAGNITUDE
        assert bool((err <= bound).all()), variable


def test_credit_numbers_are_exact_in_summary_mode(both):
    cube, summary = both[:2]
    xr.testing.assert_equal(cube.gpusim.default_curve(), summary.gpusim.default_curve())
    xr.testing.assert_allclose(cube.gpusim.ltv_breach_curve(),
                               summary.gpusim.ltv_breach_curve())
    for method in ("expected_loss", "var", "es"):
        xr.testing.assert_equal(getattr(cube.gpusim, method)(),
                                getattr(summary.gpusim, method)())
    bust = (cube.regime == 1).sum("path")
    np.testing.assert_array_equal(bust, summary.bust_count)


def test_accessor_equals_plain_numpy_on_a_cube(both):
    cube, _ = both[:2]
    defaulted = cube.defaulted.values.mean(axis=0)  # (month, firm)
    np.testing.assert_allclose(cube.gpusim.default_curve().values, defaulted)
    fan = cube.gpusim.fan("rental_price", (0.5,))
    np.testing.assert_allclose(fan.sel(quantile=0.5),
                               np.median(cube.rental_price.values, axis=0))
    assert cube.gpusim.mode == "cube"


def test_summary_cli_reads_a_summary_store(both, capsys):
    assert main(["summary", str(both[2])]) == 0
    printed = capsys.readouterr().out
    assert "rental_price" in printed and "lessor" in printed and "ES 97.5%" in printed


# --- resume ---------------------------------------------------------------------------------

def write_firm_config(tmp_path):
    raw = apply_overrides(SMALL, [])
    raw["firms"] = [apply_overrides(LESSOR, []), apply_overrides(MINER, [])]
    path = tmp_path / "firms.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def kill_mid_run(args, store, blocks, min_done=2):
    """Start `gpusim run`, SIGKILL it once at least min_done (not all) blocks are done."""
    proc = subprocess.Popen([sys.executable, "-m", "gpusim.cli", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done_dir = store / CONTROL_GROUP / "blocks_done" / "c"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        done = len(list(done_dir.glob("*"))) if done_dir.exists() else 0
        if min_done <= done < blocks:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return done
        time.sleep(0.005)
    proc.wait()
    return None


@pytest.mark.parametrize("mode", ["cube", "summary"])
def test_killed_run_resumes_to_identical_store(tmp_path, mode, monkeypatch):
    config = write_firm_config(tmp_path)
    common = [str(config), "--paths", "24000", "--block-paths", "1000", "--seed", "5",
              "--mode", mode, "--quiet", "--device", "cpu"]
    whole = tmp_path / "whole.zarr"
    assert main(["run", *common, "--out", str(whole)]) == 0
    broken = tmp_path / "broken.zarr"
    if mode == "summary":
        monkeypatch.setenv("GPUSIM_CHECKPOINT_SECONDS", "0")
    done = kill_mid_run(["run", *common, "--out", str(broken)], broken, blocks=24)
    if done is None:
        pytest.skip("the run finished before it could be killed")
    with pytest.raises(InputError, match="incomplete"):
        open_store(broken)
    assert main(["run", *common, "--out", str(broken), "--resume"]) == 0
    assert_same_values(open_store(whole).compute(), open_store(broken).compute())


def test_resume_refuses_a_different_run(tmp_path, capsys):
    config = write_firm_config(tmp_path)
    out = tmp_path / "s.zarr"
    base = ["run", str(config), "--paths", "500", "--quiet", "--out", str(out)]
    assert main([*base, "--seed", "1"]) == 0
    assert main([*base, "--seed", "2", "--resume"]) == 2
    assert "seed: 1 → 2" in capsys.readouterr().err
    assert main([*base, "--seed", "1", "--mode", "cube", "--resume"]) == 2
    assert "mode: 'summary' → 'cube'" in capsys.readouterr().err
    assert main([*base, "--seed", "1", "--set", "market.price.initial=2.1", "--resume"]) == 2
    assert "market.price.initial: " in capsys.readouterr().err
    with quiet_zarr():  # zarr's note that consolidated metadata is not in the v3 spec
        zarr.open_group(out, mode="r+").attrs["backend"] = "gpu"  # as if begun on a GPU
        zarr.consolidate_metadata(str(out))
    assert main([*base, "--seed", "1", "--device", "cpu", "--resume"]) == 2
    assert "backend: 'gpu' → 'cpu'" in capsys.readouterr().err
    assert main(["run", str(config), "--quiet", "--out", str(tmp_path / "new.zarr"),
                 "--resume"]) == 2
    assert "not a gpusim store to resume" in capsys.readouterr().err


def test_resume_of_a_finished_run_changes_nothing(tmp_path):
    config = firms_config()
    out = run(config, tmp_path / "s.zarr", paths=900, seed=3, block_paths=300)
    before = open_store(out).compute()
    run(config, out, paths=900, seed=3, block_paths=300, resume=True)
    assert_same_values(before, open_store(out).compute())


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

magnitudes = st.floats(min_value=1e-9, max_value=1e17, allow_nan=False)
signed = st.one_of(magnitudes, magnitudes.map(lambda x: -x), st.just(0.0))


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.integers(1, 300), elements=signed),
       st.floats(min_value=0.0, max_value=1.0))
def test_sketch_quantile_is_within_alpha_of_the_lower_order_statistic(values, q):
    counts = np.zeros((1, sketch.BUCKETS), np.int64)
    sketch.accumulate(counts, values[None, :])
    exact = np.quantile(values, q, method="lower")
    got = sketch.quantiles(counts, q)[0, 0]
    assert abs(got - exact) <= sketch.ALPHA * abs(exact) + 1e-300


def test_sketch_covers_token_demand_far_above_1e18():
    rng = np.random.default_rng(5)
    values = rng.lognormal(np.log(1e21), 1.0, 5001)
    counts = np.zeros((1, sketch.BUCKETS), np.int64)
    sketch.accumulate(counts, values[None, :])
    q = [0.05, 0.5, 0.95]
    exact = np.quantile(values, q, method="lower")
    assert np.all(np.abs(sketch.quantiles(counts, q)[0] - exact) <= sketch.ALPHA * exact)

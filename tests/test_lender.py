"""The lender's views equal plain numpy on the per-path data, on cube and summary stores."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import xarray as xr
from helpers import firms_config

from gpusim import lender, run, sketch
from gpusim.cli import main
from gpusim.errors import InputError

OPENING = np.array([1.0e9, 5.0e8, 3.0e8])
"""The facilities' opening balances in tests/helpers.py (ddtl, notes, gpu_loan)."""
FIRM_OF = [0, 0, 1]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("lender")
    return {mode: xr.open_zarr(run(firms_config(), root / f"{mode}.zarr", paths=600, seed=8,
                                   block_paths=300, mode=mode))
            for mode in ("cube", "summary")}


@pytest.fixture(scope="module")
def numpy_views(stores):
    """EAD and the held exposure per path, month and facility, by explicit loops."""
    ds = stores["cube"].compute()
    balance, dm = ds.balance.values, ds.default_month.values[:, FIRM_OF]
    ead = np.zeros(dm.shape)
    held = balance.copy()
    for p, f in zip(*np.nonzero(dm >= 0), strict=True):
        m = dm[p, f]
        ead[p, f] = OPENING[f] if m == 0 else balance[p, m - 1, f]
        held[p, m:, f] = ead[p, f]
    return {"ead": ead, "held": held, "dm": dm, "loss": ds.loss_total.values}


def test_exposure_held_at_default_is_numpys(stores, numpy_views):
    view = stores["cube"].gpusim.exposure(0.95)
    assert view["ee"].chunks is not None  # lazy on a dask-backed cube
    view = view.compute()
    held = numpy_views["held"]
    np.testing.assert_allclose(view.ee, held.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(view.ee_se, held.std(axis=0, ddof=1) / np.sqrt(600), atol=1e-3)
    np.testing.assert_allclose(view.pfe, np.quantile(held, 0.95, axis=0), rtol=1e-12)
    assert np.all(view.pfe_low <= view.pfe * (1 + 1e-12))
    assert np.all(view.pfe * (1 - 1e-12) <= view.pfe_high)
    np.testing.assert_allclose(lender.exposure_at_default(stores["cube"]), numpy_views["ead"])


def test_summary_exposure_is_the_recorded_balance_within_the_sketch_bound(stores):
    exact = stores["cube"].gpusim.exposure(at_default="zero").compute()
    sketched = stores["summary"].gpusim.exposure(at_default="zero")
    assert sketched.attrs["relative_accuracy"] == sketch.ALPHA
    balance = stores["cube"].balance.values
    np.testing.assert_allclose(exact.ee, balance.mean(axis=0), rtol=1e-12)
    bound = sketch.ALPHA * exact.ee + sketch.MIN_MAGNITUDE
    assert np.all(np.abs(sketched.ee - exact.ee) <= bound)
    lower = np.quantile(balance, 0.95, axis=0, method="lower")
    assert np.all(np.abs(sketched.pfe - lower) <= sketch.ALPHA * lower + sketch.MIN_MAGNITUDE)
    assert np.all((sketched.pfe_low <= exact.pfe_low) & (exact.pfe_high <= sketched.pfe_high))


def test_summary_exposure_held_at_default_is_the_cubes_within_the_sketch_bound(stores):
    """EE: the sketch part (the recorded balance) within α of the cube's, the EAD part
    exact; the held sketches are exactly those of the cube's held balance."""
    cube, summary = stores["cube"], stores["summary"]
    exact = cube.gpusim.exposure(at_default="hold").compute()
    zero = cube.gpusim.exposure(at_default="zero").compute()
    sketched = summary.gpusim.exposure(at_default="hold")
    assert sketched.attrs["at_default"] == "hold"
    assert sketched.attrs["relative_accuracy"] == sketch.ALPHA
    bound = sketch.ALPHA * zero.ee + 1e-6 * exact.ee
    assert np.all(np.abs(sketched.ee - exact.ee) <= bound)
    assert np.any(exact.ee - zero.ee > 1e6)  # defaults do change the exposure here
    counts, total, _ = lender.held_sketch(summary)
    expected = np.zeros_like(counts)
    sketch.accumulate(expected, lender.held_balance(cube).transpose(
        "month", "facility", "path").values)
    np.testing.assert_array_equal(counts, expected)
    np.testing.assert_allclose(total / 600, exact.ee - zero.ee, rtol=1e-9, atol=1e-3)  # USD
    lower = np.quantile(lender.held_balance(cube).values, 0.95, axis=0, method="lower")
    assert np.all(np.abs(sketched.pfe - lower) <= sketch.ALPHA * lower + sketch.MIN_MAGNITUDE)
    assert np.all((sketched.pfe_low <= exact.pfe_low) & (exact.pfe_high <= sketched.pfe_high))


def test_summary_loss_given_default_is_the_cubes_exactly(stores):
    cube, summary = stores["cube"], stores["summary"]
    np.testing.assert_array_equal(summary.exposure_at_default, cube.exposure_at_default)
    xr.testing.assert_identical(summary.gpusim.loss_given_default(),
                                cube.gpusim.loss_given_default())


def test_what_a_store_cannot_give_is_a_clear_error(stores):
    old = stores["summary"].drop_vars("exposure_at_default")  # as written before it was kept
    assert not lender.holds_at_default(old) and lender.holds_at_default(stores["summary"])
    with pytest.raises(InputError, match="written before gpusim kept each path's exposure"):
        old.gpusim.exposure(at_default="hold")
    with pytest.raises(InputError, match="written before gpusim kept each path's exposure"):
        old.gpusim.loss_given_default()
    old.gpusim.exposure(at_default="zero")  # the recorded balance still works
    with pytest.raises(InputError, match="at_default='held'"):
        stores["cube"].gpusim.exposure(at_default="held")
    with pytest.raises(InputError, match=r"q=1\.5"):
        stores["cube"].gpusim.exposure(q=1.5)


def test_an_old_cube_derives_the_exposure_at_default(stores, numpy_views):
    old = stores["cube"].drop_vars("exposure_at_default")
    np.testing.assert_allclose(lender.exposure_at_default(old).transpose("path", "facility"),
                               numpy_views["ead"], rtol=0)


def test_default_timing_is_numpys_and_the_same_on_both_stores(stores):
    timing = stores["cube"].gpusim.default_timing().compute()
    xr.testing.assert_allclose(timing, stores["summary"].gpusim.default_timing())
    dm = stores["cube"].default_month.values
    for i in range(2):
        year = np.where(dm[:, i] >= 0, dm[:, i] // 12 + 1, 0)
        np.testing.assert_allclose(timing.probability.isel(firm=i),
                                   [(year == y).mean() for y in (1, 2)])
        survivors = [(year == 0).sum() + (year >= y).sum() for y in (1, 2)]
        np.testing.assert_allclose(timing.hazard.isel(firm=i),
                                   [(year == y).sum() / s for y, s in zip((1, 2), survivors,
                                                                          strict=True)])
    np.testing.assert_allclose(timing.probability.sum("year"), (dm >= 0).mean(axis=0))
    assert list(timing.months.values) == [12, 12]


def test_loss_by_year_of_default_adds_up_to_the_expected_loss(stores, numpy_views):
    by_year = stores["cube"].gpusim.loss_by_default_year().compute()
    xr.testing.assert_allclose(by_year, stores["summary"].gpusim.loss_by_default_year())
    np.testing.assert_allclose(by_year.value.sum("year"), numpy_views["loss"].mean(axis=0))
    first = np.where((numpy_views["dm"] >= 0) & (numpy_views["dm"] < 12),
                     numpy_views["loss"], 0.0)
    np.testing.assert_allclose(by_year.value.sel(year=1), first.mean(axis=0))
    np.testing.assert_allclose(by_year.se.sel(year=1), first.std(axis=0, ddof=1) / np.sqrt(600))


def test_loss_given_default_is_numpys(stores, numpy_views):
    lgd = stores["cube"].gpusim.loss_given_default()
    ead, dm, loss = numpy_views["ead"], numpy_views["dm"], numpy_views["loss"]
    for f in range(3):
        defaulted = (dm[:, f] >= 0) & (ead[:, f] > 0)
        ratio = loss[defaulted, f] / ead[defaulted, f]
        assert int(lgd.defaults[f]) == defaulted.sum()
        np.testing.assert_allclose(lgd.lgd_mean[f], ratio.mean())
        np.testing.assert_allclose(lgd.lgd.isel(facility=f),
                                   np.quantile(ratio, lender.LGD_QUANTILES))
        np.testing.assert_allclose(lgd.recovery.isel(facility=f),
                                   np.quantile(1 - ratio, lender.LGD_QUANTILES))


def test_summary_json_carries_the_lender_views(stores, tmp_path, capsys):
    store = run(firms_config(), tmp_path / "s.zarr", paths=200, seed=1, mode="summary")
    assert main(["summary", str(store), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    facility = doc["facilities"][0]
    assert facility["exposure"]["at_default"] == "hold" and facility["lgd"]["defaults"] > 0
    assert len(facility["exposure"]["months"]) == 24
    assert [p["year"] for p in facility["loss_by_default_year"]] == [1, 2]
    assert set(doc["firms"][0]["default_timing"][0]) == {"year", "months", "probability",
                                                         "hazard"}
    assert main(["summary", str(store)]) == 0
    assert "default timing" in capsys.readouterr().out


def test_loss_given_default_of_a_facility_without_defaults_is_nan_quietly():
    """Two facilities of two firms over four paths; only the first firm defaults (twice):
    its facility's LGD is loss / EAD over those paths, the other's is NaN, with no
    RuntimeWarning reaching the user (a small run prints this table)."""
    ds = xr.Dataset(
        {"default_month": (("path", "firm"), [[3, -1], [-1, -1], [5, -1], [-1, -1]]),
         "exposure_at_default": (("path", "facility"), [[100.0, 0], [0, 0], [50.0, 0], [0, 0]]),
         "loss_total": (("path", "facility"), [[40.0, 0], [0, 0], [10.0, 0], [0, 0]]),
         "facility_firm": ("facility", ["a", "b"])},
        coords={"firm": ["a", "b"], "facility": ["fa", "fb"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lgd = lender.loss_given_default(ds, quantiles=(0.5,))
    assert lgd["defaults"].values.tolist() == [2, 0]
    np.testing.assert_allclose(lgd["lgd_mean"].values[0], (0.4 + 0.2) / 2)
    np.testing.assert_allclose(lgd["lgd"].sel(quantile=0.5).values[0], 0.3)
    assert np.isnan(lgd["lgd"].values[:, 1]).all() and np.isnan(lgd["lgd_mean"].values[1])
    assert np.isnan(lgd["recovery"].values[:, 1]).all()

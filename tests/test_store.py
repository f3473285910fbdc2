"""Stores written block by block: block invariance, reproducibility, layout."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
import zarr
from helpers import small_config

from gpusim import run, simulate
from gpusim.cli import main
from gpusim.outputs import MARKET as MARKET_OUTPUTS

RUN_SPECIFIC = {"run_started", "run_finished", "block_paths", "resumed_on", "config_given",
                "history",
                "backend",
                "device", "store_id"}
"""Attributes that say how a run went, not what it computed."""


def assert_same_values(a: xr.Dataset, b: xr.Dataset) -> None:
    """Bit-for-bit equal data, coordinates and attributes (chunking may differ)."""
    assert set(a.data_vars) == set(b.data_vars)
    for name in a.variables:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
        assert a[name].attrs == b[name].attrs
    keep = set(a.attrs) & set(b.attrs) - RUN_SPECIFIC
    assert {k: a.attrs[k] for k in keep} == {k: b.attrs[k] for k in keep}
    assert set(a.attrs) - RUN_SPECIFIC == set(b.attrs) - RUN_SPECIFIC


@pytest.fixture
def small_path(small_yaml):
    return str(small_yaml)


def test_block_size_does_not_change_a_single_bit(small_path, tmp_path):
    a, b = tmp_path / "a.zarr", tmp_path / "b.zarr"
    assert main(["run", small_path, "--paths", "9000", "--seed", "4", "--block-paths", "1000",
                 "--out", str(a), "--quiet", "--mode", "cube"]) == 0
    assert main(["run", small_path, "--paths", "9000", "--seed", "4", "--block-paths", "4096",
                 "--out", str(b), "--quiet", "--mode", "cube"]) == 0
    ds_a, ds_b = xr.open_zarr(a), xr.open_zarr(b)
    assert ds_a.rental_price.encoding["chunks"] == (1000, 24)
    assert ds_b.rental_price.encoding["chunks"] == (4096, 24)
    assert_same_values(ds_a, ds_b)


def test_same_seed_same_paths_other_seed_other_paths(tmp_path):
    config = small_config()
    one = run(config, tmp_path / "1.zarr", paths=500, seed=9, block_paths=128)
    two = run(config, tmp_path / "2.zarr", paths=500, seed=9, block_paths=500)
    three = run(config, tmp_path / "3.zarr", paths=500, seed=10, block_paths=128)
    assert_same_values(xr.open_zarr(one), xr.open_zarr(two))
    differs = xr.open_zarr(three).rental_price.values != xr.open_zarr(one).rental_price.values
    assert differs[:, 1:].all()  # month 0 is the common start value


def test_store_equals_in_memory_simulation(tmp_path):
    config = small_config()
    store = run(config, tmp_path / "s.zarr", paths=700, seed=3, block_paths=256)
    assert_same_values(xr.open_zarr(store).compute(), simulate(config, paths=700, seed=3))


def test_store_layout_is_zarr_v3_consolidated_and_described(tmp_path):
    store = run(small_config(), tmp_path / "s.zarr", paths=300, seed=1, block_paths=100)
    group = zarr.open_group(store, mode="r")
    assert group.metadata.zarr_format == 3
    assert group.metadata.consolidated_metadata is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(store)
    assert ds.rental_price.chunks == ((100, 100, 100), (24,))
    assert set(ds.data_vars) == set(MARKET_OUTPUTS)
    for var in ds.data_vars.values():
        assert var.dims == ("path", "month")
        assert var.attrs["units"] and var.attrs["long_name"]
    assert ds.attrs["seed"] == 1 and ds.attrs["paths"] == 300
    assert np.issubdtype(ds.month.dtype, np.datetime64)


def test_overwrite_replaces_a_store(tmp_path):
    out = tmp_path / "s.zarr"
    run(small_config(), out, paths=100, seed=1)
    run(small_config(), out, paths=50, seed=2, overwrite=True)
    assert xr.open_zarr(out).sizes["path"] == 50


def test_summary_prints_quantiles_at_months_12_and_last(tmp_path, capsys):
    out = tmp_path / "s.zarr"
    run(small_config(), out, paths=400, seed=1)
    assert main(["summary", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in ("rental_price", "collateral_value", "utilization", "token_demand"):
        assert name in printed
    assert "2027-01" in printed and "2027-12" in printed and "p50" in printed


def test_firm_store_is_block_invariant_and_named(tmp_path):
    from helpers import firms_config

    config = firms_config()
    a = run(config, tmp_path / "a.zarr", paths=1000, seed=3, block_paths=300)
    b = run(config, tmp_path / "b.zarr", paths=1000, seed=3, block_paths=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds_a, ds_b = xr.open_zarr(a), xr.open_zarr(b)
    assert_same_values(ds_a, ds_b)
    assert list(ds_a.facility.values) == ["ddtl", "notes", "gpu_loan"]
    assert ds_a.cash.encoding["chunks"] == (300, 24, 2)


@pytest.mark.parametrize("block_paths", [0, 2**31])
def test_bad_block_paths_are_rejected_before_writing(tmp_path, block_paths):
    from gpusim.errors import InputError

    with pytest.raises(InputError, match=f"block_paths = {block_paths}: expected a positive"):
        run(small_config(), tmp_path / "z.zarr", paths=10, block_paths=block_paths)
    assert not (tmp_path / "z.zarr").exists()

"""Stores follow CF-1.11 where CF has something to say (docs/conventions.md): global
attributes, the time axis, flags, units, string coordinates other zarr readers know."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from helpers import firms_config

from gpusim import run, simulate
from gpusim.outputs import OUTPUTS
from gpusim.store import open_store

cf_xarray = pytest.importorskip("cf_xarray")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "conventions.md"
UDUNITS = {"1", "1/year"}
"""The UDUNITS units the outputs use; every other unit must be explained in the docs."""


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> xr.Dataset:
    out = tmp_path_factory.mktemp("cf") / "cube.zarr"
    run(firms_config(), out, paths=64, seed=5, block_paths=32)
    return open_store(out)


def test_global_attributes(store):
    assert store.attrs["Conventions"] == "CF-1.11"
    assert store.attrs["source"].startswith("gpusim ")
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00: gpusim .* 64 paths",
                    store.attrs["history"])


def test_cf_xarray_finds_the_time_axis(store):
    assert store.cf.axes["T"] == ["month"]
    assert store.cf["time"].name == "month"
    assert np.issubdtype(store.month.dtype, np.datetime64)


def test_cf_xarray_finds_the_flags(store):
    flags = {name for name in store.data_vars if store[name].cf.is_flag_variable}
    assert flags == {"regime", "ltv_breach", "defaulted"}
    breach = float((store.ltv_breach.cf == "breach").mean())
    assert breach == pytest.approx(float(store.ltv_breach.mean()))
    assert breach > 0  # the small firms scenario breaches on some paths


def test_units_are_udunits_or_documented():
    documented = set(re.findall(r"^\| `([^`]+)`", DOCS.read_text(), flags=re.M))
    for output in OUTPUTS:
        assert output.units in UDUNITS | documented, output.name


def test_default_months_read_as_dates(store):
    dates = store.gpusim.default_dates().compute()
    index = store.default_month.values
    assert (index >= 0).any() and (index < 0).any()
    np.testing.assert_array_equal(np.isnat(dates.values), index < 0)
    hit = index >= 0
    np.testing.assert_array_equal(dates.values[hit], store.month.values[index[hit]])
    assert "index into the month coordinate" in store.default_month.attrs["comment"]


def test_in_memory_cube_has_the_same_attributes(store):
    ds = simulate(firms_config(), paths=8, seed=5)
    for name in ds.variables:
        assert ds[name].attrs == store[name].attrs, name
    assert ds.attrs["Conventions"] == store.attrs["Conventions"]


def test_string_coordinates_use_the_registered_string_type(store, tmp_path):
    out = tmp_path / "s.zarr"
    run(firms_config(), out, paths=8, seed=1, mode="summary")
    for name in ("firm", "facility", "facility_firm"):
        meta = json.loads((out / name / "zarr.json").read_text())
        assert meta["data_type"] == "string", name
        assert meta["codecs"][0]["name"] == "vlen-utf8"

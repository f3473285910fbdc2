"""The per-path exposure at default (`exposure_at_default`): the numpy reference, the host
build of the kernel and the native build agree path by path, and on a cube it is exactly
what the balances imply (the balance entering the default month)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from helpers import firms_config
from test_kernels import needs_cxx
from test_native import needs_native

from gpusim import lender, run
from gpusim.backends import host
from gpusim.backends.native import NativeBackend
from gpusim.backends.reference import simulate_block

OPENING = np.array([1.0e9, 5.0e8, 3.0e8])
"""The facilities' opening balances in tests/helpers.py (ddtl, notes, gpu_loan)."""
FIRM_OF = [0, 0, 1]
MONTH0 = "firms.1.opening_cash=-1e8"
"""An override under which the miner (gpu_loan) defaults in month 0 on every path."""


def explicit_ead(out: dict) -> np.ndarray:
    """EAD (facility, path) by a loop over the defaulted paths of month-major outputs."""
    dm = out["default_month"][FIRM_OF]  # (facility, path)
    ead = np.zeros(dm.shape)
    for j, p in zip(*np.nonzero(dm >= 0), strict=True):
        m = dm[j, p]
        ead[j, p] = OPENING[j] if m == 0 else out["balance"][m - 1, j, p]
    return ead


@pytest.mark.parametrize("overrides", [(), (MONTH0,)], ids=["later", "month0"])
def test_numpy_ead_is_the_balance_entering_the_default_month(overrides):
    out = simulate_block(firms_config(*overrides), seed=5, start=0, stop=2000)
    dm = out["default_month"][FIRM_OF]
    assert 0 < np.count_nonzero(dm >= 0) < dm.size  # some paths default, some do not
    np.testing.assert_array_equal(out["exposure_at_default"], explicit_ead(out))
    # a defaulted facility's recorded balance is exactly 0 from the default month on
    month = np.arange(out["balance"].shape[0])[:, None, None]
    after = (dm[None] >= 0) & (month >= dm[None])
    assert np.all(out["balance"][after] == 0.0)


@needs_cxx
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_host_kernel_ead_equals_numpy_path_by_path(dtype):
    config = firms_config(f"dtype={dtype}")
    reference = simulate_block(config, seed=17, start=1000, stop=5000)
    backend = host.HostBackend(config)
    cube, summary = backend(17, 1000, 5000), backend.summarize(17, 1000, 5000)
    _agree(reference, cube, dtype)
    np.testing.assert_array_equal(summary["exposure_at_default"], cube["exposure_at_default"])


@needs_native
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_native_ead_equals_numpy_path_by_path(dtype):
    config = firms_config(f"dtype={dtype}", MONTH0)
    reference = simulate_block(config, seed=23, start=0, stop=3000)
    backend = NativeBackend(config, threads=2)
    cube, summary = backend(23, 0, 3000), backend.summarize(23, 0, 3000)
    _agree(reference, cube, dtype)
    np.testing.assert_array_equal(summary["exposure_at_default"], cube["exposure_at_default"])


def _agree(reference: dict, kernel: dict, dtype: str) -> None:
    """float64 within 1e-9 relative, float32 within 1e-3 (as tests/test_native.py), the
    default months identical, and zeros exactly where no default."""
    expected, got = reference["exposure_at_default"], kernel["exposure_at_default"]
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(kernel["default_month"], reference["default_month"])
    assert np.count_nonzero(expected) > 100
    np.testing.assert_array_equal(got == 0, expected == 0)
    np.testing.assert_allclose(got, expected, rtol=1e-9 if dtype == "float64" else 1e-3)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_on_a_cube_the_stored_ead_is_the_derivation_from_the_balances(tmp_path, dtype):
    """The kernel starts from the opening balance in the run's precision, so for float32
    the derivation (which fills month 0 with the float64 opening balance) is rounded."""
    for overrides, name in (((), "later"), ((MONTH0,), "month0")):
        config = firms_config(f"dtype={dtype}", *overrides)
        ds = xr.open_zarr(run(config, tmp_path / f"{name}-{dtype}.zarr", paths=500, seed=3,
                              block_paths=250, mode="cube"))
        stored = ds["exposure_at_default"].compute()
        derived = lender.derived_exposure_at_default(ds).compute()
        assert stored.dims == ("path", "facility") and stored.attrs["units"] == "USD"
        np.testing.assert_array_equal(stored.values,
                                      derived.transpose("path", "facility").values.astype(dtype))
        xr.testing.assert_identical(lender.exposure_at_default(ds).compute(), stored)

"""On a GPU: the fused kernel equals numpy path by path, blocks do not matter, and the
numpy reference runs unchanged on CuPy arrays. Skipped without CuPy and a CUDA device.

float64 expectations are tight (1e-9, identical buckets). float32 ones allow for what the
device does differently from the host build: CUDA's libm (expf, logf, powf within 1-4
ulp of glibc's) and flush-to-zero (CuPy compiles with -ftz=true): values within float32
rounding (1e-3 relative, as the numpy float32 test), and a discrete event (a renewal, a
default) that sits on a threshold may flip on a few paths, which then part ways; those
paths are counted, not compared."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CONFIGS
from helpers import firms_config
from test_kernels import DISCRETE, assert_paths_agree

from gpusim import load_config, simulate
from gpusim.backends.cuda import CudaBackend, compile_check
from gpusim.backends.devices import cupy_or_none
from gpusim.backends.reference import simulate_block

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(cupy_or_none() is None, reason="needs CuPy and a CUDA device")]


FLOAT32_RTOL = 1e-3
FLOAT32_FLIPS = 0.002
"""float32 on the device: relative tolerance of values, and the share of paths on which
a discrete output may differ (CUDA libm and flush-to-zero move thresholds by ulps)."""


def assert_float32_paths_agree(reference: dict, got: dict) -> None:
    """float32 device outputs against a float32 reference: paths whose discrete outputs
    all agree (all but FLOAT32_FLIPS of them) agree in every value to FLOAT32_RTOL."""
    assert set(reference) == set(got)
    n = next(iter(reference.values())).shape[-1]
    same = np.ones(n, dtype=bool)
    for name in DISCRETE & set(reference):
        differs = np.asarray(reference[name] != got[name]).reshape(-1, n).any(axis=0)
        same &= ~differs
    assert np.count_nonzero(~same) <= FLOAT32_FLIPS * n, f"{np.count_nonzero(~same)} paths"
    assert_paths_agree({k: v[..., same] for k, v in reference.items()},
                       {k: v[..., same] for k, v in got.items()}, rtol=FLOAT32_RTOL)


def assert_counts_close(got: np.ndarray, expected: np.ndarray, paths: int) -> None:
    """float32 sketch counts (series..., bucket): every path counted in every series, and
    no quantile moved by more than a few paths (values on a bucket edge, flipped paths)."""
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got.sum(axis=-1), expected.sum(axis=-1))
    moved = np.abs(np.cumsum(got.astype(np.int64), axis=-1)
                   - np.cumsum(expected.astype(np.int64), axis=-1)).max(initial=0)
    assert moved <= max(3, FLOAT32_FLIPS * paths), moved


def test_kernels_compile_on_the_device():
    assert compile_check() == "ok"


@pytest.mark.parametrize("make", [lambda: load_config(CONFIGS / "base.yaml"), firms_config],
                         ids=["base", "firms"])
def test_gpu_equals_numpy_path_by_path(make):
    config = make()
    reference = simulate_block(config, seed=99, start=5000, stop=25_000)
    gpu = CudaBackend(config)(99, 5000, 25_000)
    assert_paths_agree(reference, gpu, rtol=1e-9)


def test_gpu_cash_flows_equal_numpy():
    config = firms_config()
    reference = simulate_block(config, seed=4, start=0, stop=4000, record_flows=True)
    gpu = CudaBackend(config)(4, 0, 4000, record_flows=True)
    assert_paths_agree(reference, gpu, rtol=1e-9)


def test_block_size_does_not_matter_on_the_device():
    config = firms_config()
    one = simulate(config, paths=30_000, seed=8, device="gpu", block_paths=30_000)
    many = simulate(config, paths=30_000, seed=8, device="gpu", block_paths=4096)
    for name in one.data_vars:
        np.testing.assert_array_equal(one[name].values, many[name].values, err_msg=name)
    assert one.attrs["device"].startswith("gpu:")


def test_numpy_reference_runs_unchanged_on_cupy_arrays():
    import cupy

    config = firms_config()
    reference = simulate_block(config, seed=12, start=0, stop=3000)
    on_gpu = simulate_block(config, seed=12, start=0, stop=3000, xp=cupy)
    assert_paths_agree(reference, {k: cupy.asnumpy(v) for k, v in on_gpu.items()}, rtol=1e-9)


def test_float32_kernel_tracks_float64():
    f64 = CudaBackend(firms_config())(1, 0, 10_000)
    f32 = CudaBackend(firms_config("dtype=float32"))(1, 0, 10_000)
    np.testing.assert_allclose(f32["rental_price"], f64["rental_price"], rtol=1e-3)


def test_float32_kernel_equals_numpy_float32_path_by_path():
    config = firms_config("dtype=float32")
    reference = simulate_block(config, seed=31, start=2000, stop=8000)
    gpu = CudaBackend(config)(31, 2000, 8000)
    for name, values in reference.items():
        assert gpu[name].dtype == values.dtype, name
    assert_float32_paths_agree(reference, gpu)


def test_summary_mode_on_the_device_matches_the_cpu(tmp_path):
    import gpusim.analysis  # noqa: F401 - registers the datasets' `gpusim` accessor (fan)
    from gpusim import run
    from gpusim.outputs import count_names
    from gpusim.store import open_store

    config = firms_config()
    cpu = open_store(run(config, tmp_path / "cpu.zarr", paths=20_000, seed=3, mode="summary",
                         device="cpu"))
    gpu = open_store(run(config, tmp_path / "gpu.zarr", paths=20_000, seed=3, mode="summary",
                         device="gpu"))
    np.testing.assert_array_equal(cpu.default_month, gpu.default_month)
    np.testing.assert_allclose(cpu.loss_total, gpu.loss_total, rtol=1e-9)
    # float64 values agree to ~1e-14, so no value should land in another bucket
    for name in count_names(config):
        np.testing.assert_array_equal(cpu[name].values, gpu[name].values, err_msg=name)
    q = (0.05, 0.5, 0.95)
    np.testing.assert_allclose(gpu.gpusim.fan("rental_price", q),
                               cpu.gpusim.fan("rental_price", q), rtol=0.021)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_summary_kernel_equals_its_host_build(dtype):
    """The device's summary counts (warp-aggregated atomics) are the host build's (serial
    adds), bucket for bucket, across several thread blocks and a partial last one."""
    import cupy

    from gpusim.backends import host
    from gpusim.backends.cuda import launch_summary
    from gpusim.backends.packing import pack

    config = firms_config(f"dtype={dtype}")
    paths = 10_000
    pending = launch_summary(config, seed=21, start=1000, stop=1000 + paths)
    got = pending.result()
    expected = host.HostBackend(config).summarize(21, 1000, 1000 + paths)
    assert int(expected["nonfinite"][0]) == 0
    raw = host.run_summary_packed(pack(config), 21, 1000, 1000 + paths, dtype)
    if dtype == "float64":
        for name in ("default_month", "loss_total"):
            np.testing.assert_allclose(got.per_path[name], expected[name], rtol=1e-9,
                                       err_msg=name)
        for name, counts in pending.counts.items():
            np.testing.assert_array_equal(cupy.asnumpy(counts), raw[name], err_msg=name)
        return
    same = got.per_path["default_month"] == expected["default_month"]
    assert np.count_nonzero(~same) <= FLOAT32_FLIPS * same.size
    for name, counts in pending.counts.items():
        if name == "nonfinite":
            np.testing.assert_array_equal(cupy.asnumpy(counts), raw[name])
        elif name in ("bust", "ltv_breach"):  # counts of paths: a flipped path moves one
            diff = np.abs(cupy.asnumpy(counts).astype(np.int64) - raw[name])
            assert diff.max(initial=0) <= max(3, FLOAT32_FLIPS * paths), name
        else:
            assert_counts_close(cupy.asnumpy(counts), raw[name], paths)

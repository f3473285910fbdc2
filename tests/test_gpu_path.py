"""gpusim's GPU code path without a GPU: CuPy replaced by a stand-in (host_cupy.py) that
runs each kernel launch through the host build of the same kernel. This covers the Python
side of the GPU path in CI (argument order, streams, pinned copies, unpacking, summary
pipeline, error reports); test_gpu.py covers the device itself on a GPU."""

from __future__ import annotations

import sys

import host_cupy
import numpy as np
import pytest
from helpers import firms_config, small_config
from test_kernels import assert_paths_agree, needs_cxx

from gpusim import run, simulate
from gpusim.backends import cuda
from gpusim.backends.header import kernel_dir
from gpusim.backends.packing import pack
from gpusim.errors import SimulationError
from gpusim.outputs import count_names
from gpusim.store import open_store

pytestmark = needs_cxx


@pytest.fixture
def host_gpu(monkeypatch):
    """CuPy (and cupyx) replaced by the host-build stand-in, caches cleared around."""
    cupy, cupyx = host_cupy.make()
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "cupyx", cupyx)
    for cached in (cuda._module, cuda._device_streams):
        cached.cache_clear()
    yield cupy
    for cached in (cuda._module, cuda._device_streams):
        cached.cache_clear()


def _macro(text: str, name: str) -> str:
    """The #define `name` of a source, continuation lines joined."""
    body = text[text.index(f"#define {name}("):]
    return body[:body.index("\n\n")].replace("\\\n", " ")


@pytest.mark.parametrize(("kernel_macro", "host_macro", "params"), [
    ("CUBE_KERNEL", "HOST_CUBE", "GPUSIM_CUBE_PARAMS"),
    ("SUMMARY_KERNEL", "HOST_SUMMARY", "GPUSIM_SUMMARY_PARAMS")])
def test_host_entry_points_take_the_kernels_arguments(kernel_macro, host_macro, params):
    """The stand-in's faithfulness rests on this: the kernels and the host build's entry
    points are declared with the same parameter list, the one kernel_io orders by."""
    kernel = (kernel_dir() / "gpusim.cu").read_text()
    host_cpp = (kernel_dir() / "host.cpp").read_text()
    assert f"void NAME({params}(R))" in _macro(kernel, kernel_macro)
    assert f"void NAME({params}(R))" in _macro(host_cpp, host_macro)


def test_kernel_arguments_are_named_and_typed_by_the_header():
    from gpusim.backends import kernel_io

    values = {"min_magnitude": 1e-9, "log_gamma": 0.02, "key_min": -1036, "key_max": 3453,
              "buckets": 8981}
    args = kernel_io.arguments("GPUSIM_SKETCH_PARAMS", values)
    assert [type(a) for a in args] == [np.float64, np.float64, np.int32, np.int32, np.int32]
    with pytest.raises(KeyError, match=r"\['buckets'\] are missing"):
        kernel_io.arguments("GPUSIM_SKETCH_PARAMS", {k: v for k, v in values.items()
                                                     if k != "buckets"})


def compiled(config, name):
    """The stand-in module that cuda.py compiled for `config`'s variant of kernel `name`."""
    return cuda._module(0, cuda.variant(name, pack(config)).prelude)


def test_gpu_cube_equals_numpy(host_gpu):
    config = firms_config()
    cpu = simulate(config, paths=3000, seed=5, device="cpu")
    gpu = simulate(config, paths=3000, seed=5, device="gpu", block_paths=1024)
    assert gpu.attrs["device"] == "gpu:host build"
    assert_paths_agree({k: cpu[k].values for k in cpu.data_vars},
                       {k: gpu[k].values for k in gpu.data_vars}, rtol=1e-9)
    module = compiled(config, "simulate_cube_f64")
    launches = module.functions["simulate_cube_f64"].launches
    assert [grid for grid, _ in launches] == [(8,), (8,), (8,)]  # 1024, 1024, 952 paths
    # only the kernel launched, specialized to the config's shape (kernels/shapes.cuh)
    assert "#define GPUSIM_ONLY_simulate_cube_f64 1\n" in module.code
    assert "#define GPUSIM_N_FIRMS 2\n" in module.code
    assert "#define GPUSIM_ONLY_simulate_summary" not in module.code


def test_gpu_summary_store_equals_the_cpu_one(host_gpu, tmp_path):
    config = firms_config()
    cpu = open_store(run(config, tmp_path / "cpu.zarr", paths=2500, seed=3, mode="summary",
                         device="cpu", block_paths=1000))
    gpu = open_store(run(config, tmp_path / "gpu.zarr", paths=2500, seed=3, mode="summary",
                         device="gpu", block_paths=1000))
    assert gpu.attrs["backend"] == "gpu" and cpu.attrs["backend"] == "cpu"
    np.testing.assert_array_equal(cpu.default_month, gpu.default_month)
    np.testing.assert_allclose(cpu.loss_total, gpu.loss_total, rtol=1e-9)
    for name in count_names(config):
        np.testing.assert_array_equal(cpu[name].values, gpu[name].values, err_msg=name)
    launches = compiled(config, "simulate_summary_f64").functions["simulate_summary_f64"]
    assert len(launches.launches) == 3


def test_gpu_cube_store_equals_the_cpu_one(host_gpu, tmp_path):
    config = small_config()
    cpu = open_store(run(config, tmp_path / "cpu.zarr", paths=1500, seed=9, device="cpu",
                         block_paths=500))
    gpu = open_store(run(config, tmp_path / "gpu.zarr", paths=1500, seed=9, device="gpu",
                         block_paths=500))
    for name in cpu.data_vars:
        np.testing.assert_allclose(gpu[name].values, cpu[name].values, rtol=1e-9,
                                   err_msg=name)


def test_float32_summary_on_the_gpu_path(host_gpu, tmp_path):
    config = firms_config("dtype=float32")
    out = open_store(run(config, tmp_path / "f32.zarr", paths=1200, seed=2, mode="summary",
                         device="gpu", block_paths=600))
    assert out.loss_total.dtype == np.float32
    assert (out.rental_price_sketch.sum("bucket") == 1200).all()


def test_nonfinite_values_in_the_summary_kernel_are_an_error(host_gpu, monkeypatch):
    """The summary kernel only counts NaN/Inf; the block is then rerun with the cube
    kernel, whose check names the variable, path and month (here none: the count is
    faked), else the error gives the count and the block."""
    original = host_cupy._Function.__call__

    def poisoned(self, grid, block, args):
        original(self, grid, block, args)
        if self.function.__name__.startswith("gpusim_host_summary"):
            args[-9][0] = 3  # nonfinite: before default_month, loss_total, EAD, 5 scalars
    monkeypatch.setattr(host_cupy._Function, "__call__", poisoned)
    with pytest.raises(SimulationError, match=r"3 NaN or Inf values in the block of paths "
                                              r"\[0, 700\)"):
        cuda.launch_summary(firms_config(), seed=1, start=0, stop=700).result()


def test_bench_summary_rows_pass_their_sketch_check(host_gpu):
    """The suite's fused summary run (kernel sketches merged over blocks) against the
    exact last month of the fused cube run of the same paths."""
    from gpusim.backends.devices import select_backend
    from gpusim.backends.packing import pack
    from gpusim.bench import gpu, peers
    from gpusim.bench.suite import host_last

    config = firms_config()
    paths, block = 2000, 768
    cube = gpu.fused_cube(host_gpu, config, pack(config), paths, block, seed=4)
    summary = gpu.fused_summary(host_gpu, select_backend(config, "gpu"), paths, block, seed=4)
    sketches = host_last(summary, paths)[gpu.SKETCHES]
    check = peers.sketch_check(host_last(cube, paths), sketches)
    assert check["pass"], check
    assert all(int(counts.sum()) == paths for counts in sketches.values())


def test_the_gpu_half_of_the_bench_suite_runs(host_gpu, tmp_path, monkeypatch):
    """Every GPU row of the suite runs and passes its check on the stand-in (its numbers
    mean nothing: the host build on one core), and the result files are written."""
    import functools
    import json

    from test_bench import TINY

    from gpusim.bench import gpu
    from gpusim.bench.suite import run_suite

    monkeypatch.setattr(gpu, "bandwidths", functools.partial(gpu.bandwidths, nbytes=1 << 20,
                                                              repeats=2))
    out = tmp_path / "gpu.json"
    result = run_suite("quick", "gpu", out, sizes={"gpu": TINY}, log=lambda line: None)
    rows = {r["key"]: r for r in result["gpu"]["rows"]}
    for key, row in rows.items():
        if key.startswith("jax_"):
            continue
        assert row["status"] == "ok", (key, row["status"])
        if key != "fused_cube":
            assert row["distribution_check"]["pass"], (key, row["distribution_check"])
    assert rows["fused_full_summary"]["distribution_check"]["kind"] == "sketch"
    assert json.loads(out.read_text())["gpu"]["gpu"]["name"] == "host build"
    assert out.with_suffix(".md").is_file()


def test_gpu_block_defaults_depend_on_the_mode(host_gpu, tmp_path):
    from gpusim.plan import GPU_BLOCK_PATHS, GPU_SUMMARY_BLOCK_PATHS

    config = small_config()
    for mode, expected in (("cube", GPU_BLOCK_PATHS), ("summary", GPU_SUMMARY_BLOCK_PATHS)):
        store = open_store(run(config, tmp_path / f"{mode}.zarr", paths=300, device="gpu",
                               mode=mode))
        assert store.attrs["block_paths"] == expected

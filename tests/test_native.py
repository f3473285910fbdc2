"""The native CPU backend (kernels/native.cpp built at install): agreement with the numpy
reference path by path, bit-invariance to threads and blocks, device choice, resume."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import zarr
from conftest import CONFIGS
from helpers import firms_config, small_config
from test_kernels import assert_paths_agree

from gpusim import load_config, run, simulate
from gpusim.backends import devices, header, kernel_io, native
from gpusim.backends.base import blocks, sparse
from gpusim.backends.native import NativeBackend
from gpusim.backends.reference import NumpyBackend, dense_counts, simulate_block
from gpusim.cli import main
from gpusim.errors import InputError, SimulationError
from gpusim.outputs import PER_PATH, count_names

needs_native = pytest.mark.skipif(native.native().library is None,
                                  reason=f"no native build: {native.native().reason}")
CONFIGS_BY_NAME = {"market": small_config, "firms": firms_config,
                   "base": lambda: load_config(CONFIGS / "base.yaml")}


@pytest.fixture
def no_native(monkeypatch):
    """Run as if the extension had not been built."""
    monkeypatch.setenv(native.DISABLE, "1")
    native.native.cache_clear()
    yield
    monkeypatch.delenv(native.DISABLE)
    native.native.cache_clear()


@needs_native
@pytest.mark.parametrize("name", sorted(CONFIGS_BY_NAME))
def test_native_cube_equals_numpy_path_by_path(name):
    config = CONFIGS_BY_NAME[name]()
    reference = simulate_block(config, seed=17, start=1000, stop=7000)
    assert_paths_agree(reference, NativeBackend(config, threads=2)(17, 1000, 7000), rtol=1e-9)


@needs_native
def test_native_cash_flows_and_float32_agree_with_numpy():
    config = firms_config()
    reference = simulate_block(config, seed=3, start=0, stop=2000, record_flows=True)
    assert_paths_agree(reference, NativeBackend(config)(3, 0, 2000, record_flows=True),
                       rtol=1e-9)
    config = firms_config("dtype=float32")
    reference = simulate_block(config, seed=31, start=2000, stop=5000)
    got = NativeBackend(config)(31, 2000, 5000)
    assert all(got[k].dtype == v.dtype for k, v in reference.items())
    assert_paths_agree(reference, got, rtol=1e-3)


@needs_native
@pytest.mark.parametrize("name", sorted(CONFIGS_BY_NAME))
def test_native_summary_equals_the_numpy_sketches_bucket_for_bucket(name):
    config = CONFIGS_BY_NAME[name]()
    cube = simulate_block(config, seed=31, start=2000, stop=6000)
    summary = NativeBackend(config, threads=3).summarize(31, 2000, 6000)
    assert int(summary["nonfinite"][0]) == 0
    expected = dense_counts(config, cube)
    for key in count_names(config):
        np.testing.assert_array_equal(summary[key], expected[key], err_msg=key)
    np.testing.assert_array_equal(summary["default_month"], cube["default_month"])
    np.testing.assert_allclose(summary["loss_total"], cube["loss_total"], rtol=1e-9)


def _cube_in_blocks(backend, paths, block_paths):
    parts = [backend(8, b.start, b.stop) for b in blocks(paths, block_paths)]
    return {k: np.concatenate([p[k] for p in parts], axis=-1) for k in parts[0]}


def _summary_in_blocks(backend, paths, block_paths):
    parts = [backend.summarize(8, b.start, b.stop) for b in blocks(paths, block_paths)]
    out = {k: sum(p[k].astype(np.int64) for p in parts) for k in count_names(backend.config)}
    return out | {k: np.concatenate([p[k] for p in parts], axis=-1) for k in PER_PATH}


@needs_native
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_threads_and_blocks_change_no_bit(dtype):
    """1, 2, 3 and 7 threads, one block or uneven blocks: the same bytes, cube and
    summary."""
    config = firms_config(f"dtype={dtype}")
    one = NativeBackend(config, threads=1)
    cube, summary = one(8, 0, 1500), one.summarize(8, 0, 1500)
    for threads, block_paths in ((2, 1500), (3, 499), (7, 64)):
        backend = NativeBackend(config, threads=threads)
        for key, values in _cube_in_blocks(backend, 1500, block_paths).items():
            assert values.tobytes() == cube[key].tobytes(), (threads, block_paths, key)
        for key, values in _summary_in_blocks(backend, 1500, block_paths).items():
            assert np.array_equal(values, summary[key]), (threads, block_paths, key)
            assert values.dtype.kind == "f" or key not in PER_PATH or \
                values.tobytes() == summary[key].tobytes()


@needs_native
def test_native_launch_summary_is_the_numpy_block_summary():
    config = firms_config()
    got = NativeBackend(config).launch_summary(4, 0, 800).result()
    want = NumpyBackend(config).launch_summary(4, 0, 800).result()
    for key, (index, counts) in want.counts.items():
        np.testing.assert_array_equal(got.counts[key][0], index, err_msg=key)
        np.testing.assert_array_equal(got.counts[key][1], counts, err_msg=key)


@needs_native
@pytest.mark.parametrize("threads", [1, 2, 3, 7])
def test_take_sparse_is_numpys_sparse_and_leaves_zeros(threads):
    """The native extraction of a summary's sparse counts gives `base.sparse`'s indices
    and values exactly (index order, int64), zeroes what it takes, and copes with empty,
    full and short arrays (fewer entries than threads)."""
    rng = np.random.default_rng(threads)
    sparse_counts = np.zeros(100_003, np.uint32)
    hits = rng.choice(sparse_counts.size, 1_000, replace=False)
    sparse_counts[hits] = rng.integers(1, 2**32, hits.size, dtype=np.uint64).astype(np.uint32)
    arrays = {"sparse": sparse_counts, "empty": np.zeros(50, np.uint32),
              "full": rng.integers(1, 9, (3, 7), dtype=np.uint32),
              "short": np.array([0, 5], np.uint32), "none": np.zeros(0, np.uint32)}
    want = sparse({k: v.copy() for k, v in arrays.items()})
    got = native.take_sparse(arrays, threads)
    for name, (index, values) in want.items():
        assert got[name][0].dtype == got[name][1].dtype == np.int64
        np.testing.assert_array_equal(got[name][0], index, err_msg=name)
        np.testing.assert_array_equal(got[name][1], values, err_msg=name)
        assert not arrays[name].any(), name
    with pytest.raises(TypeError, match="C-contiguous uint32"):
        native.take_sparse({"strided": np.zeros(10, np.uint32)[::2]}, threads)


def _same_summary(a, b) -> bool:
    """Two BlockSummary objects with the same counts and per-path results, exactly."""
    return a.counts.keys() == b.counts.keys() and all(
        np.array_equal(a.counts[k][0], b.counts[k][0])
        and np.array_equal(a.counts[k][1], b.counts[k][1]) for k in a.counts) and all(
        a.per_path[k].tobytes() == b.per_path[k].tobytes() for k in b.per_path)


@needs_native
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_summary_count_buffers_kept_between_blocks_change_no_count(threads):
    """launch_summary counts into buffers it keeps from block to block (CountBuffers) and
    zeroes them again: blocks of other sizes, the same block again, a block that failed
    and a block run while another thread holds the buffers all give the counts of fresh
    buffers, and the kept buffers are all zero between blocks."""
    config = firms_config()
    kept = NativeBackend(config, threads=threads)
    fresh = NativeBackend(config, threads=threads, keep_counts=False)

    def all_zero() -> bool:
        return not any(v.any() for v in kept._counts.main.values())

    for start, stop in ((0, 700), (700, 1000), (0, 700)):
        assert _same_summary(kept.launch_summary(5, start, stop).result(),
                             fresh.launch_summary(5, start, stop).result()), (start, stop)
        assert all_zero()
    buffers = kept._counts.main["market"]
    training = header.layout()["MarketMonthly"]["MM_TRAINING"]
    kept.packed.monthly[training, 5] = np.inf
    with pytest.raises(SimulationError, match="gpu_hour_demand is inf on path 1000"):
        kept.launch_summary(5, 1000, 1200)
    kept.packed.monthly[training, 5] = fresh.packed.monthly[training, 5]
    assert all_zero()
    with kept._counts.lock:  # another thread's block: this one counts into fresh memory
        assert _same_summary(kept.launch_summary(5, 1000, 1500).result(),
                             fresh.launch_summary(5, 1000, 1500).result())
    assert _same_summary(kept.launch_summary(5, 1000, 1500).result(),
                         fresh.launch_summary(5, 1000, 1500).result())
    assert kept._counts.main["market"] is buffers and all_zero()


@needs_native
@pytest.mark.parametrize("threads", [1, 2])
def test_the_cube_kernel_counts_its_nonfinite_values_and_the_first_is_named(threads):
    """The cube kernel returns how many NaN/Inf values it wrote (the host no longer scans
    every block); a block with any is an error naming variable, path and month."""
    backend = NativeBackend(small_config(), threads=threads)
    training = header.layout()["MarketMonthly"]["MM_TRAINING"]
    backend.packed.monthly[training, 5] = np.inf  # GPU-hour demand is inf at month 5
    out = {key: np.empty(shape, kind) for key, (shape, kind) in
           kernel_io.cube_buffers(backend.packed, 300, "float64").items()}
    args = kernel_io.cube_arguments(backend.packed.arrays(), backend.packed, 3, 40, 340, out)
    bad = native._call("simulate_cube_f64", args, threads)
    assert bad == sum(int((~np.isfinite(v)).sum()) for v in out.values()
                      if v.dtype.kind == "f") > 0
    with pytest.raises(SimulationError, match=r"gpu_hour_demand is inf on path 40 at "
                                              r"month index 5"):
        backend.launch(3, 40, 340)
    backend.packed.monthly[training, 5] = 0.0
    assert native._call("simulate_cube_f64", args, threads) == 0


@needs_native
@pytest.mark.parametrize("name", ["market", "firms"])
def test_the_avx2_draws_give_the_portable_bits(name):
    """The shocks' loop compiled for AVX2 (used where the CPU has it) and the portable
    x86-64-v2 loop give the same bits, cube and summary."""
    lib = native.native()
    if not lib.avx2(1):
        pytest.skip("no AVX2 loop here (CPU or compiler)")
    backend = NativeBackend(CONFIGS_BY_NAME[name](), threads=2)
    try:
        with_avx2 = backend(5, 30, 330), backend.summarize(5, 30, 330)
        assert not lib.avx2(0)
        portable = backend(5, 30, 330), backend.summarize(5, 30, 330)
    finally:
        lib.avx2(1)
    for got, want in zip(portable, with_avx2, strict=True):
        for key, values in want.items():
            assert got[key].tobytes() == values.tobytes(), key


def test_usable_threads_follows_omp_num_threads_and_the_cgroup(monkeypatch, tmp_path):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert native.usable_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert 1 <= native.usable_threads() <= len(native.os.sched_getaffinity(0))
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert native.cgroup_cpus(tmp_path) == 2
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert native.cgroup_cpus(tmp_path) is None
    monkeypatch.setattr(native, "cgroup_cpus", lambda: 1)
    assert native.usable_threads() == 1


@needs_native
def test_auto_picks_the_native_backend_with_a_notice(capsys):
    assert devices.resolve_device("auto") == "cpu"
    assert "running the native CPU backend" in capsys.readouterr().err
    assert devices.resolve_device("numpy") == "numpy"
    assert isinstance(devices.select_backend(small_config(), "cpu"), NativeBackend)


def test_without_the_extension_everything_runs_on_numpy(no_native, capsys, tmp_path):
    assert devices.resolve_device("auto") == "numpy"
    assert f"the numpy reference ({native.DISABLE} is set)" in capsys.readouterr().err
    with pytest.raises(InputError, match=r"device = 'cpu'.*--device numpy"):
        devices.resolve_device("cpu")
    ds = simulate(small_config(), paths=300, seed=1)
    assert ds.attrs["device"] == "cpu: numpy reference"
    store = run(firms_config(), tmp_path / "s.zarr", paths=400, seed=2, mode="summary")
    assert zarr.open_group(store, mode="r").attrs["backend"] == "numpy"


def test_a_library_built_from_other_sources_is_not_used(monkeypatch):
    native.native.cache_clear()
    monkeypatch.setattr(native, "native_digest", lambda: "0" * 16)
    try:
        found = native.native()
        if native.library_path() is not None:
            assert found.library is None and "other kernel sources" in found.reason
    finally:
        native.native.cache_clear()


@needs_native
def test_resume_on_the_other_cpu_backend_is_refused(tmp_path, small_yaml, capsys):
    out = tmp_path / "s.zarr"
    base = ["run", str(small_yaml), "--paths", "600", "--block-paths", "200", "--quiet",
            "--out", str(out)]
    assert main([*base, "--device", "numpy"]) == 0
    assert main([*base, "--device", "cpu", "--resume"]) == 2
    assert "backend: 'numpy' → 'cpu'" in capsys.readouterr().err
    assert main([*base, "--device", "numpy", "--resume"]) == 0


@needs_native
def test_the_build_is_portable():
    """The library is built for x86-64-v2 on x86-64, with OpenMP: no AVX (no ymm or zmm
    register) anywhere but in the shocks' AVX2 loop, which runs only where the CPU has it
    (and no FMA instruction at all)."""
    path = native.library_path()
    lib = native.native()
    assert lib.library.gpusim_native_openmp() == 1
    if lib.isa != "x86-64-v2":
        pytest.skip(f"built for {lib.isa} (GPUSIM_NATIVE_MARCH)")
    proc = subprocess.run(["objdump", "-d", str(path)], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        pytest.skip("objdump not available")
    function, wide = "", set()
    for line in proc.stdout.splitlines():
        if line.endswith(">:"):
            function = line.split("<", 1)[1]
        elif "%ymm" in line or "%zmm" in line:
            wide.add(function)
    assert all("draw_tile_avx2" in f for f in wide), wide
    assert not any(op in proc.stdout for op in ("vfmadd", "vfmsub", "vfnmadd", "vfnmsub"))


def test_install_without_a_compiler_still_works(tmp_path):
    """setup.py leaves the extension out when it cannot be compiled: the wheel has the
    package and the kernel sources, no library."""
    root = tmp_path / "src"  # a clean copy: no build/ folder or library from earlier builds
    shutil.copytree(Path(__file__).resolve().parents[1], root, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "*.so", "*.egg-info", "__pycache__", "runs"))
    env = os.environ | {"CC": "false", "CXX": "false"}
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(root),
                           "-w", str(tmp_path)],
                          capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0 and "gpusim: native" not in proc.stderr:
        pytest.skip(f"could not build a wheel here: {proc.stderr[-300:]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist()
    assert "gpusim/kernels/native.cpp" in names and "gpusim/backends/native.py" in names
    assert not [n for n in names if n.startswith("gpusim/_native")]


def test_info_says_whether_the_native_backend_is_usable(capsys, no_native):
    assert main(["info"]) == 0
    assert f"native CPU backend: unavailable ({native.DISABLE} is set)" in capsys.readouterr().out


@needs_native
def test_without_openmp_the_build_is_single_threaded_and_gives_the_same_bits(tmp_path,
                                                                               monkeypatch):
    """A compiler that rejects -fopenmp: the install still builds the library, without
    OpenMP; it gives the same bits as the OpenMP build."""
    root = tmp_path / "src"
    shutil.copytree(Path(__file__).resolve().parents[1], root, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "*.so", "*.egg-info", "__pycache__", "runs"))
    cxx = shutil.which(os.environ.get("CXX", "g++")) or "g++"
    wrapper = tmp_path / "no-openmp-c++"
    wrapper.write_text(f'#!/bin/sh\ncase "$*" in *-fopenmp*) exit 1;; esac\nexec {cxx} "$@"\n')
    wrapper.chmod(0o755)
    env = os.environ | {"CC": str(wrapper), "CXX": str(wrapper)}
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(root),
                           "-w", str(tmp_path)], capture_output=True, text=True, check=False,
                          env=env)
    if proc.returncode != 0 and "gpusim: native" not in proc.stderr:
        pytest.skip(f"could not build a wheel here: {proc.stderr[-300:]}")
    wheel = zipfile.ZipFile(next(tmp_path.glob("*.whl")))
    name = next(n for n in wheel.namelist() if n.startswith("gpusim/_native"))
    library = Path(wheel.extract(name, tmp_path / "wheel"))
    config = firms_config()
    want = NativeBackend(config, threads=2)(6, 0, 300)
    monkeypatch.setattr(native, "library_path", lambda: library)
    native.native.cache_clear()
    try:
        assert native.native().library.gpusim_native_openmp() == 0
        got = NativeBackend(config, threads=2)(6, 0, 300)
    finally:
        native.native.cache_clear()
    for key, values in want.items():
        assert got[key].tobytes() == values.tobytes(), key


@needs_native
def test_default_blocks_grow_with_the_native_threads_in_summary_mode_only(tmp_path,
                                                                          monkeypatch):
    """Without --block-paths, a summary run on the native backend takes
    NATIVE_SUMMARY_PATHS_PER_THREAD paths a thread per block (its fixed cost per block is
    the threads' counts); cube runs and the numpy reference keep DEFAULT_BLOCK_PATHS, and
    a given block size wins. The numbers do not change with the block (same default
    months as with 16,384-path blocks)."""
    from gpusim.plan import DEFAULT_BLOCK_PATHS, NATIVE_SUMMARY_PATHS_PER_THREAD

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    config = firms_config()

    def attrs(name, **kw):
        return zarr.open_group(run(config, tmp_path / name, paths=700, seed=5, **kw),
                               mode="r").attrs

    assert attrs("s.zarr", device="cpu", mode="summary")["block_paths"] == \
        3 * NATIVE_SUMMARY_PATHS_PER_THREAD
    assert attrs("c.zarr", device="cpu", mode="cube")["block_paths"] == DEFAULT_BLOCK_PATHS
    assert attrs("n.zarr", device="numpy", mode="summary")["block_paths"] == \
        DEFAULT_BLOCK_PATHS
    assert attrs("g.zarr", device="cpu", mode="summary", block_paths=256)["block_paths"] == 256
    one, blocked = (zarr.open_group(tmp_path / name, mode="r")["default_month"][:]
                    for name in ("s.zarr", "g.zarr"))
    np.testing.assert_array_equal(one, blocked)

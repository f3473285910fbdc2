"""The cost a run states before it starts is close to what it writes."""

from __future__ import annotations

import pytest
from conftest import CONFIGS

from gpusim import load_config, run
from gpusim.estimate import estimate, format_bytes


def _size(path):
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@pytest.mark.parametrize(("mode", "tolerance"), [("cube", 0.25), ("summary", 0.6)])
def test_estimated_size_is_close_to_the_store(tmp_path, mode, tolerance):
    config = load_config(CONFIGS / "base.yaml")
    out = tmp_path / f"{mode}.zarr"
    run(config, out, paths=2048, seed=2, mode=mode)
    guess = estimate(config, 2048, mode).store_bytes
    assert guess == pytest.approx(_size(out), rel=tolerance)


def test_cube_costs_more_than_summary_and_grows_with_paths():
    config = load_config(CONFIGS / "base.yaml")
    cube, summary = estimate(config, 100_000, "cube"), estimate(config, 100_000, "summary")
    assert 5e8 < cube.store_bytes < 1e9 and summary.store_bytes < 1e7
    assert cube.seconds > summary.seconds
    assert estimate(config, 200_000, "cube").store_bytes == pytest.approx(2 * cube.store_bytes)
    assert estimate(config, 200_000, "cube").seconds > cube.seconds


def test_time_follows_the_backend_its_cores_and_workers():
    config = load_config(CONFIGS / "base.yaml")
    for mode in ("cube", "summary"):
        numpy = estimate(config, 100_000, mode, "numpy", cores=2)
        native = estimate(config, 100_000, mode, "cpu", cores=2)
        assert native.seconds < numpy.seconds
        # the native threads use every core; numpy uses one per process (--workers)
        assert estimate(config, 100_000, mode, "cpu", cores=8).seconds < native.seconds
        assert estimate(config, 100_000, mode, "numpy", cores=8).seconds == numpy.seconds
        assert estimate(config, 100_000, mode, "numpy", cores=2, workers=2).seconds \
            < numpy.seconds
        assert estimate(config, 100_000, mode, "numpy", cores=1, workers=2).seconds \
            == estimate(config, 100_000, mode, "numpy", cores=1).seconds
        # the store does not depend on where it is computed
        assert native.store_bytes == numpy.store_bytes


@pytest.mark.parametrize(("backend", "cores", "says"), [
    ("numpy", 2, "on 2 CPU cores (numpy reference)"),
    ("cpu", 1, "on 1 CPU core (native CPU backend)"),
    ("gpu", 2, "much less on the GPU"),
    ("cluster", 2, "the time depends on the cluster's workers"),
])
def test_the_line_names_the_backend_and_cores(backend, cores, says):
    config = load_config(CONFIGS / "base.yaml")
    line = estimate(config, 100_000, "summary", backend, cores=cores).text()
    assert line.startswith("summary of 100,000 paths: estimated store ") and line.endswith(says)


@pytest.mark.parametrize(("n", "text"), [(512, "512 B"), (3.6e6, "3.6 MB"), (8.17e8, "817 MB"),
                                         (1.72e9, "1.7 GB")])
def test_format_bytes(n, text):
    assert format_bytes(n) == text

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
    assert cube.cpu_seconds > summary.cpu_seconds
    assert estimate(config, 200_000, "cube").store_bytes == pytest.approx(2 * cube.store_bytes)
    assert "on 2 CPU cores" in cube.text() and "GPU" in cube.text(on_gpu=True)


@pytest.mark.parametrize(("n", "text"), [(512, "512 B"), (3.6e6, "3.6 MB"), (8.17e8, "817 MB"),
                                         (1.72e9, "1.7 GB")])
def test_format_bytes(n, text):
    assert format_bytes(n) == text

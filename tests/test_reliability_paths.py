"""Bad --out paths are bad input (exit 2 before anything is computed); a full disk during
a run exits 1 naming the store and saying that --resume continues, and it does."""

from __future__ import annotations

import errno
import os

import pytest
import xarray as xr
from reliability import small_file

import gpusim.executors.tasks as tasks
from gpusim.cli import main

ARGS = ("--paths", "300", "--block-paths", "100", "--device", "cpu", "--quiet")


def _run(config, out, *extra: str) -> int:
    return main(["run", str(config), "--out", str(out), *ARGS, *extra])


def test_out_under_a_regular_file(tmp_path, capsys):
    config = small_file(tmp_path)
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file" / "x.zarr", tmp_path / "file" / "a" / "b" / "x.zarr"):
        assert _run(config, out) == 2
        err = capsys.readouterr().err
        assert str(out) in err and "is a file" in err
    assert main(["report", str(tmp_path / "file"), "--out", str(tmp_path / "file" / "r")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert (tmp_path / "file").read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write a read-only folder")
def test_out_in_an_unwritable_folder(tmp_path, capsys):
    config = small_file(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    assert _run(config, locked / "x.zarr") == 2
    assert "cannot write in" in capsys.readouterr().err


def test_out_where_nothing_can_be_created(tmp_path, capsys):
    """/proc refuses new entries even to root: a location no one can write."""
    config = small_file(tmp_path)
    assert _run(config, "/proc/gpusim-test/x.zarr") == 2
    err = capsys.readouterr().err
    assert "/proc/gpusim-test/x.zarr" in err and "cannot write in '/proc'" in err


def test_missing_parent_folders_are_created(tmp_path):
    """As `--out runs/x.zarr` in a fresh checkout (README, 'Quick start') needs."""
    config = small_file(tmp_path)
    assert _run(config, tmp_path / "runs" / "deeper" / "x.zarr") == 0


def test_a_full_disk_exits_1_naming_the_store_and_resume_continues(tmp_path, monkeypatch,
                                                                    capsys):
    config, out = small_file(tmp_path), tmp_path / "x.zarr"
    real, calls = tasks.write_region, []

    def fills_up(*args, **kwargs):
        calls.append(1)
        if len(calls) >= 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(out / "rental_price"))
        return real(*args, **kwargs)

    monkeypatch.setattr(tasks, "write_region", fills_up)
    assert _run(config, out, "--mode", "cube") == 1  # cube blocks go through write_region
    err = capsys.readouterr().err
    assert err.startswith("gpusim: no space left") and str(out) in err and "--resume" in err
    assert "Traceback" not in err
    monkeypatch.setattr(tasks, "write_region", real)
    assert _run(config, out, "--mode", "cube", "--resume") == 0
    with xr.open_zarr(out) as ds:
        assert "run_finished" in ds.attrs and bool((ds.rental_price > 0).all())

"""One writer per store: a second run is refused naming the holder; a dead holder's lock
does not block --resume. Real processes, stopped (SIGSTOP) and killed (SIGKILL)."""

from __future__ import annotations

import signal

import pytest
import xarray as xr
from helpers import small_config
from reliability import gpusim, holder_pid, kill, small_file, start, wait_for

import gpusim as gpusim_api
from gpusim.backends.base import blocks
from gpusim.backends.devices import select_backend
from gpusim.errors import InputError
from gpusim.executors.tasks import run_block, task_for
from gpusim.storage import lock_path, root_attributes, store_lock
from gpusim.store import STORE_ID, StaleWriter

LONG_RUN = ("--paths", "40000", "--block-paths", "500", "--device", "cpu", "--quiet")
"""A run of 80 blocks: long enough to be caught holding its lock."""


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    config, out = small_file(tmp_path), tmp_path / "x.zarr"
    first = start("run", str(config), "--out", str(out), *LONG_RUN)
    try:
        wait_for(lambda: holder_pid(lock_path(out)) == first.pid and (out / "zarr.json")
                 .is_file(), "the lock's holder record and the laid-out store", proc=first)
        kill(first, signal.SIGSTOP)  # suspended, as a slow run would be, lock still held
        second = gpusim("run", str(config), "--out", str(out), "--overwrite", *LONG_RUN)
        assert second.returncode == 2, second.stderr
        assert f"pid {first.pid}" in second.stderr and "another run" in second.stderr
        assert "Traceback" not in second.stderr
        resumed = gpusim("run", str(config), "--out", str(out), "--resume", *LONG_RUN)
        assert resumed.returncode == 2 and f"pid {first.pid}" in resumed.stderr
        assert holder_pid(lock_path(out)) == first.pid  # refusals leave the record alone
        kill(first, signal.SIGCONT)
        first.wait(timeout=120)
        assert first.returncode == 0, first.stderr.read()
    finally:
        if first.poll() is None:
            kill(first, signal.SIGCONT)
            kill(first)
    with xr.open_zarr(out) as ds:
        assert ds.attrs["seed"] == 0 and "run_finished" in ds.attrs


def test_a_dead_holder_does_not_block_resume(tmp_path):
    config, out = small_file(tmp_path), tmp_path / "x.zarr"
    first = start("run", str(config), "--out", str(out), *LONG_RUN)
    try:
        wait_for(lambda: (out / "_gpusim" / "blocks_done" / "c").is_dir(),
                 "the first written block", proc=first)
    finally:
        kill(first)
    assert holder_pid(lock_path(out)) == first.pid  # the record stays, its lock does not
    resumed = gpusim("run", str(config), "--out", str(out), "--resume", *LONG_RUN)
    assert resumed.returncode == 0, resumed.stderr
    assert holder_pid(lock_path(out)) != first.pid
    with xr.open_zarr(out) as ds:
        assert "run_finished" in ds.attrs and ds.sizes["path"] == 40000


def test_the_lock_is_exclusive_between_processes_and_released_on_exit(tmp_path):
    out = tmp_path / "y.zarr"
    holder = start(str(out), code="import sys, time\nfrom pathlib import Path\n"
                                  "from gpusim.storage import store_lock\n"
                                  "with store_lock(Path(sys.argv[1])):\n"
                                  "    print('held', flush=True); time.sleep(60)\n")
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match=f"pid {holder.pid} on host"), store_lock(out):
            pass
    finally:
        kill(holder)
    with store_lock(out):  # free again once its holder is gone
        assert holder_pid(lock_path(out)) is not None


@pytest.mark.parametrize("mode", ["cube", "summary"])
def test_a_stale_block_task_never_writes_into_a_replaced_store(tmp_path, mode):
    """A block task still running for a run whose store was since replaced (a dask worker
    of a killed client) is refused: it carries the id of the store it was computed for."""
    config, out = small_config(), tmp_path / "x.zarr"
    common = {"paths": 200, "block_paths": 100, "mode": mode}
    gpusim_api.run(config, out, seed=1, **common)
    old_id = root_attributes(out)[STORE_ID]
    gpusim_api.run(config, out, seed=2, overwrite=True, **common)
    new_id = root_attributes(out)[STORE_ID]
    assert new_id != old_id
    with xr.open_zarr(out) as ds:
        before = ds.load()
    stale = task_for(mode, out, 1, old_id)
    with pytest.raises(StaleWriter, match="replaced"):
        run_block(stale, select_backend(config, "cpu"), blocks(200, 100)[0])
    with xr.open_zarr(out) as ds:
        xr.testing.assert_identical(ds.load(), before)
    gpusim_api.run(config, out, seed=2, resume=True, **common)  # a resume keeps the id
    assert root_attributes(out)[STORE_ID] == new_id

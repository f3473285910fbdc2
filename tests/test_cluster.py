"""Runs on a dask.distributed cluster: identical to in-process, and a dead worker costs a retry."""

from __future__ import annotations

import os
import signal

import pytest
from helpers import firms_config
from test_store import assert_same_values

from gpusim import run
from gpusim.cli import main
from gpusim.executors.cluster import LOCAL_SETTINGS, cluster_client, local_devices, worker_devices
from gpusim.store import open_store

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    with cluster, distributed.Client(cluster) as c:
        yield c


@pytest.mark.parametrize("mode", ["cube", "summary"])
def test_cluster_run_is_bit_identical_to_in_process(tmp_path, mode, client):
    config = firms_config()
    local = run(config, tmp_path / "local.zarr", paths=5000, seed=21, block_paths=1000,
                mode=mode)
    remote = run(config, tmp_path / "remote.zarr", paths=5000, seed=21, block_paths=1000,
                 mode=mode, scheduler=client.scheduler.address)
    remote_ds = open_store(remote)
    assert remote_ds.attrs["device"].startswith("dask cluster of 2 workers")
    assert_same_values(open_store(local).compute(), remote_ds.compute())


def test_a_killed_worker_costs_only_a_retry(tmp_path, client):
    config = firms_config()
    local = run(config, tmp_path / "local.zarr", paths=16_000, seed=4, block_paths=1000)
    pids = list(client.run(os.getpid).values())
    finished = []

    def kill_one_worker_after_three_blocks(n: int) -> None:
        finished.append(n)
        if len(finished) == 3:
            os.kill(pids[0], signal.SIGKILL)

    remote = run(config, tmp_path / "remote.zarr", paths=16_000, seed=4, block_paths=1000,
                 scheduler=client.scheduler.address, on_block=kill_one_worker_after_three_blocks)
    assert len(finished) == 16
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it for the next test
    assert_same_values(open_store(local).compute(), open_store(remote).compute())


def test_cli_workers_option(tmp_path, small_yaml):
    out = tmp_path / "w.zarr"
    assert main(["run", str(small_yaml), "--paths", "3000", "--block-paths", "1000",
                 "--workers", "2", "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    assert open_store(out).attrs["device"].startswith("dask cluster of 2 workers")


def test_cluster_options_are_alternatives(tmp_path, small_yaml, capsys):
    out = tmp_path / "w.zarr"
    assert main(["run", str(small_yaml), "--workers", "2", "--scheduler", "tcp://x:1",
                 "--out", str(out), "--quiet"]) == 2
    assert "alternatives" in capsys.readouterr().err
    assert not out.exists()


def _environ(*names: str) -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in names}


def test_local_workers_do_not_get_the_nanny_malloc_trim_threshold(monkeypatch):
    """--workers N: no MALLOC_TRIM_THRESHOLD_ (it turns off glibc's adaptive mmap
    threshold: page faults on every block), one BLAS thread, OpenMP's threads shared out."""
    from gpusim.executors.cluster import cluster_client, worker_environ

    for name in ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("gpusim.executors.cluster.usable_threads", lambda: 4)
    environ = worker_environ(2)
    assert environ["MALLOC_TRIM_THRESHOLD_"] is None and environ["OMP_NUM_THREADS"] == "2"
    assert str(environ["OPENBLAS_NUM_THREADS"]) == "1"
    with cluster_client(workers=2) as c:
        seen = c.run(_environ, "MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS",
                     "OPENBLAS_NUM_THREADS")
    assert len(seen) == 2
    for env in seen.values():
        assert env == {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "2",
                       "OPENBLAS_NUM_THREADS": "1"}


def _dask_settings() -> dict[str, object]:
    import dask

    return {key: dask.config.get(key) for key in LOCAL_SETTINGS}


def _status_page(port: int) -> int:
    import urllib.error
    import urllib.request

    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=30).status
    except urllib.error.HTTPError as err:
        return err.code


def test_local_workers_get_gpusim_dask_settings():
    """--workers N: no 10 ms stack profiler in the workers, no work stealing."""
    with cluster_client(workers=2) as c:
        seen = c.run(_dask_settings)
        stealing = c.run_on_scheduler(lambda dask_scheduler: "stealing" in
                                      dask_scheduler.extensions)
        status = _status_page(c.scheduler_info()["services"]["dashboard"])
    assert LOCAL_SETTINGS["distributed.worker.profile.enabled"] is False
    assert all(found == LOCAL_SETTINGS for found in seen.values()) and len(seen) == 2
    assert stealing is False
    assert status == 404  # the scheduler's HTTP server answers, but serves no dashboard


@pytest.mark.parametrize("device", ["numpy", "cpu"])
def test_local_devices_are_what_the_workers_say(device, client):
    """Deciding the local workers' device here gives the provenance and resume identity
    that asking them (the probe) gives."""
    config = firms_config()
    resolved, description, kind = local_devices(config, device, 2)
    assert resolved == device
    found = worker_devices(client, config, device)
    if device == "cpu":  # the probe's workers are the fixture's: their thread count
        found = (found[0].split(",")[0], found[1])
        description = description.split(",")[0]
    assert (description, kind) == found


def test_workers_run_is_bit_identical_and_resumes_in_process(tmp_path):
    """The --workers path (cluster started while the store is laid out) writes the same
    bits as one process, and records the same resume identity."""
    config = firms_config()
    local = run(config, tmp_path / "local.zarr", paths=3000, seed=5, block_paths=1000,
                mode="summary", device="numpy")
    remote = run(config, tmp_path / "remote.zarr", paths=3000, seed=5, block_paths=1000,
                 mode="summary", device="numpy", workers=2)
    local_ds, remote_ds = open_store(local), open_store(remote)
    assert remote_ds.attrs["device"] == "dask cluster of 2 workers: cpu: numpy reference"
    assert remote_ds.attrs["backend"] == local_ds.attrs["backend"] == "numpy"
    assert_same_values(local_ds.compute(), remote_ds.compute())


def test_a_local_cluster_that_fails_to_start_fails_the_run(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no cluster today")

    monkeypatch.setattr("gpusim.executors.cluster._start_local", broken)
    with pytest.raises(RuntimeError, match="no cluster today"):
        run(firms_config(), tmp_path / "x.zarr", paths=200, device="numpy", workers=1)


def test_wind_down_closes_a_local_cluster_before_leaving():
    """The executor's wind_down starts the close at once (the run's record is then
    written while the workers shut down), and leaving waits for it."""
    import time

    from gpusim.executors.cluster import local_cluster

    with local_cluster(1) as (starting, wind_down):
        c = starting.result()
        assert c.status == "running"
        wind_down()
        deadline = time.monotonic() + 120
        while c.status != "closed" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert c.status == "closed"

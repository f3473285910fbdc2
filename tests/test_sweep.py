"""`gpusim sweep`: a grid of scenarios on common random numbers, checked before anything is
written, each scenario the same store as a plain run of it, resumable, compared paired."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
import yaml
from helpers import LESSOR, MINER, SMALL, firms_config

from gpusim import run, uncertainty
from gpusim.cli import main
from gpusim.errors import InputError
from gpusim.store import open_store
from gpusim.sweep import (
    Target,
    crossing,
    open_sweep,
    parse_target,
    parse_vary,
    plan_sweep,
    reverse_stress,
    run_sweep,
    sweep_document,
)

PRICE = "market.price.initial"


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep") / "firms.yaml"
    path.write_text(yaml.safe_dump({**SMALL, "firms": [LESSOR, MINER]}))
    return path


@pytest.fixture(scope="module")
def swept(config_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "sweep"
    argv = ["sweep", str(config_file), "--vary", f"{PRICE}=2.0,2.4", "--paths", "300",
            "--seed", "7", "--out", str(out), "--device", "cpu", "--block-paths", "150"]
    assert main(argv) == 0
    return out, argv


@pytest.mark.parametrize(("texts", "message"), [
    (["market.price.initial"], "expected KEY=V1,V2"),
    (["=1,2"], "expected KEY=V1,V2"),
    (["a=1,,2"], "expected KEY=V1,V2"),
    (["a=1,1"], "repeated"),
    (["a=1", "a=2"], "varied twice"),
    ([], "no --vary"),
])
def test_bad_vary_is_an_input_error(texts, message):
    with pytest.raises(InputError, match=message):
        parse_vary(texts)


def test_values_are_parsed_as_yaml():
    assert parse_vary(["a.b=1.5,2", "switches.jumps=true,false"]) == [
        ("a.b", [1.5, 2]), ("switches.jumps", [True, False])]


def test_a_bad_scenario_fails_before_anything_is_written(config_file, tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["sweep", str(config_file), "--vary", f"{PRICE}=2.0,-1", "--paths", "100",
                 "--out", str(out), "--device", "cpu"]) == 2
    assert "initial" in capsys.readouterr().err
    assert not out.exists()


def test_every_scenario_is_the_plain_run_of_it(swept, tmp_path):
    out, _ = swept
    record = json.loads((out / "sweep.json").read_text())
    assert [s["values"] for s in record["scenarios"]] == [{PRICE: 2.0}, {PRICE: 2.4}]
    assert record["seed"] == 7 and record["paths"] == 300
    plain = run(firms_config(f"{PRICE}=2.4"), tmp_path / "plain.zarr", paths=300, seed=7)
    scenario = open_store(out / record["scenarios"][1]["store"])
    xr.testing.assert_identical(scenario.loss_total.compute(),
                                xr.open_zarr(plain).loss_total.compute())
    np.testing.assert_array_equal(scenario.default_month, xr.open_zarr(plain).default_month)


def test_sweep_differences_are_paired(swept, capsys):
    out, _ = swept
    doc = sweep_document(out)
    comparison = doc["comparisons"][0]
    assert comparison["pairing"] == "paired"
    assert doc["baseline"] == f"{PRICE}=2.0" and comparison["store"] == f"{PRICE}=2.4"
    flipped = sweep_document(out, baseline=1)["comparisons"][0]["firms"][0]["difference"]
    first = comparison["firms"][0]["difference"]
    assert flipped["value"] == pytest.approx(-first["value"])
    assert flipped["se"] == pytest.approx(first["se"])
    with pytest.raises(InputError, match="--baseline 2"):
        sweep_document(out, baseline=2)


def test_an_existing_sweep_needs_resume_or_overwrite(swept, capsys):
    out, argv = swept
    assert main(argv) == 2
    assert "--resume" in capsys.readouterr().err
    before = (out / "scenario_000.zarr" / "zarr.json").stat().st_mtime_ns
    assert main([*argv, "--resume"]) == 0  # finished scenarios are kept as they are
    assert (out / "scenario_000.zarr" / "zarr.json").stat().st_mtime_ns == before
    assert "paired" in capsys.readouterr().out
    changed = list(argv)
    changed[changed.index("7")] = "8"
    assert main([*changed, "--resume"]) == 2
    assert "different sweep" in capsys.readouterr().err


def test_crossing_interpolates_linearly():
    xs = np.array([1.0, 2.0, 3.0])
    assert crossing(xs, np.array([0.1, 0.3, 0.5]), 0.2) == pytest.approx(1.5)
    assert crossing(xs, np.array([0.5, 0.3, 0.1]), 0.2) == pytest.approx(2.5)
    assert crossing(xs, np.array([0.1, 0.3, 0.5]), 0.6) is None
    assert crossing(xs, np.array([0.1, 0.3, 0.5]), 0.5) == 3.0


def test_reverse_stress_finds_the_crossing_with_an_interval(swept):
    out, _ = swept
    _, stores = open_sweep(out)
    pds = [float(uncertainty.default_probability(ds).sel(firm="miner").isel(month=-1).value)
           for ds in stores]
    target = (pds[0] + pds[1]) / 2
    answer = reverse_stress(out, Target("miner", "2027-12", target))
    assert answer["key"] == PRICE
    assert answer["value"] == pytest.approx(2.2)  # halfway, linearly
    low, high = answer["ci"]
    assert low is None or low <= answer["value"]
    assert high is None or high >= answer["value"]
    assert [p["value"] for p in answer["grid"]] == [2.0, 2.4]


@pytest.mark.parametrize(("text", "message"), [
    ("miner,2027-12", "expected FIRM,YYYY-MM,PD"),
    ("nobody,2027-12,0.2", "firm 'nobody' is not in the config"),
    ("miner,2030-01,0.2", "outside the run"),
    ("miner,2027-12,1.5", "expected a probability"),
])
def test_bad_reverse_question_is_an_input_error(text, message):
    with pytest.raises(InputError, match=message):
        parse_target(text, firms_config(), [(PRICE, [2.0, 2.4])])
    with pytest.raises(InputError, match="one numeric key"):
        parse_target("miner,2027-12,0.2", firms_config(), [("switches.jumps", [True, False])])


def test_cli_reverse_stress(swept, capsys):
    _, argv = swept
    assert main([*argv, "--resume", "--reverse", "miner,2027-12,0.5"]) == 0
    assert "miner's PD by 2027-12 crosses 50.0%" in capsys.readouterr().out


def test_cluster_options_are_checked_before_anything_is_written(config_file, tmp_path, capsys):
    out = tmp_path / "clash"
    assert main(["sweep", str(config_file), "--vary", f"{PRICE}=2.0,2.4", "--paths", "100",
                 "--out", str(out), "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert "--workers" in capsys.readouterr().err and not out.exists()


def test_a_sweep_on_a_dask_cluster_equals_the_in_process_one(swept, config_file, tmp_path):
    distributed = pytest.importorskip("distributed")
    out, _ = swept
    vary = [(PRICE, [2.0, 2.4])]
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        run_args = {"paths": 300, "seed": 7, "block_paths": 150, "device": "cpu",
                    "scheduler": cluster.scheduler_address}
        remote = run_sweep(plan_sweep(config_file, vary, tmp_path / "remote", **run_args), vary,
                           tmp_path / "remote", run_args)
    for name in ("scenario_000.zarr", "scenario_001.zarr"):
        a, b = open_store(out / name), open_store(remote / name)
        assert b.attrs["device"].startswith("dask cluster")
        xr.testing.assert_identical(a.loss_total.compute(), b.loss_total.compute())

"""`gpusim sweep`: a grid of scenarios on common random numbers, checked before anything is
written, into ONE store with a `scenario` dimension whose scenario k holds the same bits
as a plain run of it; resumable per (scenario, block); compared paired."""

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
from gpusim.results import summary_document
from gpusim.store import CONTROL_GROUP, blocks_done, open_store
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
RUN = {"paths": 300, "seed": 7, "block_paths": 150}


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep") / "firms.yaml"
    path.write_text(yaml.safe_dump({**SMALL, "firms": [LESSOR, MINER]}))
    return path


@pytest.fixture(scope="module")
def swept(config_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "sweep.zarr"
    argv = ["sweep", str(config_file), "--vary", f"{PRICE}=2.0,2.4", "--paths", "300",
            "--seed", "7", "--out", str(out), "--device", "cpu", "--block-paths", "150"]
    assert main(argv) == 0
    return out, argv


def assert_same_bits(one: xr.Dataset, plain: xr.Dataset) -> None:
    """Every data variable of a sweep's scenario equals the plain run's, bit for bit."""
    assert set(one.data_vars) == set(plain.data_vars)
    for name in plain.data_vars:
        np.testing.assert_array_equal(one[name].values, plain[name].values, err_msg=name)


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


@pytest.mark.parametrize(("vary", "message"), [
    (f"{PRICE}=2.0,-1", "initial"),
    ("horizon_months=24,30", "changes horizon_months"),
    ("path=1,2", "names a coordinate"),
    ("no_such.key=1,2", "no_such"),
])
def test_a_bad_scenario_fails_before_anything_is_written(config_file, tmp_path, capsys, vary,
                                                         message):
    out = tmp_path / "bad.zarr"
    assert main(["sweep", str(config_file), "--vary", vary, "--paths", "100",
                 "--out", str(out), "--device", "cpu"]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_the_store_has_a_scenario_dimension(swept):
    out, _ = swept
    ds = open_sweep(out)
    assert ds.sizes["scenario"] == 2
    assert list(ds["scenario"].values) == [f"{PRICE}=2.0", f"{PRICE}=2.4"]
    assert ds[PRICE].dtype == np.float64 and list(ds[PRICE].values) == [2.0, 2.4]
    assert ds["loss_total"].dims == ("scenario", "path", "facility")
    assert ds["loss_total"].chunks[0] == (1, 1)  # one scenario per chunk
    assert yaml.safe_load(str(ds["scenario_config"].values[1]))["market"]["price"][
        "initial"] == 2.4
    assert json.loads(ds.attrs["sweep"])["vary"] == [[PRICE, [2.0, 2.4]]]
    assert ds.attrs["sweep_baseline"] == 0
    assert blocks_done(out).shape == (2, 2) and blocks_done(out).all()


def test_a_two_key_grid_has_both_keys_as_coordinates(config_file, tmp_path):
    vary = parse_vary([f"{PRICE}=2.0,2.4", "switches.jumps=true,false"])
    out = run_sweep(plan_sweep(config_file, vary, tmp_path / "grid.zarr", paths=100,
                               block_paths=100, device="cpu", mode="summary"))
    ds = open_sweep(out)
    assert ds.sizes["scenario"] == 4
    assert list(ds[PRICE].values) == [2.0, 2.0, 2.4, 2.4]
    assert list(ds["switches.jumps"].values) == [True, False, True, False]
    assert ds["scenario"].values[1] == f"{PRICE}=2.0, switches.jumps=False"
    assert sweep_document(ds)["sweep"]["scenarios"][3]["values"] == {
        PRICE: 2.4, "switches.jumps": False}


@pytest.mark.parametrize(("mode", "device"), [("cube", "numpy"), ("cube", "cpu"),
                                              ("summary", "numpy"), ("summary", "cpu")])
def test_every_scenario_is_the_plain_run_of_it(config_file, tmp_path, mode, device):
    vary = [(PRICE, [2.0, 2.4])]
    args = RUN | {"mode": mode, "device": device}
    ds = open_sweep(run_sweep(plan_sweep(config_file, vary, tmp_path / "s.zarr", **args)))
    for k, price in enumerate((2.0, 2.4)):
        plain = run(firms_config(f"{PRICE}={price}"), tmp_path / f"plain{k}.zarr", **args)
        assert_same_bits(ds.isel(scenario=k), xr.open_zarr(plain))


def test_a_selected_scenario_is_a_run_store_for_the_analysis(swept, tmp_path):
    out, _ = swept
    ds = open_sweep(out)
    plain = open_store(run(firms_config(f"{PRICE}=2.4"), tmp_path / "p.zarr", device="cpu",
                           **RUN))
    for one in (ds.isel(scenario=1), ds.gpusim.scenario(1)):
        doc, reference = summary_document(one), summary_document(plain)
        assert doc["firms"] == reference["firms"]
        assert doc["facilities"] == reference["facilities"]
    assert yaml.safe_load(ds.gpusim.scenario(1).attrs["config"]) == yaml.safe_load(
        plain.attrs["config"])


def test_by_scenario_and_paired_differences(swept):
    out, _ = swept
    ds = open_sweep(out)
    by = ds.gpusim.by_scenario().compute()
    for k in range(2):
        one = ds.isel(scenario=k)
        np.testing.assert_array_equal(by["pd"].isel(scenario=k),
                                      uncertainty.default_probability(one)["value"])
        np.testing.assert_array_equal(by["expected_loss"].isel(scenario=k),
                                      uncertainty.expected_loss(one)["value"])
    versus = ds.gpusim.versus().compute()
    assert versus.attrs["baseline"] == 0
    assert float(abs(versus["pd_difference"].isel(scenario=0)).max()) == 0
    np.testing.assert_allclose(versus["pd_difference"].isel(scenario=1),
                               by["pd"].isel(scenario=1) - by["pd"].isel(scenario=0),
                               atol=1e-12)
    doc = sweep_document(ds)["comparisons"][0]
    row = doc["firms"][0]
    month = list(np.datetime_as_string(ds["month"].values, unit="M")).index(row["month"])
    paired = versus.sel(firm=row["name"]).isel(scenario=1, month=month)
    assert float(paired["pd_difference_se"]) == pytest.approx(row["difference"]["se"])
    independent = np.hypot(row["baseline"]["se"], row["other"]["se"])
    assert row["difference"]["se"] < independent  # common random numbers pay off
    facility = doc["facilities"][0]
    assert float(versus["expected_loss_difference_se"].sel(facility=facility["name"])
                 .isel(scenario=1)) == pytest.approx(facility["expected_loss"]["difference"]
                                                     ["se"])


def test_sweep_differences_are_paired(swept):
    out, _ = swept
    ds = open_sweep(out)
    doc = sweep_document(ds)
    comparison = doc["comparisons"][0]
    assert comparison["pairing"] == "paired"
    assert doc["baseline"] == f"{PRICE}=2.0" and comparison["store"] == f"{PRICE}=2.4"
    assert doc["sweep"]["scenarios"][1]["values"] == {PRICE: 2.4}
    flipped = sweep_document(ds, baseline=1)["comparisons"][0]["firms"][0]["difference"]
    first = comparison["firms"][0]["difference"]
    assert flipped["value"] == pytest.approx(-first["value"])
    assert flipped["se"] == pytest.approx(first["se"])
    with pytest.raises(InputError, match="--baseline 2"):
        sweep_document(ds, baseline=2)


def test_summary_compare_and_report_read_the_store(swept, tmp_path, capsys):
    out, _ = swept
    assert main(["summary", str(out), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["sweep"]["baseline"] == 0 and len(doc["summaries"]) == 2
    assert doc["summaries"][1]["scenario"] == f"{PRICE}=2.4"
    assert main(["summary", str(out), "--format", "csv", "--baseline", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("scenario,table,name")
    assert any(",pd_difference," in line for line in lines)
    assert main(["summary", str(out)]) == 0
    assert "paired" in capsys.readouterr().out
    assert main(["compare", str(out), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["comparisons"][0]["pairing"] == "paired"
    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "index.html").is_file()


def test_an_existing_sweep_needs_resume_or_overwrite(swept, capsys):
    out, argv = swept
    stamp = (out / "zarr.json").stat().st_mtime_ns
    assert main(argv) == 2
    assert "--resume" in capsys.readouterr().err
    changed = list(argv)
    changed[changed.index("7")] = "8"
    assert main([*changed, "--resume"]) == 2
    assert "different sweep" in capsys.readouterr().err
    regrid = [*argv[:3], f"{PRICE}=2.0,2.8", *argv[4:]]
    assert main([*regrid, "--resume"]) == 2
    assert "different sweep" in capsys.readouterr().err
    assert (out / "zarr.json").stat().st_mtime_ns == stamp  # refusals write nothing
    assert main([*argv, "--resume"]) == 0  # finished (scenario, block)s are kept
    assert "paired" in capsys.readouterr().out


def test_resume_of_a_plain_run_store_is_refused(config_file, tmp_path, capsys):
    out = run(firms_config(), tmp_path / "plain.zarr", device="cpu", **RUN)
    assert main(["sweep", str(config_file), "--vary", f"{PRICE}=2.0,2.4", "--out", str(out),
                 "--paths", "300", "--device", "cpu", "--resume"]) == 2
    assert "no sweep to resume" in capsys.readouterr().err


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("mode", ["cube", "summary"])
def test_an_interrupted_sweep_resumes_to_the_same_bits(config_file, tmp_path, mode,
                                                       monkeypatch):
    monkeypatch.setenv("GPUSIM_CHECKPOINT_SECONDS", "0")  # summary: checkpoint every block
    import gpusim.store

    monkeypatch.setattr(gpusim.store, "CHECKPOINT_SECONDS", 0.0)
    vary = [(PRICE, [2.0, 2.4, 2.8])]
    args = RUN | {"mode": mode, "device": "cpu", "block_paths": 100}
    whole = open_sweep(run_sweep(plan_sweep(config_file, vary, tmp_path / "whole.zarr",
                                            **args)))
    out = tmp_path / "cut.zarr"
    seen = [0]

    def stop_after_four(n):
        seen[0] += 1
        if seen[0] == 4:  # the first scenario's three blocks and one of the second's
            raise Interrupt

    with pytest.raises(Interrupt):
        run_sweep(plan_sweep(config_file, vary, out, **args), stop_after_four)
    done = blocks_done(out)
    assert done[0].all() and 1 <= done[1].sum() < 3 and not done[2].any()
    computed = []
    real = gpusim.store.mark_done
    monkeypatch.setattr(gpusim.store, "mark_done",
                        lambda o, blocks, scenario=None: (computed.append((scenario, blocks)),
                                                          real(o, blocks, scenario)))
    run_sweep(plan_sweep(config_file, vary, out, resume=True, **args))
    assert all(scenario != 0 for scenario, _ in computed)  # the finished one is not redone
    resumed = open_sweep(out)
    assert_same_bits(resumed, whole)
    assert resumed.attrs["resumed_on"]


def test_a_killed_sweep_resumes_to_the_same_bits(swept, config_file, tmp_path):
    from reliability import killed_at

    out, argv = swept
    target = tmp_path / "killed.zarr"
    args = [*argv[1:argv.index("--out")], "--out", str(target), *argv[argv.index("--out") + 2:]]
    assert killed_at("store", "mark_done", 3, False, "sweep", *args) < 0  # SIGKILL
    assert blocks_done(target).sum() == 3 and not (target / CONTROL_GROUP).is_symlink()
    assert main(["sweep", *args, "--resume"]) == 0
    assert_same_bits(open_sweep(target), open_sweep(out))


def test_overwrite_replaces_the_store(swept, config_file, tmp_path):
    out = tmp_path / "o.zarr"
    vary = [(PRICE, [2.0, 2.4])]
    run_sweep(plan_sweep(config_file, vary, out, device="cpu", **RUN))
    first = open_sweep(out).attrs["store_id"]
    run_sweep(plan_sweep(config_file, vary, out, overwrite=True, device="cpu", **RUN))
    ds = open_sweep(out)
    assert ds.attrs["store_id"] != first
    assert_same_bits(ds, open_sweep(swept[0]))


def test_crossing_interpolates_linearly():
    xs = np.array([1.0, 2.0, 3.0])
    assert crossing(xs, np.array([0.1, 0.3, 0.5]), 0.2) == pytest.approx(1.5)
    assert crossing(xs, np.array([0.5, 0.3, 0.1]), 0.2) == pytest.approx(2.5)
    assert crossing(xs, np.array([0.1, 0.3, 0.5]), 0.6) is None
    assert crossing(xs, np.array([0.1, 0.3, 0.5]), 0.5) == 3.0


def test_reverse_stress_finds_the_crossing_with_an_interval(swept):
    out, _ = swept
    ds = open_sweep(out)
    pds = [float(uncertainty.default_probability(one).sel(firm="miner").isel(month=-1).value)
           for one in (ds.isel(scenario=0), ds.isel(scenario=1))]
    target = (pds[0] + pds[1]) / 2
    answer = reverse_stress(ds, Target("miner", "2027-12", target))
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
    out = tmp_path / "clash.zarr"
    assert main(["sweep", str(config_file), "--vary", f"{PRICE}=2.0,2.4", "--paths", "100",
                 "--out", str(out), "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert "--workers" in capsys.readouterr().err and not out.exists()


def test_a_sweep_on_a_dask_cluster_equals_the_in_process_one(swept, config_file, tmp_path):
    distributed = pytest.importorskip("distributed")
    out, _ = swept
    vary = [(PRICE, [2.0, 2.4])]
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        remote = run_sweep(plan_sweep(config_file, vary, tmp_path / "remote.zarr",
                                      device="cpu", scheduler=cluster.scheduler_address,
                                      **RUN))
    a, b = open_sweep(out), open_sweep(remote)
    assert b.attrs["device"].startswith("dask cluster")
    assert_same_bits(b, a)

"""`--target-se`: a run that adds blocks until every firm's horizon default probability has
a standard error below the target equals, array for array, a fixed-size run of the paths
it stopped at; it resumes where it was interrupted and stops at the cap, saying so."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import xarray as xr
import zarr
from helpers import firms_config, small_config

from gpusim import target
from gpusim.cli import main
from gpusim.config import config_to_yaml
from gpusim.errors import InputError
from gpusim.plan import Growth, check_run, execute, run

BLOCK = 200
"""firms_config's PDs at the horizon are about 0.3 and 0.76: se ≈ 0.032 after one block."""


def run_to_target(out, se, cap=2000, mode="summary", resume=False):
    request = check_run(firms_config(), out, paths=cap, seed=4, block_paths=BLOCK,
                        mode=mode, resume=resume, device="cpu")
    return execute(target.with_target(request, se))


def arrays(path):
    """{name: (metadata without attributes, raw bytes)} of every array, control group too."""
    out = {}

    def walk(group, prefix):
        for name, member in group.members():
            if isinstance(member, zarr.Group):
                walk(member, f"{prefix}{name}/")
            else:
                meta = member.metadata.to_dict()
                out[prefix + name] = (meta, np.ascontiguousarray(member[...]).tobytes())
    walk(zarr.open_group(path, mode="r"), "")
    return out


@pytest.mark.parametrize("mode", ["summary", "cube"])
def test_a_run_to_a_target_equals_the_fixed_run_of_its_paths(tmp_path, mode):
    store = run_to_target(tmp_path / "t.zarr", 0.02, mode=mode)
    attrs = zarr.open_group(store, mode="r").attrs
    paths = int(attrs["paths"])
    assert BLOCK < paths < 2000 and paths % BLOCK == 0  # grew past one block, stopped early
    assert attrs["target_se"] == 0.02 and attrs["target_se_met"] and attrs["paths_cap"] == 2000
    fixed = run(firms_config(), tmp_path / "f.zarr", paths=paths, seed=4, block_paths=BLOCK,
                mode=mode, device="cpu")
    assert arrays(store) == arrays(fixed)
    ds = xr.open_zarr(store)
    se = ds.gpusim.default_curve(errors=True).isel(month=-1)["se"].values
    assert attrs["target_se_achieved"] == pytest.approx(se.max(), rel=1e-12) and se.max() < 0.02
    fewer = xr.open_zarr(store).isel(path=slice(0, paths - BLOCK))  # one block less: not enough
    assert target.horizon_se(fewer.default_month.values).max() >= 0.02


def test_horizon_se_is_the_binomial_error_and_wanted_paths_follow_one_over_root_n():
    dm = np.array([[0, -1], [-1, -1], [5, -1], [-1, 3]])  # (path, firm): p = 0.5, 0.25
    np.testing.assert_allclose(target.horizon_se(dm), np.sqrt([0.25 / 4, 0.1875 / 4]))
    assert target.paths_wanted(np.array([0.01, 0.02]), 100, 0.01) == 400
    assert target.paths_wanted(np.array([0.0099]), 100, 0.01) == 100
    assert target.paths_wanted(np.array([0.010001]), 100, 0.01) == 101  # at least one more


def test_an_interrupted_run_resumes_to_the_same_store(tmp_path):
    whole = run_to_target(tmp_path / "whole.zarr", 0.02)
    request = target.with_target(check_run(firms_config(), tmp_path / "cut.zarr", paths=2000,
                                           seed=4, block_paths=BLOCK, mode="summary",
                                           device="cpu"), 0.02)
    calls = []

    def interrupted(out, paths):
        calls.append(paths)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return request.growth.want(out, paths)

    growth = Growth(want=interrupted, attrs=request.growth.attrs)
    with pytest.raises(KeyboardInterrupt):
        execute(dataclasses.replace(request, growth=growth))
    resumed = run_to_target(tmp_path / "cut.zarr", 0.02, resume=True)
    assert arrays(resumed) == arrays(whole)


def test_at_the_cap_the_run_stops_and_says_the_target_is_not_met(tmp_path, capsys):
    config = tmp_path / "firms.yaml"
    config.write_text(config_to_yaml(firms_config()))
    out = tmp_path / "cap.zarr"
    assert main(["run", str(config), "--paths", "400", "--block-paths", str(BLOCK), "--seed",
                 "4", "--target-se", "0.001", "--out", str(out), "--quiet"]) == 0
    assert "reached the cap --paths 400" in capsys.readouterr().err
    attrs = zarr.open_group(out, mode="r").attrs
    assert attrs["paths"] == 400 and not attrs["target_se_met"]
    assert attrs["target_se_achieved"] > 0.001
    fixed = run(firms_config(), tmp_path / "f.zarr", paths=400, seed=4, block_paths=BLOCK,
                mode="summary")
    assert arrays(out) == arrays(fixed)
    assert main(["summary", str(out), "--format", "json"]) == 0
    run_doc = json.loads(capsys.readouterr().out)["run"]
    assert run_doc["paths"] == run_doc["paths_cap"] == 400 and run_doc["target_se"] == 0.001
    assert run_doc["target_se_met"] is False


@pytest.mark.parametrize(("config", "value", "message"), [
    (firms_config, -0.01, "expected a positive number"),
    (firms_config, float("nan"), "expected a positive number"),
    (small_config, 0.01, "has no firms"),
])
def test_a_bad_target_is_refused_before_anything_is_written(tmp_path, config, value, message):
    out = tmp_path / "x.zarr"
    with pytest.raises(InputError, match=message):
        target.with_target(check_run(config(), out, paths=400), value)
    assert not out.exists()


@pytest.mark.parametrize("mode", ["summary", "cube"])
def test_a_run_killed_just_before_its_shrink_resumes(tmp_path, mode, monkeypatch):
    """Every block is done but the store still has the cap's layout: the same command with
    --resume finds it, decides the same and shrinks it."""
    whole = run_to_target(tmp_path / "whole.zarr", 0.02, mode=mode)
    from gpusim import plan

    def killed(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(plan, "shrink_paths", killed)
    with pytest.raises(KeyboardInterrupt):
        run_to_target(tmp_path / "cut.zarr", 0.02, mode=mode)
    monkeypatch.undo()
    resumed = run_to_target(tmp_path / "cut.zarr", 0.02, mode=mode, resume=True)
    assert arrays(resumed) == arrays(whole)

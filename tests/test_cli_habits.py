"""CLI habits: validate --print writes only the config, --help lists every command,
--set finds list items by name, amounts print with k/m/bn/tn, shipped scenarios run by
name from anywhere and copy out, summary is the default mode, a run states its cost
first, a large cube needs a flag, and a dask run prints its dashboard link."""

from __future__ import annotations

import pytest
import yaml
from helpers import LESSOR, MINER, SMALL

import gpusim.cli
from gpusim.analysis import format_value
from gpusim.cli import COMMANDS, main
from gpusim.config import apply_overrides, config_from_dict
from gpusim.errors import InputError
from gpusim.results import summary_document
from gpusim.scenarios import scenario_names
from gpusim.store import open_store


@pytest.fixture
def firms_yaml(tmp_path):
    raw = apply_overrides(SMALL, [])
    raw["firms"] = [apply_overrides(LESSOR, []), apply_overrides(MINER, [])]
    path = tmp_path / "firms.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_validate_print_writes_only_a_config_that_revalidates(tmp_path, capsys):
    assert main(["validate", "token_boom", "--print", "--set", "market.price.initial=2.1"]) == 0
    out, err = capsys.readouterr()
    assert "valid (token_boom, 84 months" in err and "valid" not in out
    assert yaml.safe_load(out)["market"]["price"]["initial"] == 2.1
    again = tmp_path / "printed.yaml"
    again.write_text(out)
    assert main(["validate", str(again)]) == 0
    assert "valid (token_boom, 84 months" in capsys.readouterr().out


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for name in COMMANDS:
        assert f"\n    {name} " in text, name


def test_set_addresses_list_items_by_name_or_index():
    raw = apply_overrides(SMALL, [])
    raw["firms"] = [apply_overrides(LESSOR, []), apply_overrides(MINER, [])]
    by_name = apply_overrides(raw, ["firms.lessor.facilities.notes.rate=0.12",
                                    "market.price.launches.B200 volume.log_impact=0.2"])
    by_index = apply_overrides(raw, ["firms.0.facilities.1.rate=0.12",
                                     "market.price.launches.0.log_impact=0.2"])
    assert by_name == by_index != raw
    assert config_from_dict(by_name).firms[0].facilities[1].rate == 0.12
    with pytest.raises(InputError, match=r"firms is a list of 2 items; expected an index "
                                         r"0\.\.1 or a name \(lessor, miner\), got 'lesor'"):
        apply_overrides(raw, ["firms.lesor.opening_cash=1"])


@pytest.mark.parametrize(("value", "text"), [
    (0.0, "0"), (0.1234, "0.123"), (950.0, "950"), (12_500.0, "12.5k"), (999_999.0, "1m"),
    (4.5e8, "450m"), (1.23e9, "1.23bn"), (-3.2e9, "-3.2bn"), (2.1e12, "2.1tn"),
    (2.0e15, "2e15"), (3.94e15, "3.94e15"), (-1.2e18, "-1.2e18"), (float("nan"), "nan"),
])
def test_amounts_print_as_finance_readers_expect(value, text):
    assert format_value(value) == text


def test_shipped_scenarios_run_by_name_from_anywhere(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["configs"]) == 0
    listing = capsys.readouterr().out
    for name in scenario_names():
        assert name in listing
    assert "Token demand keeps growing" in listing
    out = tmp_path / "boom.zarr"
    assert main(["run", "token_boom", "--paths", "40", "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert printed.index("estimated store") < printed.index("wrote")
    ds = open_store(out)
    assert ds.attrs["scenario"] == "token_boom" and ds.attrs["mode"] == "summary"
    assert "extends: base.yaml" in ds.attrs["config_given"]  # its parent is recorded too


def test_copy_out_a_scenario_to_edit(tmp_path, capsys):
    dest = tmp_path / "mine"
    assert main(["configs", "--copy", "token_boom", "--to", str(dest)]) == 0
    assert sorted(p.name for p in dest.iterdir()) == ["base.yaml", "gpusim.schema.json",
                                                      "token_boom.yaml"]
    assert main(["validate", str(dest / "token_boom.yaml")]) == 0
    edited = (dest / "token_boom.yaml").read_text() + "\n# my edit\n"
    (dest / "token_boom.yaml").write_text(edited)
    capsys.readouterr()
    assert main(["configs", "--copy", "token_boom", "--to", str(dest)]) == 2
    assert "refusing to replace" in capsys.readouterr().err
    assert (dest / "token_boom.yaml").read_text() == edited
    assert main(["configs", "--copy", "no_such", "--to", str(dest)]) == 2
    assert "one of base" in capsys.readouterr().err


def test_an_unknown_scenario_name_says_what_exists(tmp_path, capsys):
    assert main(["run", "bse", "--out", str(tmp_path / "x.zarr")]) == 2
    err = capsys.readouterr().err
    assert "'bse' is neither a file nor a shipped scenario" in err and "token_boom" in err


def test_a_large_cube_needs_a_flag(tmp_path, firms_yaml, capsys, monkeypatch):
    out = tmp_path / "big.zarr"
    assert main(["run", "base", "--mode", "cube", "--paths", "200000", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--allow-large-cube" in err and "about 1.8 GB" in err and "1.0 GB limit" in err
    assert not out.exists()
    monkeypatch.setattr(gpusim.cli, "CUBE_LIMIT_BYTES", 10_000)
    args = ["run", str(firms_yaml), "--mode", "cube", "--paths", "64", "--out", str(out),
            "--quiet"]
    assert main(args) == 2 and not out.exists()
    assert main([*args, "--allow-large-cube"]) == 0
    assert open_store(out).attrs["mode"] == "cube"


def test_a_dask_run_prints_its_dashboard_link_when_asked(tmp_path, firms_yaml, capfd):
    out = tmp_path / "d.zarr"
    assert main(["run", str(firms_yaml), "--paths", "200", "--workers", "1", "--quiet",
                 "--device", "cpu", "--out", str(out), "--dashboard"]) == 0
    err = capfd.readouterr().err
    assert "dask dashboard: http://" in err
    assert ":8787/" not in err  # conftest: a free port, never dask's usual one


def test_a_local_cluster_serves_no_dashboard_unless_asked(tmp_path, firms_yaml, capfd):
    """Serving it costs the in-process scheduler CPU that the workers need."""
    out = tmp_path / "d.zarr"
    assert main(["run", str(firms_yaml), "--paths", "200", "--workers", "1", "--quiet",
                 "--device", "cpu", "--out", str(out)]) == 0
    assert "dask dashboard" not in capfd.readouterr().err


def test_dashboard_needs_a_cluster_started_here(tmp_path, firms_yaml, capsys):
    out = tmp_path / "d.zarr"
    assert main(["run", str(firms_yaml), "--paths", "200", "--out", str(out),
                 "--dashboard", ":0"]) == 2
    assert "--dashboard" in capsys.readouterr().err and not out.exists()


def test_a_store_that_would_not_fit_on_the_disk_is_refused(tmp_path, firms_yaml, capsys,
                                                           monkeypatch):
    class Tiny:
        free = 1_000

    monkeypatch.setattr(gpusim.cli.shutil, "disk_usage", lambda path: Tiny)
    out = tmp_path / "x.zarr"
    assert main(["run", str(firms_yaml), "--paths", "64", "--out", str(out)]) == 2
    assert "only 1.0 kB is free" in capsys.readouterr().err and not out.exists()


def test_run_prints_its_tables_from_one_summary_document(tmp_path, monkeypatch, capsys):
    """The market and credit tables after a run come from one summary document: the
    document reads every estimate from the store, which took as long as the run itself."""
    calls = []

    def counted(ds):
        calls.append(ds)
        return summary_document(ds)

    monkeypatch.setattr(gpusim.cli, "summary_document", counted)
    out = tmp_path / "base.zarr"
    assert main(["run", "base", "--paths", "64", "--out", str(out), "--device", "numpy"]) == 0
    printed = capsys.readouterr().out
    assert len(calls) == 1
    assert "coreweave_like" in printed and "rental_price" in printed  # both tables


def test_summarizing_a_store_loads_neither_distributed_nor_scipy_stats(tmp_path, firms_yaml):
    """`gpusim summary` in a fresh process: its dask reads run on local threads without
    dask importing distributed to look for a client, and the intervals' ranks come from
    scipy.special (distributed and scipy.stats take ~0.6 and ~1 s to import)."""
    import subprocess
    import sys

    store = tmp_path / "s.zarr"
    assert main(["run", str(firms_yaml), "--paths", "300", "--out", str(store), "--quiet"]) == 0
    script = ("import sys; from gpusim.cli import main; "
              f"assert main(['summary', {str(store)!r}, '--format', 'json']) == 0; "
              "print(sorted(m for m in ('distributed', 'scipy.stats') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"

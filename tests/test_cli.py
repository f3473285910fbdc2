"""The CLI: bad configs and arguments exit with 2, name the field, and write nothing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from helpers import SMALL

from gpusim.cli import main
from gpusim.config import apply_overrides


def write_config(tmp_path, *overrides, text=None):
    path = tmp_path / "c.yaml"
    path.write_text(text if text is not None else
                    yaml.safe_dump(apply_overrides(SMALL, overrides)))
    return path


BAD_CONFIGS = [
    (("market.price.intial=2",), "market.price.intial: unknown key; did you mean 'initial'?"),
    (("market.price.initial=-2",), "market.price.initial = -2"),
    (("start=2026-1",), "start = '2026-1'"),
    (("market.price.launches.0.month=2040-01",), "market.price.launches.0.month = '2040-01'"),
    (("correlations.price-collateral=0.95", "correlations.demand-price=0.95",
      "correlations.demand-collateral=-0.95"), "smallest eigenvalue"),
    (("correlations.price-mood=0.2",), "'price-mood'"),
    (("horizon_months=1",), "horizon_months = 1"),
    (("market.capacity.build.0.value=-5",), "market.capacity.build.0.value = -5"),
    (("market.capacity.lag_months=2.5",), "market.capacity.lag_months = 2.5"),
    (("market.regime.initial=panic",), "market.regime.initial = 'panic'"),
]


@pytest.mark.parametrize(("overrides", "named"), BAD_CONFIGS)
def test_bad_config_exits_2_names_field_writes_nothing(tmp_path, capsys, overrides, named):
    config = write_config(tmp_path, *overrides)
    out = tmp_path / "out.zarr"
    assert main(["run", str(config), "--paths", "10", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err
    assert not out.exists()
    assert main(["validate", str(config)]) == 2


BAD_ARGUMENTS = [
    (["--paths", "0"], "--paths"),
    (["--paths", "lots"], "--paths"),
    (["--paths", "1.5e3"], None),  # 1500 is fine: the control case
    (["--seed", "-1"], "--seed"),
    (["--seed", str(2**64)], "--seed"),
    (["--block-paths", "0"], "--block-paths"),
    (["--set", "market.price.initial"], "--set 'market.price.initial'"),
    (["--set", "market.price.launches.7.month=2027-01"], "index 0..0"),
    (["--set", "market.price.initial=cheap"], "market.price.initial = 'cheap'"),
    (["--device", "tpu"], "--device"),
]


@pytest.mark.parametrize(("extra", "named"), BAD_ARGUMENTS)
def test_bad_arguments_exit_2_and_write_nothing(tmp_path, capsys, extra, named):
    config = write_config(tmp_path)
    out = tmp_path / "out.zarr"
    code = main(["run", str(config), "--out", str(out), "--quiet", "--paths", "10", *extra])
    err = capsys.readouterr().err
    if named is None:
        assert code == 0 and out.exists()
        return
    assert code == 2, err
    assert named in err and "Traceback" not in err
    assert not out.exists()


def test_missing_and_malformed_config_files(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = write_config(tmp_path, text="market: [unclosed\n")
    assert main(["validate", str(bad)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    listy = write_config(tmp_path, text="- 1\n- 2\n")
    assert main(["validate", str(listy)]) == 2
    assert "must hold a mapping" in capsys.readouterr().err


def test_existing_output_is_never_lost(tmp_path, capsys):
    config = write_config(tmp_path)
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "notes.txt").write_text("precious")
    assert main(["run", str(config), "--paths", "10", "--out", str(keep)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["run", str(config), "--paths", "10", "--out", str(keep), "--overwrite"]) == 2
    assert "not a zarr store" in capsys.readouterr().err
    assert (keep / "notes.txt").read_text() == "precious"


def test_summary_of_a_non_store_exits_2(tmp_path, capsys):
    assert main(["summary", str(tmp_path)]) == 2
    assert "not a zarr store" in capsys.readouterr().err


def test_schema_is_json(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "Config" and "market" in schema["properties"]


def test_entry_point_runs_as_a_program(tmp_path):
    config = write_config(tmp_path, "correlations.price-mood=0.2")
    proc = subprocess.run([sys.executable, "-m", "gpusim.cli", "validate", str(config)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "price-mood" in proc.stderr and "Traceback" not in proc.stderr

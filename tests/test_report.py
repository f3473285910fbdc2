"""The HTML report (cube and summary stores), `gpusim report`, and the example notebook."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from helpers import firms_config, small_config

from gpusim import run
from gpusim.cli import main
from gpusim.report import write_report
from gpusim.store import open_store

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "analysis.ipynb"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MARKET_PNGS = ["fan_rental_price.png", "fan_collateral_value.png", "fan_token_demand.png",
               "fan_utilization.png"]
CREDIT_PNGS = ["default_curve.png", "ltv_breach.png", "loss_ddtl.png", "loss_notes.png",
               "loss_gpu_loan.png", "exposure_ddtl.png", "exposure_notes.png",
               "exposure_gpu_loan.png"]


@pytest.fixture(scope="module", params=["cube", "summary"])
def store(request, tmp_path_factory) -> Path:
    """A small two-firm store of each mode (600 paths in two blocks, seed 1)."""
    out = tmp_path_factory.mktemp(request.param) / "firms.zarr"
    return run(firms_config(), out, paths=600, seed=1, block_paths=300, mode=request.param)


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert len(data) > 10_000, f"{path.name} is suspiciously small ({len(data)} bytes)"


def test_report_writes_every_figure_and_the_index(store, tmp_path):
    ds = open_store(store)
    index = write_report(ds, tmp_path / "report")
    assert index == tmp_path / "report" / "index.html"
    page = index.read_text(encoding="utf-8")
    for name in MARKET_PNGS + CREDIT_PNGS:
        assert_png(index.parent / name)
        assert f"src='{name}'" in page
    assert sorted(p.name for p in index.parent.glob("*.png")) == sorted(MARKET_PNGS + CREDIT_PNGS)
    for text in ("small", "<td>seed</td><td>1</td>", ds.attrs["mode"], "<details>",
                 "horizon_months: 24", "VaR 99%", "ES 97.5%", "lessor", "gpu_loan",
                 "Lender's view", "hazard", "EL, defaults in year 2"):
        assert text in page
    assert "mean LGD" in page and "at their exposure at default from then on" in page  # both
    if ds.attrs["mode"] == "summary":  # says how exact the sketched exposure is
        assert "within 1% of the exact ones (the exposures at default are exact)" in page


def test_report_without_firms_has_market_figures_only(tmp_path):
    store = run(small_config(), tmp_path / "market.zarr", paths=200, seed=1)
    index = write_report(open_store(store), tmp_path / "report")
    assert sorted(p.name for p in index.parent.glob("*.png")) == sorted(MARKET_PNGS)
    assert "Headline credit numbers" not in index.read_text(encoding="utf-8")


# --- the command ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cube_store(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "firms.zarr"
    return run(firms_config(), out, paths=300, seed=1, block_paths=300)


def test_cli_report_writes_index(cube_store, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(cube_store), "--out", str(out)]) == 0
    assert (out / "index.html").is_file()
    assert str(out / "index.html") in capsys.readouterr().out


def test_cli_report_refuses_a_non_empty_folder(cube_store, tmp_path, capsys):
    out = tmp_path / "report"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["report", str(cube_store), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert main(["report", str(cube_store), "--out", str(out), "--overwrite"]) == 0
    assert (out / "keep.txt").read_text() == "mine"
    assert (out / "index.html").is_file()


def test_cli_report_refuses_a_non_store(tmp_path, capsys):
    not_a_store = tmp_path / "plain"
    not_a_store.mkdir()
    assert main(["report", str(not_a_store), "--out", str(tmp_path / "report")]) == 2
    assert "not a zarr store" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


# --- the example notebook ---------------------------------------------------------------------

def test_example_notebook_runs(cube_store, monkeypatch):
    missing = [m for m in ("nbclient", "nbformat", "ipykernel")
               if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"the notebook test needs {', '.join(missing)} (pip install -e '.[dev]')")
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells), "commit it with outputs cleared"
    monkeypatch.setenv("GPUSIM_STORE", str(cube_store))
    NotebookClient(notebook, kernel_name="python3", timeout=300,
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    errors = [out for cell in notebook.cells for out in cell.get("outputs", [])
              if out.output_type == "error"]
    assert not errors
    images = [out for cell in notebook.cells for out in cell.get("outputs", [])
              if "image/png" in out.get("data", {})]
    assert len(images) == 2

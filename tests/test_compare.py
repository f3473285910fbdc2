"""`gpusim compare`: differences against the baseline, paired on common random numbers when
the stores share seed and paths, independent otherwise; and `report` with several stores."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import firms_config

import gpusim.compare as compare_module
from gpusim import run, simulate
from gpusim.cli import main
from gpusim.compare import compare, compare_pair
from gpusim.store import open_store

HIGHER_PRICE = "market.price.initial=2.2"


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Base and a higher starting price on the same seed (cube, summary), and on another."""
    root = tmp_path_factory.mktemp("compare")
    return {
        "base": run(firms_config(), root / "base.zarr", paths=500, seed=5, block_paths=250),
        "paired": run(firms_config(HIGHER_PRICE), root / "paired.zarr", paths=500, seed=5,
                      mode="summary"),
        "independent": run(firms_config(HIGHER_PRICE), root / "indep.zarr", paths=500,
                           seed=6),
    }


def test_a_store_against_itself_differs_by_nothing(stores):
    ds = open_store(stores["base"])
    result = compare_pair(ds, ds, "same")
    assert result["pairing"] == "paired"
    for row in result["firms"]:
        assert row["difference"] == {"value": 0.0, "se": 0.0, "ci": [0.0, 0.0]}


def test_paired_differences_use_the_per_path_differences(stores):
    a, b = open_store(stores["base"]), open_store(stores["paired"])
    result = compare_pair(a, b, "paired")
    assert result["pairing"] == "paired" and "seed (5)" in result["why"]
    row = next(r for r in result["facilities"] if r["name"] == "gpu_loan")
    d = (b.loss_total.sel(facility="gpu_loan") - a.loss_total.sel(facility="gpu_loan")).values
    diff = row["expected_loss"]["difference"]
    assert diff["value"] == pytest.approx(d.mean())
    assert diff["se"] == pytest.approx(d.std(ddof=1) / np.sqrt(d.size))
    # common random numbers: far more precise than the two errors alone
    independent = np.hypot(row["expected_loss"]["baseline"]["se"],
                           row["expected_loss"]["other"]["se"])
    assert diff["se"] < 0.5 * independent
    pd_row = [r for r in result["firms"] if r["name"] == "miner"][-1]
    assert pd_row["month"] == "2027-12"  # the last headline month
    defaulted = (a.default_month.sel(firm="miner") >= 0).values
    assert pd_row["baseline"]["value"] == pytest.approx(defaulted.mean())


def test_independent_stores_add_their_variances(stores):
    a, b = open_store(stores["base"]), open_store(stores["independent"])
    result = compare_pair(a, b, "independent")
    assert result["pairing"] == "independent"
    for row in result["firms"]:
        expected = np.hypot(row["baseline"]["se"], row["other"]["se"])
        assert row["difference"]["se"] == pytest.approx(expected)
        assert row["difference"]["value"] == pytest.approx(
            row["other"]["value"] - row["baseline"]["value"])


def test_paired_standard_errors_are_honest_over_seeds():
    """Over SEEDS seeds, the spread of paired differences matches their stated se."""
    seeds, paths = 40, 600
    diffs, ses = [], []
    for seed in range(seeds):
        a = simulate(firms_config(), paths=paths, seed=500 + seed)
        b = simulate(firms_config(HIGHER_PRICE), paths=paths, seed=500 + seed)
        result = compare_pair(a, b, "b")
        miner = [r for r in result["firms"] if r["name"] == "miner"][-1]["difference"]
        loss = result["facilities"][2]["expected_loss"]["difference"]
        diffs.append([miner["value"], loss["value"]])
        ses.append([miner["se"], loss["se"]])
    ratio = np.std(diffs, axis=0, ddof=1) / np.mean(ses, axis=0)
    assert np.all(np.abs(ratio - 1) <= 4 / np.sqrt(2 * (seeds - 1))), ratio


def test_cli_compare_json_and_table(stores, capsys):
    paths = [str(stores[k]) for k in ("base", "paired", "independent")]
    assert main(["compare", *paths, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["baseline"] == "base.zarr"
    assert [c["pairing"] for c in doc["comparisons"]] == ["paired", "independent"]
    assert main(["compare", *paths]) == 0
    printed = capsys.readouterr().out
    assert "paired (same seed" in printed and "independent (seeds 5 and 6" in printed


def test_cli_compare_needs_two_existing_stores(stores, tmp_path, capsys):
    assert main(["compare", str(stores["base"])]) == 2
    assert "expected two or more" in capsys.readouterr().err
    assert main(["compare", str(stores["base"]), str(tmp_path / "missing.zarr")]) == 2
    assert "missing.zarr" in capsys.readouterr().err


def test_compare_lists_what_only_one_store_has(stores, tmp_path):
    other = run(firms_config("firms.1.name=other_miner"), tmp_path / "o.zarr", paths=500,
                seed=5)
    doc = compare([open_store(stores["base"]), open_store(other)], ["a", "b"])
    assert doc["comparisons"][0]["left_out"] == ["firm miner", "firm other_miner"]
    assert {r["name"] for r in doc["comparisons"][0]["firms"]} == {"lessor"}


def test_report_overlays_several_stores(stores, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(stores["base"]), str(stores["paired"]), "--out", str(out)]) == 0
    page = (out / "index.html").read_text(encoding="utf-8")
    for name in ("overlay_default_curve.png", "overlay_ltv_breach.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
        assert f"src='{name}'" in page
    assert "base.zarr, paired.zarr" in page


def test_per_path_results_held_in_memory_change_no_number(stores, monkeypatch):
    """`compare` holds each store's default months and losses in memory (dask persist,
    same chunks) instead of reading them again for every difference: the document is the
    same, number for number, as with them read lazily each time."""
    opened = [open_store(stores[k]) for k in ("base", "paired", "independent")]
    held = compare(opened, ["base", "paired", "independent"])
    monkeypatch.setattr(compare_module, "IN_MEMORY_BYTES", 0)  # nothing fits: all lazy
    lazy = compare(opened, ["base", "paired", "independent"])
    assert json.dumps(held) == json.dumps(lazy)
    kept = compare_module.per_path_in_memory(opened[0])
    assert kept["loss_total"].chunks == opened[0]["loss_total"].chunks
    assert "balance" not in kept or kept["balance"].data is opened[0]["balance"].data

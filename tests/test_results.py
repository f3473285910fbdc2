"""`gpusim summary --format json|csv` and the report's CSV tables: the documented layout
(docs/results.md), the same numbers as the accessor, on cube and summary stores alike."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from helpers import firms_config, small_config

from gpusim import run
from gpusim.cli import main
from gpusim.report import write_report
from gpusim.results import CSV_COLUMNS, SCHEMA
from gpusim.store import open_store


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    return {mode: run(firms_config(), root / f"{mode}.zarr", paths=400, seed=9,
                      block_paths=200, mode=mode) for mode in ("cube", "summary")}


def summary_json(store, capsys) -> dict:
    assert main(["summary", str(store), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_has_the_documented_fields(stores, capsys):
    doc = summary_json(stores["cube"], capsys)
    assert doc["schema"] == SCHEMA and doc["level"] == 0.95
    assert {"scenario", "seed", "paths", "months", "mode", "gpusim_version"} <= set(doc["run"])
    assert doc["run"]["seed"] == 9 and doc["run"]["paths"] == 400
    ds = open_store(stores["cube"])
    assert [f["name"] for f in doc["firms"]] == ["lessor", "miner"]
    curve = ds.gpusim.default_curve(errors=True).compute()
    for firm in doc["firms"]:
        assert [p["month"] for p in firm["pd"]][:2] == ["2026-01", "2026-02"]
        assert len(firm["pd"]) == ds.sizes["month"]
        last = firm["pd"][-1]
        expected = curve.sel(firm=firm["name"]).isel(month=-1)
        assert last["value"] == pytest.approx(float(expected.value))
        assert last["se"] == pytest.approx(float(expected.se))
        assert last["ci"] == pytest.approx([float(expected.ci_low), float(expected.ci_high)])
    facility = doc["facilities"][0]
    assert facility["name"] == "ddtl" and facility["firm"] == "lessor"
    assert set(facility["expected_loss"]) == {"value", "se", "ci"}
    assert set(facility["var_99"]) == {"value", "ci"} and "se" in facility["es_975"]
    assert facility["expected_loss"]["value"] == pytest.approx(
        float(ds.loss_total.sel(facility="ddtl").mean()))


def test_json_credit_numbers_are_the_same_on_both_stores(stores, capsys):
    cube, summary = (summary_json(stores[m], capsys) for m in ("cube", "summary"))
    assert cube["firms"] == summary["firms"]
    exact = ("name", "firm", "expected_loss", "var_99", "es_975", "loss_by_default_year",
             "lgd")
    for a, b in zip(cube["facilities"], summary["facilities"], strict=True):
        assert {k: a[k] for k in exact} == {k: b[k] for k in exact}
        assert a["exposure"]["at_default"] == b["exposure"]["at_default"] == "hold"
        assert (a["exposure"]["relative_accuracy"], b["exposure"]["relative_accuracy"]) == (
            0.0, 0.01)
    assert summary["market"][0]["relative_accuracy"] == 0.01
    assert cube["market"][0]["relative_accuracy"] == 0.0


def test_csv_is_the_json_as_tidy_rows(stores, capsys):
    doc = summary_json(stores["summary"], capsys)
    assert main(["summary", str(stores["summary"]), "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert tuple(table[0]) == CSV_COLUMNS
    months = doc["run"]["months"]
    years = 2
    assert len(table) == (len(doc["market"]) * 5 + 2 * 3 * months + 2 * 2 * years
                          + 3 * (3 + 2 * months + years))
    row = next(r for r in table if r["table"] == "pd" and r["name"] == "miner"
               and r["month_index"] == str(months - 1))
    last = doc["firms"][1]["pd"][-1]
    np.testing.assert_allclose([float(row[c]) for c in ("value", "se", "ci_low", "ci_high")],
                               [last["value"], last["se"], *last["ci"]])


def test_table_format_shows_intervals(stores, capsys):
    assert main(["summary", str(stores["cube"])]) == 0
    printed = capsys.readouterr().out
    assert "95% intervals" in printed and " ± " in printed


def test_json_of_a_store_without_firms(tmp_path, capsys):
    store = run(small_config(), tmp_path / "m.zarr", paths=100, seed=1)
    doc = summary_json(store, capsys)
    assert "firms" not in doc and doc["market"][0]["variable"] == "rental_price"


def test_report_writes_its_tables_as_csv(stores, tmp_path):
    index = write_report(open_store(stores["summary"]), tmp_path / "r")
    names = sorted(p.name for p in index.parent.glob("*.csv"))
    assert names == ["table_default_timing.csv", "table_exposure.csv",
                     "table_loss_by_default_year.csv", "table_losses.csv",
                     "table_ltv_breach.csv", "table_marginal_pd.csv", "table_market.csv",
                     "table_pd.csv"]
    page = index.read_text(encoding="utf-8")
    assert all(f"href='{name}'" in page for name in names)
    losses = list(csv.DictReader((index.parent / "table_losses.csv").open()))
    assert {r["statistic"] for r in losses} == {"expected_loss", "var_99", "es_975"}

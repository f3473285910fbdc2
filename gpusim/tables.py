"""The terminal tables of `gpusim summary` (and `run`'s closing summary), drawn with rich
from the document of gpusim.results, so the table, JSON and CSV always agree.

Each cell shows the estimate and, beneath it, its 95% interval (or ± its standard error).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gpusim.results import percent, usd


def cell(entry: dict[str, Any], fmt: Any = usd, with_se: bool = False) -> str:
    """`value` over its interval: "30.3%\\n[27.5%, 33.2%]", or "value ± se" with `with_se`."""
    low, high = entry.get("ci", (None, None))
    if with_se and "se" in entry:
        return f"{fmt(entry['value'])} ± {fmt(entry['se'])}"
    return f"{fmt(entry['value'])}\n[dim]{escape(f'[{fmt(low)}, {fmt(high)}]')}[/dim]"


def print_market(doc: dict[str, Any], console: Console) -> None:
    """Headline quantiles of the market variables, each with its 95% interval."""
    run = doc["run"]
    table = Table(title=f"{run.get('scenario') or ''}: {run['paths']} paths, seed "
                        f"{run.get('seed')} (95% intervals beneath)")
    table.add_column(escape("variable [units]"), no_wrap=True)
    table.add_column("month", no_wrap=True)
    levels = [q["q"] for q in doc["market"][0]["quantiles"]] if doc["market"] else []
    for q in levels:
        table.add_column(f"p{q * 100:g}", justify="right")
    previous = None
    for entry in doc["market"]:
        label = "" if entry["variable"] == previous else (
            f"{entry['variable']}\n{escape('[' + entry['units'] + ']')}")
        previous = entry["variable"]
        table.add_row(label, entry["month"], *(cell(q) for q in entry["quantiles"]))
    console.print(table)
    accuracy = max((e["relative_accuracy"] for e in doc["market"]), default=0.0)
    if accuracy:
        console.print(f"quantiles from sketches: each within {accuracy:.0%} (relative) of the "
                      "exact one; the intervals include that bound")


def print_credit(doc: dict[str, Any], months: list[int], console: Console) -> None:
    """PD by firm at `months` (indices) with Wilson intervals; EL, VaR, ES by facility."""
    if "firms" not in doc:
        return
    table = Table(title="cumulative default probability and LTV breaches (95% intervals)")
    table.add_column("firm", no_wrap=True)
    for m in months:
        table.add_column(f"PD {doc['firms'][0]['pd'][m]['month']}", justify="right")
    table.add_column("P(LTV breach) max/month", justify="right")
    for firm in doc["firms"]:
        worst = max(firm["ltv_breach"], key=lambda p: p["value"] or 0.0)
        table.add_row(firm["name"], *(cell(firm["pd"][m], percent) for m in months),
                      cell(worst, percent))
    console.print(table)
    table = Table(title="lender losses over the run [USD] (± standard error, 95% intervals)")
    for column in ("facility", "firm", "expected loss", "VaR 99%", "ES 97.5%"):
        table.add_column(column, justify="left" if column in ("facility", "firm") else "right")
    for facility in doc["facilities"]:
        table.add_row(facility["name"], facility["firm"],
                      cell(facility["expected_loss"], with_se=True),
                      cell(facility["var_99"]), cell(facility["es_975"]))
    console.print(table)


def signed(entry: dict[str, Any], fmt: Any) -> str:
    """A difference "+1.2% ± 0.3%" (or without ± when it has no standard error)."""
    value = entry["value"]
    text = "–" if value is None else ("+" if value >= 0 else "") + fmt(value)
    return f"{text} ± {fmt(entry['se'])}" if "se" in entry else text


def print_compare(doc: dict[str, Any], console: Console) -> None:
    """One PD and one loss table per store compared with the baseline."""
    for comparison in doc["comparisons"]:
        console.print(f"[bold]{escape(comparison['store'])}[/bold] − "
                      f"[bold]{escape(doc['baseline'])}[/bold]: {comparison['pairing']} "
                      f"({escape(comparison['why'])})")
        if comparison["left_out"]:
            console.print("in one store only (left out): "
                          + escape(", ".join(comparison["left_out"])))
        table = Table(title="cumulative default probability (95% intervals; difference ± se)")
        for column in ("firm", "month", doc["baseline"], comparison["store"], "difference"):
            table.add_column(escape(column), justify="left" if column in ("firm", "month")
                             else "right")
        for row in comparison["firms"]:
            table.add_row(row["name"], row["month"], cell(row["baseline"], percent),
                          cell(row["other"], percent), signed(row["difference"], percent))
        console.print(table)
        print_loss_comparison(doc["baseline"], comparison, console)


def print_loss_comparison(baseline: str, comparison: dict[str, Any], console: Console
                          ) -> None:
    """Expected loss, VaR and ES of each facility in both stores, with differences."""
    table = Table(title="lender losses over the run [USD] (difference ± se for EL)")
    for column in ("facility", "statistic", baseline, comparison["store"], "difference"):
        table.add_column(escape(column), justify="left" if column in ("facility", "statistic")
                         else "right")
    for row in comparison["facilities"]:
        for key, label in (("expected_loss", "EL"), ("var_99", "VaR 99%"),
                           ("es_975", "ES 97.5%")):
            entry = row[key]
            table.add_row(row["name"] if key == "expected_loss" else "", label,
                          cell(entry["baseline"], with_se=key == "expected_loss"),
                          cell(entry["other"], with_se=key == "expected_loss"),
                          signed(entry["difference"], usd))
    console.print(table)


def print_lender(doc: dict[str, Any], months: list[int], console: Console) -> None:
    """Default timing by year, exposure at `months`, loss by year of default and LGD."""
    if "firms" not in doc or "default_timing" not in doc["firms"][0]:
        return
    years = [p["year"] for p in doc["firms"][0]["default_timing"]]
    table = Table(title="default timing: P(default in year) / hazard given survival "
                        "(95% intervals)")
    table.add_column("firm", no_wrap=True)
    for point in doc["firms"][0]["default_timing"]:
        table.add_column(f"year {point['year']} ({point['months']} mo)", justify="right")
    for firm in doc["firms"]:
        table.add_row(firm["name"], *(f"{percent(p['probability']['value'])} / "
                                      + cell(p["hazard"], percent)
                                      for p in firm["default_timing"]))
    console.print(table)
    facility = doc["facilities"][0]["exposure"]
    held = "held at default" if facility["at_default"] == "hold" else "as recorded, 0 after default"
    if facility["relative_accuracy"] > 0:
        held += f"; from sketches within {facility['relative_accuracy']:.0%}"
    table = Table(title=f"exposure [USD]: EE ± se / PFE {facility['pfe_level']:.0%} ({held})")
    table.add_column("facility", no_wrap=True)
    for m in months:
        table.add_column(facility["months"][m]["month"], justify="right")
    for year in years:
        table.add_column(f"EL, defaults in year {year}", justify="right")
    table.add_column("LGD mean ± se", justify="right")
    for f in doc["facilities"]:
        points = f["exposure"]["months"]
        table.add_row(f["name"], *(f"{cell(points[m]['ee'], with_se=True)}\n"
                                   f"{usd(points[m]['pfe']['value'])}" for m in months),
                      *(cell(p, with_se=True) for p in f["loss_by_default_year"]),
                      "–" if f["lgd"] is None else cell(f["lgd"]["mean"], percent, True))
    console.print(table)


def print_reverse(answer: dict[str, Any], console: Console) -> None:
    """The reverse stress's answer in one sentence, then the grid it came from."""
    def where(value: float | None, beyond: str) -> str:
        return beyond if value is None else f"{value:.4g}"

    head = (f"{answer['firm']}'s PD by {answer['month']} crosses {answer['pd']:.1%} at "
            f"{answer['key']} = ")
    if answer["value"] is None:
        console.print(escape(head + "no value in the grid (it never reaches it there)"))
    else:
        low, high = answer["ci"]
        console.print(escape(head + f"{answer['value']:.4g} (95% interval "
                             f"{where(low, 'below the grid')} to "
                             f"{where(high, 'above the grid')}; linear between grid points)"))
    for point in answer["grid"]:
        low, high = point["ci"]
        console.print(escape(f"  {answer['key']} = {point['value']:g}: PD {point['pd']:.1%} "
                             f"[{low:.1%}, {high:.1%}]"))

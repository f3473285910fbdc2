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

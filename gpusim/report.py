"""A static HTML report of a finished run: fan charts, credit curves and loss distributions.

`write_report(ds, out_dir)` writes one PNG per figure and an `index.html` that shows them
next to the run's provenance and headline credit numbers. The folder is self-contained
(relative links, inline CSS), so it can be zipped, mailed or served as it is.

It works on both kinds of store: on a cube the quantiles are exact and computed lazily with
dask, one variable at a time; on a summary store they come from the quantile sketches
(within their 1% relative accuracy). Default months and losses are exact in both.

Figures are drawn on bare `matplotlib.figure.Figure` objects with the Agg canvas rather than
through pyplot: nothing opens a window, nothing changes the process-wide backend (a notebook
importing this module keeps its inline plots), and nothing is left in pyplot's figure list.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from gpusim import analysis, results, uncertainty
from gpusim.analysis import HEADLINE_QUANTILES, format_value, headline_months
from gpusim.outputs import BY_NAME, sketch_name
from gpusim.report_lender import has_lender_views, lender_html, lender_plots
from gpusim.report_parts import (
    COLOR,
    Plot,
    date_axis,
    interval,
    new_figure,
    save,
    share_axis,
    slug,
    table_html,
)
from gpusim.results import percent, usd

FAN_VARIABLES = {"rental_price": "linear", "collateral_value": "linear",
                 "token_demand": "log", "utilization": "linear"}
"""Market variables drawn as fan charts, with their y scale (demand grows exponentially)."""
VAR_Q, ES_Q = 0.99, 0.975
"""Levels of the value at risk and expected shortfall (those `credit_summary` computes)."""


def write_report(ds: xr.Dataset, out_dir: Path,
                 others: Sequence[tuple[str, xr.Dataset]] = (), label: str = "") -> Path:
    """Write the figures and `index.html` for the store `ds` into `out_dir`.

    Creates `out_dir` if needed and replaces files of the same names; never deletes
    anything else. Firm and facility figures are skipped when the store has no firms.
    `others` (name, store) adds figures that overlay their default and LTV-breach curves
    on those of `ds` (named `label`). Returns the path of `index.html`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = market_plots(ds, out_dir)
    credit = None
    doc = results.summary_document(ds)
    if "firm" in ds.dims:
        credit = analysis.credit_summary(ds)
        plots += credit_plots(ds, credit, out_dir)
        plots += overlay_plots([(label or "this run", ds), *others], out_dir)
        if has_lender_views(ds, doc):
            plots += lender_plots(doc, out_dir)
    tables = write_tables(doc, out_dir)
    index = out_dir / "index.html"
    index.write_text(index_html(ds, plots, doc, tables), encoding="utf-8")
    return index


def write_tables(doc: dict, out_dir: Path) -> list[str]:
    """The report's numbers as tidy CSV files beside the HTML (`table_<name>.csv`, the
    columns of gpusim.results.CSV_COLUMNS); returns their file names."""
    files = []
    for name, text in results.csv_tables(doc).items():
        (out_dir / f"table_{name}.csv").write_text(text, encoding="utf-8")
        files.append(f"table_{name}.csv")
    return files


# --- figures ----------------------------------------------------------------------------------

def long_name(name: str) -> str:
    """A variable's descriptive name (the same on cube and summary stores)."""
    return BY_NAME[name].long_name if name in BY_NAME else name


def market_plots(ds: xr.Dataset, out_dir: Path) -> list[Plot]:
    """Fan charts of the market variables the store has (sketched ones on a summary store)."""
    plots = []
    for name, yscale in FAN_VARIABLES.items():
        if name in ds or sketch_name(name) in ds:
            file = save(fan_figure(ds, name, yscale), out_dir, f"fan_{name}.png")
            plots.append(Plot("Market", file, f"{long_name(name)}: quantiles over paths"))
    return plots


def fan_figure(ds: xr.Dataset, name: str, yscale: str = "linear") -> Figure:
    """5–95% and 25–75% bands and the median of `name` over paths, by month."""
    fan = analysis.fan(ds, name, HEADLINE_QUANTILES).compute()
    bands = {float(q): fan.sel(quantile=q).values for q in fan["quantile"].values}
    months = fan["month"].values
    fig, ax = new_figure()
    ax.fill_between(months, bands[0.05], bands[0.95], color=COLOR, alpha=0.18, lw=0,
                    label="5–95%")
    ax.fill_between(months, bands[0.25], bands[0.75], color=COLOR, alpha=0.38, lw=0,
                    label="25–75%")
    ax.plot(months, bands[0.5], color=COLOR, lw=2, label="median")
    ax.set_yscale(yscale)  # first: setting the scale resets the tick formatter
    units = fan.attrs.get("units", "")
    if units == "1":
        share_axis(ax, name)
    else:
        ax.set_ylabel(f"{name} [{units}]")
    ax.set_title(f"{long_name(name)}: {ds.sizes['path']:,} paths{_sketch_note(fan)}")
    date_axis(ax)
    ax.legend(loc="upper left", frameon=False)
    return fig


def _sketch_note(fan: xr.DataArray) -> str:
    """On a summary store, the sketch's relative accuracy (the quantiles are approximate)."""
    alpha = fan.attrs.get("relative_accuracy")
    return f" (from sketches, within {alpha:.0%})" if alpha else ""


def credit_plots(ds: xr.Dataset, credit: xr.Dataset, out_dir: Path) -> list[Plot]:
    """Default and LTV-breach curves per firm, and a loss histogram per facility."""
    band = f"; bands: Wilson {uncertainty.LEVEL:.0%} intervals"
    plots = [
        Plot("Credit", save(curve_figure(uncertainty.default_probability(ds).compute(),
                                         "cumulative probability of default",
                                         "P(default by month)"), out_dir, "default_curve.png"),
             "cumulative default probability per firm" + band),
        Plot("Credit", save(curve_figure(uncertainty.ltv_breach_probability(ds).compute(),
                                         "probability of an LTV breach in the month",
                                         "P(LTV breach)"), out_dir, "ltv_breach.png"),
             "monthly LTV-breach probability per firm" + band),
    ]
    losses = ds["loss_total"].transpose("facility", "path").values
    firms = ds["facility_firm"].values
    for i, facility in enumerate(credit["facility"].values):
        fig = loss_figure(losses[i], credit.isel(facility=i), f"{facility} ({firms[i]})")
        file = save(fig, out_dir, f"loss_{slug(facility)}.png")
        plots.append(Plot("Losses", file, f"lender loss over the run: {facility}"))
    return plots


def overlay_plots(stores: list[tuple[str, xr.Dataset]], out_dir: Path) -> list[Plot]:
    """With more than one store: every store's default and LTV-breach curves in one
    figure each (firms of stores without firms are skipped)."""
    stores = [(name, ds) for name, ds in stores if "firm" in ds.dims]
    if len(stores) < 2:
        return []
    plots = []
    for file, estimate, title in (
            ("overlay_default_curve.png", uncertainty.default_probability,
             "cumulative probability of default"),
            ("overlay_ltv_breach.png", uncertainty.ltv_breach_probability,
             "probability of an LTV breach in the month")):
        curves = [(name, estimate(ds).compute()) for name, ds in stores]
        fig = curve_figure(curves[0][1], title, "probability", label=curves[0][0],
                           more=curves[1:])
        plots.append(Plot("Comparison", save(fig, out_dir, file),
                          f"{title}: " + ", ".join(name for name, _ in stores)
                          + f"; bands: Wilson {uncertainty.LEVEL:.0%} intervals"))
    return plots


def curve_figure(curve: xr.Dataset, title: str, ylabel: str, label: str = "",
                 more: Sequence[tuple[str, xr.Dataset]] = ()) -> Figure:
    """One line per firm of a (month, firm) probability curve (`value`), over a band from
    its `ci_low` to its `ci_high`; `more` (name, curve) overlays other stores' curves,
    dashed, each line labelled "store: firm"."""
    fig, ax = new_figure()
    for k, (name, data) in enumerate([(label, curve), *more]):
        for firm in data["firm"].values:
            one = data.sel(firm=firm)
            text = f"{name}: {firm}" if more else str(firm)
            line, = ax.plot(one["month"].values, one["value"].values, lw=2, label=text,
                            ls=("-", "--", ":", "-.")[k % 4])
            ax.fill_between(one["month"].values, one["ci_low"].values, one["ci_high"].values,
                            color=line.get_color(), alpha=0.2, lw=0)
    share_axis(ax, ylabel)
    ax.set_title(title)
    date_axis(ax)
    ax.legend(title=None if more else "firm", frameon=False, fontsize="small")
    return fig


def loss_figure(losses: np.ndarray, credit: xr.Dataset, label: str) -> Figure:
    """Histogram of the positive losses of one facility, with EL, VaR and ES marked.

    Most paths usually lose nothing, which would dwarf every other bar; so the share of
    zero-loss paths goes into the title and only the positive part is drawn, on a log-x
    axis when it spans more than two decades.
    """
    positive = losses[losses > 0]
    fig, ax = new_figure()
    ax.set_title(f"lender loss over the run: {label}\n{1 - positive.size / losses.size:.1%} "
                 f"of {losses.size:,} paths lose nothing; histogram of the "
                 f"{positive.size:,} that do", fontsize="medium")
    ax.set_xlabel("loss over the run [USD]")
    ax.set_ylabel("paths")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if positive.size == 0:
        ax.text(0.5, 0.5, "no path has a loss", ha="center", va="center",
                transform=ax.transAxes)
        return fig
    log_x, bins = loss_bins(positive)
    ax.hist(positive, bins=bins, color=COLOR, alpha=0.6)
    if log_x:
        ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: format_value(value)))
    mark_risk(ax, credit, log_x)
    return fig


def loss_bins(positive: np.ndarray, n: int = 40) -> tuple[bool, np.ndarray | int]:
    """Whether to use a log-x axis (losses spanning over two decades) and the bin edges."""
    low, high = positive.min(), positive.max()
    if high == low:
        return False, n  # one distinct loss: let numpy widen the range around it
    if high > 100 * low:
        return True, np.geomspace(low, high, n + 1)
    return False, np.linspace(low, high, n + 1)


def mark_risk(ax: Axes, credit: xr.Dataset, log_x: bool) -> None:
    """Vertical lines at EL, VaR and ES; a zero value (not drawable on log-x) is only named."""
    marks = (("EL", float(credit.expected_loss), "#444444", ":"),
             (f"VaR {VAR_Q:.0%}", float(credit.value_at_risk_99), "#d62728", "--"),
             (f"ES {ES_Q:.1%}", float(credit.expected_shortfall_97_5), "#9467bd", "-"))
    for name, value, color, style in marks:
        text = f"{name} {format_value(value)} USD"
        if log_x and value <= 0:
            ax.plot([], [], color=color, ls=style, label=f"{text} (not drawn)")
        else:
            ax.axvline(value, color=color, ls=style, lw=1.8, label=text,
                       zorder=3 if style == "--" else 2)  # VaR stays visible on ES
    ax.legend(frameon=False, fontsize="small")


# --- index.html -------------------------------------------------------------------------------

CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.75rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0 2rem; } figure img { max-width: 100%; }
figcaption { color: #555; font-size: 0.9rem; }
pre { background: #f6f6f6; padding: 0.75rem; overflow-x: auto; font-size: 0.8rem; }
"""


def index_html(ds: xr.Dataset, plots: list[Plot], doc: dict, tables: list[str]) -> str:
    """The report page: provenance, headline credit tables (from the results document
    `doc`, with their errors), links to the CSV `tables`, figures by section."""
    scenario = html.escape(str(ds.attrs.get("scenario", "")))
    parts = [f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
             f"<title>gpusim report: {scenario}</title><style>{CSS}</style></head><body>",
             f"<h1>gpusim report: {scenario}</h1>", provenance_html(ds)]
    if "firms" in doc:
        parts.append(credit_html(ds, doc))
        if has_lender_views(ds, doc):
            parts.append(lender_html(doc))
    parts.append("<p>These numbers as CSV: " + ", ".join(
        f"<a href='{html.escape(t)}'>{html.escape(t)}</a>" for t in tables) + "</p>")
    for section in dict.fromkeys(p.section for p in plots):
        parts.append(f"<h2>{section}</h2>")
        parts += [figure_html(p) for p in plots if p.section == section]
    parts.append(config_html(ds))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def provenance_html(ds: xr.Dataset) -> str:
    """Where the numbers came from: scenario, seed, paths, horizon, mode, device, versions."""
    a = ds.attrs
    rows = [["scenario", a.get("scenario", "")], ["seed", a.get("seed", "")],
            ["paths", f"{ds.sizes.get('path', a.get('paths', 0)):,}"],
            ["months", f"{a.get('months', ds.sizes['month'])} from {a.get('start', '')}"],
            ["mode", "summary" if analysis.is_summary(ds) else "cube"],
            ["dtype", a.get("dtype", "")],
            ["device", a.get("device", "")], ["gpusim version", a.get("gpusim_version", "")],
            ["run started", a.get("run_started", "")],
            ["run finished", a.get("run_finished", "")]]
    return "<h2>Run</h2>" + table_html(None, rows, numeric_from=2)


CREDIT_NOTE = (
    "<p>PD: share of paths on which the firm has defaulted by that month. Losses are the "
    f"lender's over the whole run: expected loss (mean over paths), VaR {VAR_Q:.0%} (the loss "
    f"exceeded on {1 - VAR_Q:.0%} of paths) and ES {ES_Q:.1%} (the mean of the worst "
    f"{1 - ES_Q:.1%}). Brackets: {uncertainty.LEVEL:.0%} intervals of the Monte Carlo "
    "error (Wilson for probabilities, order statistics for VaR, the tail mean's asymptotic "
    "standard error for ES); ±: the standard error.</p>")


def credit_html(ds: xr.Dataset, doc: dict) -> str:
    """Headline credit numbers: PDs by firm at the headline months, losses by facility."""
    return ("<h2>Headline credit numbers</h2>" + CREDIT_NOTE + firm_table(ds, doc)
            + loss_table(doc))


def firm_table(ds: xr.Dataset, doc: dict) -> str:
    """PD at months 12, 36 and the last, and the worst monthly LTV-breach probability,
    each with its Wilson 95% interval."""
    months = headline_months(ds)
    header = ["firm", *(f"PD by {str(ds['month'].values[m])[:7]}" for m in months),
              "max monthly P(LTV breach)"]
    rows = []
    for firm in doc["firms"]:
        worst = max(firm["ltv_breach"], key=lambda p: p["value"] or 0.0)
        rows.append([firm["name"], *(interval(firm["pd"][m], percent) for m in months),
                     interval(worst, percent)])
    return table_html(header, rows)


def loss_table(doc: dict) -> str:
    """Expected loss (± its standard error), VaR and ES of each facility with their 95%
    intervals, in USD."""
    header = ["facility", "firm", "expected loss [USD]", f"VaR {VAR_Q:.0%} [USD]",
              f"ES {ES_Q:.1%} [USD]"]
    rows = [[f["name"], f["firm"],
             f"{usd(f['expected_loss']['value'])} ± {usd(f['expected_loss']['se'])}",
             interval(f["var_99"], usd), interval(f["es_975"], usd)]
            for f in doc["facilities"]]
    return table_html(header, rows, numeric_from=2)


def figure_html(plot: Plot) -> str:
    caption = html.escape(plot.caption)
    return (f"<figure><img src='{html.escape(plot.file)}' alt='{caption}'>"
            f"<figcaption>{caption}</figcaption></figure>")


def config_html(ds: xr.Dataset) -> str:
    """The resolved config (and the config as given, when recorded), folded away."""
    parts = ["<h2>Configuration</h2>",
             "<details><summary>resolved config (YAML)</summary><pre>"
             f"{html.escape(str(ds.attrs.get('config', '')))}</pre></details>"]
    if ds.attrs.get("config_given"):
        parts.append("<details><summary>config as given (files and --set)</summary><pre>"
                     f"{html.escape(str(ds.attrs['config_given']))}</pre></details>")
    return "\n".join(parts)

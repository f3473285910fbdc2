"""The lender's section of the HTML report: exposure figures per facility and tables of
default timing, expected loss by year of default and loss given default (gpusim.lender),
all read from the results document (gpusim.results) so they match `gpusim summary`."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from gpusim.analysis import format_value
from gpusim.report_parts import COLOR, Plot, date_axis, interval, new_figure, save, slug, table_html
from gpusim.results import percent, usd

NOTE = (
    "<p>Exposure: the facility's outstanding balance. {basis} EE is its mean over paths "
    "(± standard error), PFE its {level:.0%} quantile (band: 95% order-statistic interval). "
    "Hazard: the probability of defaulting in the year given survival to its start. LGD: "
    "the loss over the exposure at default, over the paths where the firm defaulted.</p>")
HOLD = "A defaulted firm's facilities count at their exposure at default from then on."
SKETCHED = (" This summary store keeps the balance as sketches, so EE and PFE are within "
            "{alpha:.0%} of the exact ones (the exposures at default are exact).")
ZERO = ("This summary store, written before stores kept each path's exposure at default, "
        "counts a defaulted firm's balance as 0 from its default on, and the numbers are "
        "within {alpha:.0%} of the exact ones. Exposure held at default and LGD need the "
        "exposures at default: rerun it.")


def lender_plots(doc: dict, out_dir: Path) -> list[Plot]:
    """One exposure figure (EE and PFE by month) per facility."""
    plots = []
    for facility in doc["facilities"]:
        fig = exposure_figure(facility)
        file = save(fig, out_dir, f"exposure_{slug(facility['name'])}.png")
        plots.append(Plot("Exposure", file, f"expected and potential future exposure: "
                                            f"{facility['name']} ({facility['firm']})"))
    return plots


def exposure_figure(facility: dict) -> Figure:
    """EE and PFE of one facility by month, PFE with its 95% interval as a band."""
    view = facility["exposure"]
    months = np.array([np.datetime64(p["month"]) for p in view["months"]])

    def column(key: str, field: str, index: int | None = None) -> np.ndarray:
        values = [p[key][field] if index is None else p[key][field][index]
                  for p in view["months"]]
        return np.array([np.nan if v is None else v for v in values], dtype=float)

    fig, ax = new_figure()
    ax.plot(months, column("ee", "value"), color=COLOR, lw=2, label="EE (mean)")
    pfe = f"PFE {view['pfe_level']:.0%}"
    ax.plot(months, column("pfe", "value"), color="#d62728", lw=2, ls="--", label=pfe)
    ax.fill_between(months, column("pfe", "ci", 0), column("pfe", "ci", 1), color="#d62728",
                    alpha=0.2, lw=0)
    held = "held at default" if view["at_default"] == "hold" else "0 after default"
    ax.set_title(f"exposure of {facility['name']} ({facility['firm']}), {held}")
    ax.set_ylabel("balance [USD]")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: format_value(value)))
    ax.set_ylim(bottom=0)
    date_axis(ax)
    ax.legend(frameon=False)
    return fig


def lender_html(doc: dict) -> str:
    """The lender section's note and tables."""
    view = doc["facilities"][0]["exposure"]
    alpha = view["relative_accuracy"]
    basis = ZERO.format(alpha=alpha) if view["at_default"] != "hold" else (
        HOLD + (SKETCHED.format(alpha=alpha) if alpha > 0 else ""))
    return ("<h2>Lender's view</h2>" + NOTE.format(basis=html.escape(basis),
                                                    level=view["pfe_level"])
            + timing_table(doc) + loss_year_table(doc) + lgd_table(doc))


def timing_table(doc: dict) -> str:
    """P(default in year) and hazard per firm and year, with Wilson 95% intervals."""
    first = doc["firms"][0]["default_timing"]
    header = ["firm", *(f"year {p['year']} ({p['months']} months): P / hazard" for p in first)]
    rows = [[f["name"], *(f"{interval(p['probability'], percent)} / "
                          f"{interval(p['hazard'], percent)}" for p in f["default_timing"])]
            for f in doc["firms"]]
    return table_html(header, rows)


def loss_year_table(doc: dict) -> str:
    """Expected loss by year of default per facility [USD], ± standard error."""
    years = [p["year"] for p in doc["facilities"][0]["loss_by_default_year"]]
    header = ["facility", "firm", *(f"EL, defaults in year {y} [USD]" for y in years)]
    rows = [[f["name"], f["firm"], *(f"{usd(p['value'])} ± {usd(p['se'])}"
                                     for p in f["loss_by_default_year"])]
            for f in doc["facilities"]]
    return table_html(header, rows, numeric_from=2)


def lgd_table(doc: dict) -> str:
    """Defaults, mean LGD ± se and the LGD and recovery quantiles per facility (none for a
    summary store written before stores kept exposures at default)."""
    if doc["facilities"][0]["lgd"] is None:
        return ""
    levels = [q["q"] for q in doc["facilities"][0]["lgd"]["quantiles"]]
    header = ["facility", "defaults", "mean LGD", *(f"LGD q{q:g} / recovery q{q:g}"
                                                     for q in levels)]
    rows = [[f["name"], f["lgd"]["defaults"],
             f"{percent(f['lgd']['mean']['value'])} ± {percent(f['lgd']['mean']['se'])}",
             *(f"{percent(q['lgd'])} / {percent(q['recovery'])}" for q in f["lgd"]["quantiles"])]
            for f in doc["facilities"]]
    return table_html(header, rows)


def has_lender_views(ds: xr.Dataset, doc: dict) -> bool:
    """Whether the document carries the lender's views (a store with facilities)."""
    return "facility" in ds.dims and bool(doc.get("facilities"))

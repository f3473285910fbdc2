"""Building blocks of the HTML report: figures on a bare Agg canvas, axis styles, the
`Plot` record and small HTML tables (shared by gpusim.report and gpusim.report_lender).

Figures are drawn on bare `matplotlib.figure.Figure` objects with the Agg canvas rather than
through pyplot: nothing opens a window, nothing changes the process-wide backend, and nothing
is left in pyplot's figure list.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib.dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

FIGSIZE = (8.0, 4.5)
DPI = 110
COLOR = "#1f5f99"


@dataclass(frozen=True)
class Plot:
    """One figure of the report: its section, file name (relative) and caption."""

    section: str
    file: str
    caption: str


def new_figure() -> tuple[Figure, Axes]:
    """A figure on the Agg canvas (no display, no pyplot state) and its one axes."""
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def save(fig: Figure, out_dir: Path, file: str) -> str:
    """Write `fig` as a PNG into `out_dir`; returns the file name (the HTML's link)."""
    fig.savefig(out_dir / file, format="png")
    return file


def slug(name: str) -> str:
    """A file-name-safe version of a firm or facility name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("_") or "unnamed"


def date_axis(ax: Axes) -> None:
    """Month dates on the x axis, concisely labelled (years once, months between)."""
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_xlabel("month")
    ax.grid(alpha=0.3)


def share_axis(ax: Axes, label: str) -> None:
    """A y axis for probabilities and shares (units "1"), labelled in percent."""
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel(f"{label} [%]")
    ax.set_ylim(bottom=0)


def table_html(header: list[str] | None, rows: list[list], numeric_from: int = 1) -> str:
    """A small HTML table; cells are escaped, columns from `numeric_from` right-aligned."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header or [])
    body = "".join(
        "<tr>" + "".join(f"<td{' class=num' if j >= numeric_from else ''}>"
                         f"{html.escape(str(c))}</td>" for j, c in enumerate(row)) + "</tr>"
        for row in rows)
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


def interval(entry: dict, fmt: Callable[[float], str]) -> str:
    """"value [low, high]" of a results entry (see gpusim.results.estimate)."""
    low, high = entry["ci"]
    return f"{fmt(entry['value'])} [{fmt(low)}, {fmt(high)}]"

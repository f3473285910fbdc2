"""Summaries of a cube: the headline table that `gpusim summary` prints."""

from __future__ import annotations

import numpy as np
import xarray as xr

HEADLINE_VARIABLES = ("rental_price", "collateral_value", "utilization", "token_demand")
HEADLINE_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
HEADLINE_MONTHS = (12, 36)
"""Month indices (months after the start) shown, plus the last month of the run."""


def headline_months(ds: xr.Dataset) -> list[int]:
    """Month indices 12, 36 (where the run reaches them) and the last one."""
    last = ds.sizes["month"] - 1
    return sorted({m for m in HEADLINE_MONTHS if m < last} | {last})


def headline(ds: xr.Dataset, quantiles: tuple[float, ...] = HEADLINE_QUANTILES) -> xr.Dataset:
    """Quantiles over paths of the headline variables at the headline months.

    Works lazily on a dask-backed cube: only the selected months are loaded, one
    variable at a time.
    """
    months = headline_months(ds)
    out = {}
    for name in HEADLINE_VARIABLES:
        values = ds[name].isel(month=months)
        if values.chunks is not None:
            values = values.chunk({"path": -1})
        q = values.quantile(list(quantiles), dim="path")
        out[name] = q.compute().assign_attrs(ds[name].attrs)
    return xr.Dataset(out)


def format_value(value: float) -> str:
    """A compact human-readable number (3 significant figures, SI-ish suffixes for big ones)."""
    if not np.isfinite(value):
        return str(value)
    magnitude = abs(value)
    for scale, suffix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"

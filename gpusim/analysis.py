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


# --- credit summaries ----------------------------------------------------------------------

def default_curve(ds: xr.Dataset) -> xr.DataArray:
    """Cumulative default probability by month and firm: the share of paths defaulted."""
    return ds["defaulted"].mean("path").rename("default_probability").assign_attrs(
        units="1", long_name="cumulative probability of default")


def ltv_breach_curve(ds: xr.Dataset) -> xr.DataArray:
    """Probability, by month and firm, that an LTV test fails that month."""
    return ds["ltv_breach"].mean("path").rename("ltv_breach_probability").assign_attrs(
        units="1", long_name="probability of an LTV breach in the month")


def expected_loss(ds: xr.Dataset) -> xr.DataArray:
    """Mean lender loss over the run, per facility [USD]."""
    return ds["loss_total"].mean("path").rename("expected_loss").assign_attrs(
        units="USD", long_name="expected loss over the run")


def value_at_risk(ds: xr.Dataset, q: float = 0.99) -> xr.DataArray:
    """The q-quantile of the lender loss over the run, per facility [USD]."""
    losses = ds["loss_total"]
    if losses.chunks is not None:
        losses = losses.chunk({"path": -1})
    return losses.quantile(q, dim="path").rename("value_at_risk").assign_attrs(
        units="USD", long_name=f"{q:.1%} value at risk of the loss over the run")


def expected_shortfall(ds: xr.Dataset, q: float = 0.975) -> xr.DataArray:
    """Mean of the worst ⌈n(1 − q)⌉ losses over the run, per facility [USD].

    The tail-mean definition, which stays well defined when most losses are zero.
    """
    losses = np.asarray(ds["loss_total"].transpose("facility", "path").values)
    n = losses.shape[1]
    k = max(1, int(np.ceil(n * (1 - q) - 1e-9)))
    tail = np.sort(losses, axis=1)[:, n - k:]
    return xr.DataArray(tail.mean(axis=1), coords={"facility": ds["facility"]},
                        dims=["facility"], name="expected_shortfall",
                        attrs={"units": "USD",
                               "long_name": f"{q:.1%} expected shortfall of the loss"})


def credit_summary(ds: xr.Dataset) -> xr.Dataset:
    """The credit headline: default curves, LTV-breach curves, EL, 99% VaR, 97.5% ES."""
    return xr.Dataset({
        "default_probability": default_curve(ds),
        "ltv_breach_probability": ltv_breach_curve(ds),
        "expected_loss": expected_loss(ds),
        "value_at_risk_99": value_at_risk(ds, 0.99).drop_vars("quantile"),
        "expected_shortfall_97_5": expected_shortfall(ds, 0.975),
    }).compute()

"""Summaries of a cube or summary store: the headline table that `gpusim summary` prints,
credit summaries, and the `ds.gpusim` accessor (registered by `import gpusim`, which
imports this module: keep its imports to numpy and xarray)."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from gpusim import lender, sketch, sweep_view, uncertainty
from gpusim.outputs import BY_NAME, sketch_name
from gpusim.uncertainty import is_summary
from gpusim.uncertainty import largest as _largest

HEADLINE_VARIABLES = ("rental_price", "collateral_value", "utilization", "token_demand")
HEADLINE_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
HEADLINE_MONTHS = (12, 36)
"""Month indices (months after the start) shown, plus the last month of the run."""


def headline_months(ds: xr.Dataset) -> list[int]:
    """Month indices 12, 36 (where the run reaches them) and the last one."""
    last = ds.sizes["month"] - 1
    return sorted({m for m in HEADLINE_MONTHS if m < last} | {last})


def fan(ds: xr.Dataset, variable: str,
        quantiles: tuple[float, ...] = HEADLINE_QUANTILES) -> xr.DataArray:
    """Quantiles over paths of a monthly variable, by month (and firm or facility).

    On a cube: exact (numpy's linear interpolation), lazily on dask, loading one variable.
    On a summary store: from its sketch, within the sketch's relative accuracy of the
    `method="lower"` quantile (see gpusim.sketch).
    """
    q = list(quantiles)
    if is_summary(ds):
        name = sketch_name(variable)
        if name not in ds:
            raise KeyError(f"{variable!r} has no sketch in this summary store")
        counts = ds[name]
        values = sketch.quantiles(counts.values, q)
        dims = (*counts.dims[:-1], "quantile")
        out = xr.DataArray(values, dims=dims,
                           coords={**{d: ds[d] for d in dims[:-1]}, "quantile": q})
        out = out.transpose("quantile", *dims[:-1])
        return out.rename(variable).assign_attrs(
            units=counts.attrs.get("sketched_units", ""),
            long_name=BY_NAME[variable].long_name if variable in BY_NAME else variable,
            relative_accuracy=sketch.ALPHA)
    return uncertainty.path_quantiles(ds[variable], q).assign_attrs(ds[variable].attrs)


def fan_with_errors(ds: xr.Dataset, variable: str,
                    quantiles: tuple[float, ...] = HEADLINE_QUANTILES) -> xr.Dataset:
    """`fan` with each quantile's 95% interval: a Dataset of `value`, `ci_low`, `ci_high`
    (quantile, month[, entity]) in the variable's units."""
    value = fan(ds, variable, quantiles)
    bounds = uncertainty.quantile_bounds(ds, variable, quantiles)
    return bounds.assign(value=value).assign_attrs(value.attrs, **bounds.attrs)


def headline(ds: xr.Dataset, quantiles: tuple[float, ...] = HEADLINE_QUANTILES) -> xr.Dataset:
    """Quantiles over paths of the headline variables at the headline months.

    Works lazily on a dask-backed cube (only the selected months are loaded, one variable
    at a time) and directly on a summary store.
    """
    months = headline_months(ds)
    out = {}
    for name in HEADLINE_VARIABLES:
        if is_summary(ds):
            out[name] = fan(ds, name, quantiles).isel(month=months)
        else:
            out[name] = fan(ds.isel(month=months), name, quantiles).compute()
    return xr.Dataset(out)


FINANCE_SCALES = ((1e12, "tn"), (1e9, "bn"), (1e6, "m"), (1e3, "k"))
"""The suffixes finance readers expect: thousand, million, billion, trillion."""


def format_value(value: float) -> str:
    """A number as a finance table shows it: 3 significant figures with k, m, bn or tn
    (1.23bn, 450m, 12.5k); 1,000tn and up in compact scientific notation (2.5e15)."""
    if not np.isfinite(value):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 1e15 * (1 - 5e-4):
        mantissa, exponent = f"{value:.2e}".split("e")
        return f"{float(mantissa):.3g}e{int(exponent)}"
    for scale, suffix in FINANCE_SCALES:
        if magnitude >= scale * (1 - 5e-4):  # 999,999 rounds to 1.00m, not 1e+03k
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


# --- credit summaries ----------------------------------------------------------------------

def default_curve(ds: xr.Dataset) -> xr.DataArray:
    """Cumulative default probability by month and firm: the share of paths whose firm
    has defaulted by that month (from the exact per-path default months)."""
    dm = ds["default_month"]
    defaulted = uncertainty.defaulted_by(dm, uncertainty.month_index(ds))
    return defaulted.mean("path").transpose("month", "firm").rename(
        "default_probability").assign_attrs(units="1",
                                            long_name="cumulative probability of default")


def default_dates(ds: xr.Dataset) -> xr.DataArray:
    """Each path's default month per firm as a date (the month's first day), NaT where the
    firm does not default: `default_month` is stored as an index into `month` because
    CF time units cannot count calendar months."""
    index = ds["default_month"]
    months = ds["month"].values
    dates = xr.apply_ufunc(
        lambda i: np.where(i >= 0, months[np.clip(i, 0, len(months) - 1)],
                           np.datetime64("NaT", "ns")),
        index, dask="parallelized", output_dtypes=[months.dtype])
    return dates.rename("default_date").assign_attrs(
        long_name="first day of the month of the firm's default (NaT: none)")


def ltv_breach_curve(ds: xr.Dataset) -> xr.DataArray:
    """Probability, by month and firm, that an LTV test fails that month."""
    if is_summary(ds):
        curve = ds["ltv_breach_count"] / ds.sizes["path"]
    else:
        curve = ds["ltv_breach"].mean("path")
    return curve.transpose("month", "firm").rename("ltv_breach_probability").assign_attrs(
        units="1", long_name="probability of an LTV breach in the month")


def expected_loss(ds: xr.Dataset) -> xr.DataArray:
    """Mean lender loss over the run, per facility [USD]."""
    return ds["loss_total"].mean("path").rename("expected_loss").assign_attrs(
        units="USD", long_name="expected loss over the run")


def _per_facility(ds: xr.Dataset, values: Any, name: str, long_name: str) -> xr.DataArray:
    coords = {key: c for key, c in ds["loss_total"].coords.items() if c.dims == ("facility",)}
    return xr.DataArray(values, coords=coords, dims=["facility"], name=name,
                        attrs={"units": "USD", "long_name": long_name})


def value_at_risk(ds: xr.Dataset, q: float = 0.99) -> xr.DataArray:
    """The q-quantile of the lender loss over the run, per facility [USD]: numpy's
    default (linear) quantile, read from the largest losses only."""
    n = ds.sizes["path"]
    position = (n - 1) * q
    below = int(np.floor(position))  # ascending ranks `below` and `below + 1`
    largest = _largest(ds, n - below)
    low = largest[:, n - 1 - below]
    high = largest[:, max(n - 2 - below, 0)]
    var = low + (position - below) * (high - low)
    return _per_facility(ds, var, "value_at_risk",
                         f"{q:.1%} value at risk of the loss over the run")


def expected_shortfall(ds: xr.Dataset, q: float = 0.975) -> xr.DataArray:
    """Mean of the worst ⌈n(1 − q)⌉ losses over the run, per facility [USD].

    The tail-mean definition, which stays well defined when most losses are zero.
    """
    n = ds.sizes["path"]
    k = max(1, int(np.ceil(n * (1 - q) - 1e-9)))
    largest = _largest(ds, k)
    return _per_facility(ds, largest.mean(axis=1), "expected_shortfall",
                         f"{q:.1%} expected shortfall of the loss")


def credit_summary(ds: xr.Dataset) -> xr.Dataset:
    """The credit headline: default curves, LTV-breach curves, EL, 99% VaR, 97.5% ES."""
    return xr.Dataset({
        "default_probability": default_curve(ds),
        "ltv_breach_probability": ltv_breach_curve(ds),
        "expected_loss": expected_loss(ds),
        "value_at_risk_99": value_at_risk(ds, 0.99),
        "expected_shortfall_97_5": expected_shortfall(ds, 0.975),
    }).compute()


@xr.register_dataset_accessor("gpusim")
class GpusimAccessor:
    """`ds.gpusim.<method>()` on an opened cube or summary store.

    Lazy over dask on a cube; direct on a summary store; the same numbers as the
    module-level functions of gpusim.analysis.
    """

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    @property
    def mode(self) -> str:
        return "summary" if is_summary(self._ds) else "cube"

    def default_curve(self, errors: bool = False, marginal: bool = False
                      ) -> xr.DataArray | xr.Dataset:
        """Cumulative (or, with `marginal`, in-month) default probability by month and
        firm; with `errors`, a Dataset of `value`, `se`, `ci_low`, `ci_high` (Wilson 95%)."""
        if errors or marginal:
            out = uncertainty.default_probability(self._ds, marginal=marginal)
            return out if errors else out["value"]
        return default_curve(self._ds)

    def default_dates(self) -> xr.DataArray:
        """Each path's default month per firm as a date (NaT: no default)."""
        return default_dates(self._ds)

    def ltv_breach_curve(self, errors: bool = False) -> xr.DataArray | xr.Dataset:
        """Probability of an LTV breach by month and firm (`errors`: with se and Wilson
        95% interval)."""
        if errors:
            return uncertainty.ltv_breach_probability(self._ds)
        return ltv_breach_curve(self._ds)

    def expected_loss(self, errors: bool = False) -> xr.DataArray | xr.Dataset:
        """Mean lender loss over the run, per facility [USD] (`errors`: with its se)."""
        if errors:
            return uncertainty.expected_loss(self._ds)
        return expected_loss(self._ds)

    def var(self, q: float = 0.99, errors: bool = False) -> xr.DataArray | xr.Dataset:
        """Value at risk: the q-quantile of the loss over the run, per facility [USD]
        (`errors`: with its order-statistic 95% interval)."""
        if errors:
            return uncertainty.value_at_risk(self._ds, q)
        return value_at_risk(self._ds, q)

    def es(self, q: float = 0.975, errors: bool = False) -> xr.DataArray | xr.Dataset:
        """Expected shortfall: the mean of the worst (1 − q) losses, per facility [USD]
        (`errors`: with its asymptotic se and 95% interval)."""
        if errors:
            return uncertainty.expected_shortfall(self._ds, q)
        return expected_shortfall(self._ds, q)

    def fan(self, variable: str, quantiles: tuple[float, ...] = HEADLINE_QUANTILES,
            errors: bool = False) -> xr.DataArray | xr.Dataset:
        """Quantiles over paths of a monthly variable, by month (fan chart data); with
        `errors`, a Dataset of `value`, `ci_low`, `ci_high` (order-statistic 95% interval,
        widened by the sketch's accuracy on a summary store)."""
        if errors:
            return fan_with_errors(self._ds, variable, quantiles)
        return fan(self._ds, variable, quantiles)

    def credit_summary(self) -> xr.Dataset:
        """Default and LTV-breach curves, EL, 99% VaR and 97.5% ES in one Dataset."""
        return credit_summary(self._ds)

    def exposure(self, q: float = lender.PFE_Q, at_default: str = "hold") -> xr.Dataset:
        """Expected exposure and PFE (the q-quantile) per month and facility [USD], with
        errors; "hold" keeps a defaulted firm's exposure at default, "zero" uses the
        recorded balance (both on cube and summary stores). See gpusim.lender."""
        return lender.exposure(self._ds, q, at_default)

    def default_timing(self) -> xr.Dataset:
        """Per year and firm: probability of default in the year and hazard given
        survival to its start, with Wilson 95% intervals."""
        return lender.default_timing(self._ds)

    def loss_by_default_year(self) -> xr.Dataset:
        """Per year of default and facility: expected loss from those defaults [USD]."""
        return lender.loss_by_default_year(self._ds)

    def loss_given_default(self) -> xr.Dataset:
        """Per facility: LGD and recovery-rate distributions over defaulted paths."""
        return lender.loss_given_default(self._ds)

    # --- a sweep's store (gpusim.sweep_view) ---

    def scenario(self, k: int) -> xr.Dataset:
        """Scenario `k` of a sweep's store as a run store (its own config attached)."""
        return sweep_view.scenario(self._ds, k)

    def by_scenario(self) -> xr.Dataset:
        """A sweep's cumulative PD by scenario, month and firm (`pd`, `pd_se`, `pd_ci_low`,
        `pd_ci_high`) and expected loss by scenario and facility (`expected_loss`, ... [USD])."""
        return xr.merge([_prefixed(sweep_view.default_probability(self._ds), "pd"),
                         _prefixed(sweep_view.expected_loss(self._ds), "expected_loss")],
                        combine_attrs="drop")

    def versus(self, baseline: int | None = None) -> xr.Dataset:
        """A sweep's differences against scenario `baseline` (None: the recorded one):
        `pd_difference` by scenario, month and firm and `expected_loss_difference` by
        scenario and facility, each with its paired `_se`, `_ci_low`, `_ci_high`."""
        pd = sweep_view.default_probability_difference(self._ds, baseline)
        el = sweep_view.expected_loss_difference(self._ds, baseline)
        return xr.merge([_prefixed(pd, "pd_difference"),
                         _prefixed(el, "expected_loss_difference")], combine_attrs="drop"
                        ).assign_attrs(baseline=pd.attrs["baseline"])


def _prefixed(estimate: xr.Dataset, name: str) -> xr.Dataset:
    """value → name, se → name_se, ci_low → name_ci_low, ci_high → name_ci_high."""
    return estimate.rename({v: name if v == "value" else f"{name}_{v}"
                            for v in estimate.data_vars})

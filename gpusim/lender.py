"""A lender's views of a store: exposure by facility and month, when defaults happen, and
what they cost, each with its Monte Carlo error.

- **Exposure** (`exposure`): the expected exposure EE (mean over paths) and a high
  quantile, the potential future exposure PFE, of each facility's outstanding balance by
  month. With `at_default="hold"` a defaulted firm's facilities count at their exposure at
  default (EAD: the balance at the end of the month before the default, or the opening
  balance for a default in the first month) from the default on, the lender's view of
  what was at risk; this needs every path's monthly balance, so only a cube has it. With
  `at_default="zero"` the balance as recorded (0 from the default on, the debt being
  written off into `loss`) is used; a summary store gives this from its balance sketches,
  within the sketch's relative accuracy α (`relative_accuracy`).
- **Default timing** (`default_timing`): per firm and year of the run, the probability of
  defaulting in that year and the hazard, the probability of defaulting in it given that
  the firm had survived to its start (Wilson intervals; the last year may be partial:
  `months` says how long each year is).
- **Expected loss by year of default** (`loss_by_default_year`): each facility's expected
  loss split by the year its firm defaulted (they add up to the expected loss).
- **Loss given default** (`loss_given_default`): the distribution over defaulted paths of
  LGD = loss / EAD and of the recovery rate 1 − LGD (a loss includes the default month's
  interest, so LGD can exceed 1 slightly). It needs the EAD of every defaulted path, so
  only a cube has it: a summary store keeps the balance only as sketches over all paths.

Timing and losses come from the exact per-path `default_month` and `loss_total`, so cube
and summary stores give the same numbers.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
import yaml

from gpusim import sketch, uncertainty
from gpusim.errors import InputError

PFE_Q = 0.95
"""Level of the potential future exposure."""
LGD_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
AT_DEFAULT = ("hold", "zero")


def facility_default_month(ds: xr.Dataset) -> xr.DataArray:
    """Per path and facility, the default month of the facility's firm (-1: none)."""
    firm = xr.DataArray(ds["facility_firm"].values, dims="facility")
    return ds["default_month"].sel(firm=firm).drop_vars("firm").assign_coords(
        facility=ds["facility"])


def opening_balances(ds: xr.Dataset) -> xr.DataArray:
    """Each facility's drawn balance at the start month [USD], from the resolved config."""
    from gpusim.config import config_from_dict  # pydantic loads here, not with `import gpusim`

    one = "scenario_config" in ds.coords and ds["scenario_config"].ndim == 0
    text = str(ds["scenario_config"].values) if one else ds.attrs["config"]  # a sweep's
    config = config_from_dict(yaml.safe_load(text))  # scenario, selected, has its own
    values = [f.balance for firm in config.firms for f in firm.facilities]
    return xr.DataArray(values, dims="facility", coords={"facility": ds["facility"]})


def exposure_at_default(ds: xr.Dataset) -> xr.DataArray:
    """Per path and facility on a cube, the balance at the end of the month before the
    firm's default (the opening balance for a default in month 0; 0 without default)."""
    _need_cube(ds, "exposure at default")
    dm = facility_default_month(ds)
    before = ds["balance"].shift(month=1).fillna(opening_balances(ds))
    month = uncertainty.month_index(ds)
    return before.where(month == dm, 0.0).sum("month").rename("exposure_at_default")


def _need_cube(ds: xr.Dataset, what: str) -> None:
    if uncertainty.is_summary(ds):
        raise InputError(
            f"{what} needs every path's monthly facility balance, which a summary store does "
            "not keep (it holds balance only as monthly sketches over all paths, and no "
            "per-path exposure at default); use a cube store (gpusim run --mode cube), or "
            "at_default='zero' for the exposure as recorded")


def held_balance(ds: xr.Dataset) -> xr.DataArray:
    """Per path, month and facility on a cube: the balance, and from the default on the
    exposure at default [USD]."""
    month = uncertainty.month_index(ds)
    dm = facility_default_month(ds)
    defaulted = (dm >= 0) & (dm <= month)
    return xr.where(defaulted, exposure_at_default(ds), ds["balance"]).transpose(
        "path", "month", "facility").assign_attrs(ds["balance"].attrs)


def exposure(ds: xr.Dataset, q: float = PFE_Q, at_default: str = "hold") -> xr.Dataset:
    """Expected exposure and PFE at level q per month and facility [USD] (month, facility).

    `ee`, `ee_se`: the mean and its standard error; `pfe`, `pfe_low`, `pfe_high`: the
    q-quantile and its 95% order-statistic interval. See the module docstring for
    `at_default` ("hold" on a cube only, "zero" on either store).
    """
    if at_default not in AT_DEFAULT:
        raise InputError(f"at_default={at_default!r}: expected one of {AT_DEFAULT}")
    if not 0 < q < 1:
        raise InputError(f"q={q!r}: expected a PFE level strictly between 0 and 1")
    if uncertainty.is_summary(ds):
        if at_default == "hold":
            _need_cube(ds, "exposure held at default")
        return _sketch_exposure(ds, q)
    balance = held_balance(ds) if at_default == "hold" else ds["balance"]
    n = ds.sizes["path"]
    bounds = uncertainty.quantile_bounds(ds.assign(exposure=balance), "exposure", (q,))
    if balance.chunks is not None:
        balance = balance.chunk({"path": -1, "month": 1})
    out = xr.Dataset({"ee": balance.mean("path"), "ee_se": balance.std("path", ddof=1) / np.sqrt(n),
                      "pfe": balance.quantile(q, dim="path").drop_vars("quantile"),
                      "pfe_low": bounds["ci_low"].isel(quantile=0, drop=True),
                      "pfe_high": bounds["ci_high"].isel(quantile=0, drop=True)})
    return out.transpose("month", "facility").assign_attrs(
        units="USD", at_default=at_default, pfe_level=q, relative_accuracy=0.0, paths=n)


def _sketch_exposure(ds: xr.Dataset, q: float) -> xr.Dataset:
    """Exposure as recorded, from the balance sketches (within α relative: balances ≥ 0)."""
    counts = ds["balance_sketch"].values  # (month, facility, bucket)
    n = ds.sizes["path"]
    value = sketch.representative(np.arange(sketch.BUCKETS))
    mean = (counts * value).sum(-1) / n
    var = np.maximum((counts * value**2).sum(-1) / n - mean**2, 0.0)
    bounds = uncertainty.quantile_bounds(ds, "balance", (q,))
    pfe = sketch.quantiles(counts, [q])[..., 0]
    dims, coords = ("month", "facility"), {"month": ds["month"], "facility": ds["facility"]}
    out = xr.Dataset({"ee": (dims, mean), "ee_se": (dims, np.sqrt(var / max(n - 1, 1))),
                      "pfe": (dims, pfe),
                      "pfe_low": bounds["ci_low"].isel(quantile=0, drop=True),
                      "pfe_high": bounds["ci_high"].isel(quantile=0, drop=True)}, coords=coords)
    return out.assign_attrs(units="USD", at_default="zero", pfe_level=q,
                            relative_accuracy=sketch.ALPHA, paths=n)


# --- default timing and losses --------------------------------------------------------------

def year_of(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The run's years (1, 2, …) and how many months of the run each covers."""
    months = ds.sizes["month"]
    years = np.arange(1, (months + 11) // 12 + 1)
    return years, np.minimum(12, months - 12 * (years - 1))


def default_timing(ds: xr.Dataset) -> xr.Dataset:
    """Per year of the run and firm: `probability` of defaulting in that year and the
    `hazard` given survival to its start, each with `_se`, `_low`, `_high` (Wilson 95%)."""
    years, months = year_of(ds)
    dm = ds["default_month"]
    year = xr.DataArray(years, dims="year", coords={"year": years})
    start = 12 * (year - 1)
    k = ((dm >= start) & (dm < start + 12)).sum("path")
    survivors = ((dm < 0) | (dm >= start)).sum("path")
    n = ds.sizes["path"]
    p = uncertainty.proportion(k, n)
    rate = k / np.maximum(survivors, 1)
    low, high = uncertainty.wilson(k, np.maximum(survivors, 1))
    out = xr.Dataset({"probability": p["value"], "probability_se": p["se"],
                      "probability_low": p["ci_low"], "probability_high": p["ci_high"],
                      "hazard": rate.where(survivors > 0),
                      "hazard_se": np.sqrt(rate * (1 - rate) / np.maximum(survivors, 1)).where(
                          survivors > 0),
                      "hazard_low": low.where(survivors > 0),
                      "hazard_high": high.where(survivors > 0), "survivors": survivors})
    return out.assign_coords(months=("year", months)).transpose("year", "firm").assign_attrs(
        units="1", paths=n, level=uncertainty.LEVEL,
        long_name="probability of default in the year, and given survival to its start")


def loss_by_default_year(ds: xr.Dataset) -> xr.Dataset:
    """Per year of default and facility: the expected loss from defaults in that year
    [USD] (`value`) and its standard error (`se`); summed over years, the expected loss."""
    years, months = year_of(ds)
    year = xr.DataArray(years, dims="year", coords={"year": years})
    dm = facility_default_month(ds)
    in_year = (dm >= 12 * (year - 1)) & (dm < 12 * year)
    losses = ds["loss_total"].where(in_year, 0.0)
    n = ds.sizes["path"]
    out = xr.Dataset({"value": losses.mean("path"),
                      "se": losses.std("path", ddof=1) / np.sqrt(n)})
    return out.assign_coords(months=("year", months)).transpose("year", "facility").assign_attrs(
        units="USD", paths=n, long_name="expected loss by year of the firm's default")


def loss_given_default(ds: xr.Dataset, quantiles: tuple[float, ...] = LGD_QUANTILES
                       ) -> xr.Dataset:
    """Per facility on a cube, over the paths where its firm defaulted with a positive
    exposure: `defaults` (how many), `lgd_mean` and its `lgd_se`, and the `lgd` and
    `recovery` (1 − LGD) quantiles (quantile, facility). Raises InputError on a summary
    store (see the module docstring)."""
    _need_cube(ds, "loss given default")
    ead = exposure_at_default(ds).compute()
    loss = ds["loss_total"].compute()
    defaulted = (facility_default_month(ds) >= 0).compute() & (ead > 0)
    lgd = (loss / ead.where(defaulted)).transpose("path", "facility")
    count = defaulted.sum("path")
    q = list(quantiles)
    return xr.Dataset({
        "defaults": count, "lgd_mean": lgd.mean("path"),
        "lgd_se": lgd.std("path", ddof=1) / np.sqrt(count.where(count > 1)),
        "lgd": lgd.quantile(q, dim="path"),
        "recovery": 1 - lgd.quantile([1 - x for x in q], dim="path").assign_coords(quantile=q),
    }).assign_attrs(
        units="1", long_name="loss given default (loss / exposure at default) and recovery")

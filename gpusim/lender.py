"""A lender's views of a store: exposure by facility and month, when defaults happen, and
what they cost, each with its Monte Carlo error.

- **Exposure** (`exposure`): the expected exposure EE (mean over paths) and a high
  quantile, the potential future exposure PFE, of each facility's outstanding balance by
  month. With `at_default="hold"` a defaulted firm's facilities count at their exposure at
  default (EAD: the balance at the end of the month before the default, or the opening
  balance for a default in the first month) from the default on, the lender's view of
  what was at risk. With `at_default="zero"` the balance as recorded (0 from the default
  on, the debt being written off into `loss`) is used. A cube gives both exactly. A
  summary store gives both from its balance sketches, within the sketch's relative
  accuracy α (`relative_accuracy`); held at default it adds the exact per-path EAD
  (`exposure_at_default`, which every store keeps, a value per path and facility like
  `loss_total`): EE_hold(t) = EE_zero(t) + mean over paths of EAD·1{default month ≤ t},
  the second term exact, and the PFE from the sketches with each defaulted path's
  recorded 0 moved to its EAD's bucket (`held_sketch`).
- **Default timing** (`default_timing`): per firm and year of the run, the probability of
  defaulting in that year and the hazard, the probability of defaulting in it given that
  the firm had survived to its start (Wilson intervals; the last year may be partial:
  `months` says how long each year is).
- **Expected loss by year of default** (`loss_by_default_year`): each facility's expected
  loss split by the year its firm defaulted (they add up to the expected loss).
- **Loss given default** (`loss_given_default`): the distribution over defaulted paths of
  LGD = loss / EAD and of the recovery rate 1 − LGD (a loss includes the default month's
  interest, so LGD can exceed 1 slightly).

Timing, losses, EAD and LGD come from the exact per-path `default_month`, `loss_total`
and `exposure_at_default`, so cube and summary stores give the same numbers. A summary
store written before stores kept `exposure_at_default` gives only `at_default="zero"`
(`holds_at_default` says which a store can give).
"""

from __future__ import annotations

import warnings

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
    """Per path and facility, the exposure at default [USD]: the balance at the end of the
    month before the firm's default (the opening balance for a default in month 0; 0
    where the firm did not default, which `default_month == -1` marks). Stores keep it
    per path (`exposure_at_default`); a cube written before they did derives it."""
    if "exposure_at_default" in ds:
        return ds["exposure_at_default"]
    if uncertainty.is_summary(ds):
        raise InputError(
            "this summary store was written before gpusim kept each path's exposure at "
            "default (the variable exposure_at_default), and its balance sketches cannot "
            "give it; rerun the scenario, or use at_default='zero' for the exposure as "
            "recorded")
    return derived_exposure_at_default(ds)


def derived_exposure_at_default(ds: xr.Dataset) -> xr.DataArray:
    """The exposure at default per path and facility on a cube, from its monthly
    balances (float64; what the stored `exposure_at_default` equals, in the run's dtype)."""
    if uncertainty.is_summary(ds):
        raise InputError("deriving the exposure at default needs every path's monthly "
                         "facility balance, which only a cube store keeps")
    dm = facility_default_month(ds)
    before = ds["balance"].shift(month=1).fillna(opening_balances(ds))
    month = uncertainty.month_index(ds)
    return before.where(month == dm, 0.0).sum("month").rename("exposure_at_default")


def holds_at_default(ds: xr.Dataset) -> bool:
    """Whether the store can give exposure held at default and loss given default: a
    cube, or a summary store that keeps the per-path exposure at default."""
    return "exposure_at_default" in ds or not uncertainty.is_summary(ds)


def held_balance(ds: xr.Dataset) -> xr.DataArray:
    """Per path, month and facility on a cube: the balance, and from the default on the
    exposure at default [USD]."""
    month = uncertainty.month_index(ds)
    dm = facility_default_month(ds)
    defaulted = uncertainty.defaulted_by(dm, month)
    return xr.where(defaulted, exposure_at_default(ds), ds["balance"]).transpose(
        "path", "month", "facility").assign_attrs(ds["balance"].attrs)


def exposure(ds: xr.Dataset, q: float = PFE_Q, at_default: str = "hold") -> xr.Dataset:
    """Expected exposure and PFE at level q per month and facility [USD] (month, facility).

    `ee`, `ee_se`: the mean and its standard error; `pfe`, `pfe_low`, `pfe_high`: the
    q-quantile and its 95% order-statistic interval. See the module docstring for
    `at_default` ("hold" or "zero") and for what a summary store gives.
    """
    if at_default not in AT_DEFAULT:
        raise InputError(f"at_default={at_default!r}: expected one of {AT_DEFAULT}")
    if not 0 < q < 1:
        raise InputError(f"q={q!r}: expected a PFE level strictly between 0 and 1")
    if uncertainty.is_summary(ds):
        return _sketch_exposure(ds, q, at_default)
    balance = held_balance(ds) if at_default == "hold" else ds["balance"]
    n = ds.sizes["path"]
    bounds = uncertainty.quantile_bounds(ds.assign(exposure=balance), "exposure", (q,))
    balance = uncertainty.all_paths(balance)  # the chunks `quantile_bounds` reads too
    out = xr.Dataset({"ee": balance.mean("path"), "ee_se": balance.std("path", ddof=1) / np.sqrt(n),
                      "pfe": uncertainty.path_quantiles(balance, q).drop_vars("quantile"),
                      "pfe_low": bounds["ci_low"].isel(quantile=0, drop=True),
                      "pfe_high": bounds["ci_high"].isel(quantile=0, drop=True)})
    return out.transpose("month", "facility").assign_attrs(
        units="USD", at_default=at_default, pfe_level=q, relative_accuracy=0.0, paths=n)


def _sketch_exposure(ds: xr.Dataset, q: float, at_default: str) -> xr.Dataset:
    """Exposure from the balance sketches (within α relative: balances ≥ 0); held at
    default, the defaulted paths' EADs are added exactly (`held_sketch`)."""
    counts = ds["balance_sketch"].values  # (month, facility, bucket)
    n = ds.sizes["path"]
    value = sketch.representative(np.arange(sketch.BUCKETS))
    total, squares = (counts * value).sum(-1), (counts * value**2).sum(-1)
    if at_default == "hold":
        counts, exact, exact_squares = held_sketch(ds, counts)
        total, squares = total + exact, squares + exact_squares
    mean = total / n
    var = np.maximum(squares / n - mean**2, 0.0)
    dims, coords = ("month", "facility"), {"month": ds["month"], "facility": ds["facility"]}
    bounds = uncertainty.quantile_bounds(
        ds.assign(balance_sketch=((*dims, "bucket"), counts)), "balance", (q,))
    pfe = sketch.quantiles(counts, [q])[..., 0]
    out = xr.Dataset({"ee": (dims, mean), "ee_se": (dims, np.sqrt(var / max(n - 1, 1))),
                      "pfe": (dims, pfe),
                      "pfe_low": bounds["ci_low"].isel(quantile=0, drop=True),
                      "pfe_high": bounds["ci_high"].isel(quantile=0, drop=True)}, coords=coords)
    return out.assign_attrs(units="USD", at_default=at_default, pfe_level=q,
                            relative_accuracy=sketch.ALPHA, paths=n)


def held_sketch(ds: xr.Dataset, balance_sketch: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """On a summary store, the balance sketches (month, facility, bucket) with every
    defaulted path's recorded 0 (the model writes exactly 0 from the default month on)
    moved to the bucket of its exposure at default, from its default month on: the
    sketches of the balance held at default, exactly as a cube's would be. Also the
    exact sums over paths of EAD·1{default_month ≤ t} and of its square (month, facility)
    [USD, USD²]. Raises InputError if a sketch's zero bucket holds fewer paths than
    have defaulted (a store whose balances are not those of this model).
    `balance_sketch`: the store's `balance_sketch` values when already read (not
    changed), so that they are not read and decompressed again."""
    dm = facility_default_month(ds).transpose("path", "facility").values
    ead = exposure_at_default(ds).transpose("path", "facility").values.astype(np.float64)
    months, facilities = ds.sizes["month"], ds.sizes["facility"]
    path, facility = np.nonzero(dm >= 0)
    cell = dm[path, facility].astype(np.int64) * facilities + facility  # (month, facility)
    moved = np.bincount(cell * sketch.BUCKETS + sketch.bucket_index(ead[path, facility]),
                        minlength=months * facilities * sketch.BUCKETS)
    moved = np.cumsum(moved.reshape(months, facilities, sketch.BUCKETS), axis=0)
    if balance_sketch is None:
        balance_sketch = ds["balance_sketch"].values
    counts = balance_sketch.astype(np.int64) + moved
    counts[..., sketch.ZERO] -= moved.sum(-1)
    if np.any(counts[..., sketch.ZERO] < 0):
        raise InputError("balance_sketch: fewer paths at 0 than defaulted facilities; the "
                         "store's sketches and default months do not belong together")

    def by_month(weights: np.ndarray) -> np.ndarray:
        sums = np.bincount(cell, weights=weights, minlength=months * facilities)
        return np.cumsum(sums.reshape(months, facilities), axis=0)

    values = ead[path, facility]
    return counts, by_month(values), by_month(values * values)


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
    """Per facility, over the paths where its firm defaulted with a positive exposure:
    `defaults` (how many), `lgd_mean` and its `lgd_se`, and the `lgd` and `recovery`
    (1 − LGD) quantiles (quantile, facility), exact on cube and summary stores alike
    (from the per-path `loss_total` and `exposure_at_default`); NaN but `defaults` for a
    facility none of whose paths defaulted (and `lgd_se` with fewer than two)."""
    ead = exposure_at_default(ds).compute()
    loss = ds["loss_total"].compute()
    defaulted = (facility_default_month(ds) >= 0).compute() & (ead > 0)
    lgd = (loss / ead.where(defaulted)).transpose("path", "facility")
    count = defaulted.sum("path")
    q = list(quantiles)
    with warnings.catch_warnings():  # a facility without defaults has no LGD: NaN, quietly
        warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
        lgd_q = lgd.quantile(q, dim="path")
        recovery = 1 - lgd.quantile([1 - x for x in q], dim="path").assign_coords(quantile=q)
    return xr.Dataset({
        "defaults": count, "lgd_mean": lgd.mean("path"),
        "lgd_se": lgd.std("path", ddof=1) / np.sqrt(count.where(count > 1)),
        "lgd": lgd_q, "recovery": recovery,
    }).assign_attrs(
        units="1", long_name="loss given default (loss / exposure at default) and recovery")

"""A sweep's store read as a whole: its scenarios one by one, each firm's default
probability and each facility's expected loss by scenario, and the differences against a
baseline scenario with their paired standard errors.

A sweep's store (`gpusim sweep`, gpusim.sweep) is a run store whose every data variable
has a leading `scenario` dimension. Its coordinates along `scenario`: `scenario` (the
label, "market.price.initial=1.5"), one coordinate per varied key holding that key's value
(named by the dotted key), and `scenario_config`, each scenario's resolved config (YAML).
The root attribute `sweep` (JSON: the grid, as varied) marks it; `sweep_baseline` is the
index of the scenario the others are compared with by default.

All scenarios share the seed and the paths, so scenario k and the baseline saw the same
random draws path by path: their difference is the mean of per-path differences, with
the standard error of that mean (gpusim.uncertainty.paired_difference).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

from gpusim import uncertainty
from gpusim.errors import InputError

SWEEP_ATTR = "sweep"
"""Root attribute of a sweep's store: JSON {"schema", "vary": [[key, [values]], ...]}."""
BASELINE_ATTR = "sweep_baseline"
"""Root attribute: the index of the baseline scenario."""
CONFIG_COORD = "scenario_config"
"""Coordinate along `scenario`: each scenario's resolved config, as YAML."""
SCHEMA = "gpusim.sweep/2"


def is_sweep(ds: xr.Dataset) -> bool:
    """Whether `ds` is a sweep's store (with its `scenario` dimension)."""
    return SWEEP_ATTR in ds.attrs and "scenario" in ds.dims


def grid(ds: xr.Dataset) -> list[tuple[str, list[Any]]]:
    """The sweep's varied keys and their values, in the order given."""
    return [(key, values) for key, values in json.loads(ds.attrs[SWEEP_ATTR])["vary"]]


def labels(ds: xr.Dataset) -> list[str]:
    """The scenarios' labels, in store order."""
    return [str(label) for label in ds["scenario"].values]


def baseline_index(ds: xr.Dataset, baseline: int | None = None) -> int:
    """`baseline` checked against the store's scenarios (None: the recorded baseline)."""
    if baseline is None:
        baseline = int(ds.attrs.get(BASELINE_ATTR, 0))
    n = ds.sizes["scenario"]
    if isinstance(baseline, bool) or not isinstance(baseline, int | np.integer) \
            or not 0 <= baseline < n:
        raise InputError(f"--baseline {baseline}: expected a scenario index from 0 to {n - 1}")
    return int(baseline)


def scenario(ds: xr.Dataset, k: int) -> xr.Dataset:
    """Scenario `k` of a sweep's store as a run store: `ds.isel(scenario=k)` with its own
    config in the `config` attribute (the single-run analysis reads it there)."""
    if not is_sweep(ds):
        raise InputError("not a sweep's store (no `scenario` dimension); open one written by "
                         "gpusim sweep")
    n = ds.sizes["scenario"]
    if not 0 <= k < n:
        raise InputError(f"scenario {k}: expected an index from 0 to {n - 1}")
    one = ds.isel(scenario=k)
    one.attrs = dict(ds.attrs) | {"config": str(ds[CONFIG_COORD].values[k]),
                                  "sweep_scenario": str(ds["scenario"].values[k])}
    return one


def scenarios(ds: xr.Dataset) -> list[tuple[str, xr.Dataset]]:
    """Every scenario of a sweep's store as (label, run store), in store order."""
    return [(label, scenario(ds, k)) for k, label in enumerate(labels(ds))]


def _by_scenario(ds: xr.Dataset, estimate: Any) -> xr.Dataset:
    """`estimate(run store)` of every scenario, stacked along `scenario`."""
    parts = [estimate(one) for _, one in scenarios(ds)]
    out = xr.concat(parts, dim="scenario", coords="minimal", compat="override")
    return out.assign_coords(scenario=ds["scenario"]).assign_attrs(parts[0].attrs)


def default_probability(ds: xr.Dataset) -> xr.Dataset:
    """Cumulative default probability (value, se, Wilson 95% interval) by scenario, month
    and firm."""
    return _by_scenario(ds, uncertainty.default_probability)


def expected_loss(ds: xr.Dataset) -> xr.Dataset:
    """Expected loss over the run [USD] (value, se, 95% interval) by scenario and facility."""
    return _by_scenario(ds, uncertainty.expected_loss)


def defaulted_by_month(ds: xr.Dataset) -> xr.DataArray:
    """Per scenario, path, firm and month: 1 if the firm has defaulted by the month."""
    return uncertainty.defaulted_by(ds["default_month"], uncertainty.month_index(ds)
                                    ).astype("int8")


def _versus(ds: xr.Dataset, per_path: xr.DataArray, baseline: int | None) -> xr.Dataset:
    b = baseline_index(ds, baseline)
    out = uncertainty.paired_difference(per_path, per_path.isel(scenario=b, drop=True))
    return out.assign_attrs(baseline=b, baseline_scenario=labels(ds)[b])


def default_probability_difference(ds: xr.Dataset, baseline: int | None = None
                                   ) -> xr.Dataset:
    """Each scenario's cumulative PD minus the baseline's, by month and firm, with the
    paired standard error and 95% interval (0 for the baseline itself)."""
    out = _versus(ds, defaulted_by_month(ds), baseline)
    return out.transpose("scenario", "month", "firm").assign_attrs(
        long_name="cumulative PD minus the baseline's")


def expected_loss_difference(ds: xr.Dataset, baseline: int | None = None) -> xr.Dataset:
    """Each scenario's expected loss minus the baseline's [USD], by facility, with the
    paired standard error and 95% interval."""
    out = _versus(ds, ds["loss_total"], baseline)
    return out.transpose("scenario", "facility").assign_attrs(
        units="USD", long_name="expected loss minus the baseline's")

"""Enough paths, automatically: `gpusim run ... --target-se X` adds blocks until every
firm's cumulative default probability at the horizon has a standard error below X.

The standard error is the binomial one of `gpusim.uncertainty.proportion`,
√(p(1 − p)/n) with p the share of the first n paths on which the firm defaulted by the
horizon. After each batch of blocks (the first block, then as many as the error's 1/√n
law says are still needed, rounded up to whole blocks) the run reads the default months
of the paths written so far and decides; `--paths` is the cap. A run that reaches the cap
with an error still above X stops there and says so (`target_se_met` false in the store):
it is not an error, the store is a finished run of the cap's paths.

The store is laid out for the cap and, when the run stops before it, shrunk to the paths
run (`gpusim.store.shrink_paths`): its arrays then equal, bit for bit, those of a
fixed-size run of that many paths with the same seed and block size. It records
`target_se`, `target_se_achieved` (the largest firm's error at the stop),
`target_se_met` and `paths_cap`. An interrupted run resumes with the same command and
`--resume`, and stops where an uninterrupted one would: each decision depends only on the
paths before it.

A firm that has not defaulted on any path so far (or defaulted on all) has p = 0 (or 1)
and so a standard error of 0 by this formula: it does not hold the run back. Look at its
Wilson interval (`gpusim summary`) before trusting a rare default probability.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

from gpusim import uncertainty
from gpusim.errors import InputError
from gpusim.plan import Growth, RunRequest

ATTRS = ("target_se", "target_se_achieved", "target_se_met", "paths_cap")
"""The attributes a run with a target records."""


def horizon_se(default_month: np.ndarray) -> np.ndarray:
    """Per firm, the standard error of the cumulative default probability at the horizon
    over the given paths (default_month: (path, firm), -1: none)."""
    k = xr.DataArray((default_month >= 0).sum(axis=0), dims="firm")
    return uncertainty.proportion(k, len(default_month))["se"].values


def paths_wanted(se: np.ndarray, paths: int, target: float) -> int:
    """Paths in all that bring every error below `target`, from the errors over `paths`
    paths and the 1/√n law (`paths` itself when all are below already)."""
    worst = float(np.max(se))
    if worst < target:
        return paths
    return max(paths + 1, math.ceil(paths * (worst / target) ** 2))


def check_target(target: float, request: RunRequest) -> None:
    """InputError unless `target` is a positive finite number and the run has firms."""
    if not isinstance(target, int | float) or isinstance(target, bool) or not (
            math.isfinite(target) and target > 0):
        raise InputError(f"--target-se {target!r}: expected a positive number, a standard "
                         "error of a probability (e.g. 0.002)")
    if not request.config.firms:
        raise InputError(f"--target-se {target}: the config has no firms, so there is no "
                         "default probability to reach it for")


def with_target(request: RunRequest, target: float) -> RunRequest:
    """The checked run `request`, stopping once every firm's horizon default probability
    has a standard error below `target` (its `paths` the cap)."""
    check_target(target, request)
    target = float(target)

    def errors(out: Path, paths: int) -> np.ndarray:
        return horizon_se(zarr.open_array(out / "default_month", mode="r")[:paths])

    def attrs(out: Path, paths: int) -> dict[str, Any]:
        worst = float(np.max(errors(out, paths)))
        return {"target_se": target, "target_se_achieved": worst,
                "target_se_met": worst < target, "paths_cap": int(request.paths)}

    return dataclasses.replace(request, growth=Growth(
        want=lambda out, paths: paths_wanted(errors(out, paths), paths, target), attrs=attrs))


def stop_note(attrs: dict[str, Any]) -> str | None:
    """One line on where a run with a target stopped, or None for a run without one."""
    if "target_se" not in attrs:
        return None
    paths, worst, target = int(attrs["paths"]), attrs["target_se_achieved"], attrs["target_se"]
    if attrs["target_se_met"]:
        return (f"stopped at {paths:,} paths: every firm's default probability at the "
                f"horizon has a standard error below {target:g} (largest {worst:.3g})")
    return (f"reached the cap --paths {paths:,} with a standard error of {worst:.3g}, above "
            f"the target {target:g}: the target is not met; raise --paths to go further")

"""Two or more stores side by side: headline credit numbers, their differences against the
first (the baseline) and the standard errors of those differences.

Two stores run with the same seed and path count saw the same random draws path by path
(every draw is a function of seed, path, month and slot), so their difference is measured
on matched pairs: the standard error of a difference of default probabilities or
expected losses is the sd of the per-path differences over √n, usually far below what
the two errors alone suggest. Otherwise the runs are independent and the difference's
standard error is √(se_a² + se_b²). Both use the per-path default months and losses,
which cube and summary stores keep exactly, so any two stores can be compared. Firms and
facilities are matched by name, months by date; those in only one store are left out
(and listed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from gpusim import uncertainty
from gpusim.analysis import headline_months
from gpusim.results import estimate, month_label, number, run_provenance

SCHEMA = "gpusim.compare/1"
VAR_Q, ES_Q = 0.99, 0.975
PER_PATH_READ = ("default_month", "loss_total")
"""The per-path results every difference reads."""
IN_MEMORY_BYTES = 1 << 30
"""Up to this many bytes of a store's `PER_PATH_READ` are held in memory while it is
compared (above it they are read from the store for each difference)."""


def per_path_in_memory(ds: xr.Dataset) -> xr.Dataset:
    """`ds` with its `PER_PATH_READ` results held in memory where they fit in
    IN_MEMORY_BYTES: each difference of default probability or expected loss reads them
    again (two means and a paired standard error per row), and each read would otherwise
    decompress them from the store. dask's `persist` keeps the chunks, so every number
    keeps the bits it has when read lazily."""
    names = [name for name in PER_PATH_READ if name in ds and ds[name].chunks is not None]
    if not names or sum(ds[name].nbytes for name in names) > IN_MEMORY_BYTES:
        return ds
    return ds.assign(ds[names].persist().data_vars)


def pairing(a: xr.Dataset, b: xr.Dataset) -> tuple[str, str]:
    """("paired" | "independent", why): paired when both runs share seed and paths."""
    seeds, paths = (a.attrs.get("seed"), b.attrs.get("seed")), (a.sizes["path"],
                                                                  b.sizes["path"])
    if seeds[0] is not None and seeds[0] == seeds[1] and paths[0] == paths[1]:
        return "paired", f"same seed ({seeds[0]}) and paths ({paths[0]}): common random numbers"
    return "independent", f"seeds {seeds[0]} and {seeds[1]}, paths {paths[0]} and {paths[1]}"


def difference(x: xr.DataArray, y: xr.DataArray, paired: bool, se_x: Any, se_y: Any
               ) -> dict[str, Any]:
    """{value, se, ci} of mean(x) − mean(y) over paths: per-path differences when
    `paired`, else the independent √(se_x² + se_y²); a normal 95% interval."""
    value = float(x.mean("path") - y.mean("path"))
    if paired:
        se = float(uncertainty.paired_difference(x, y)["se"])
    else:
        se = float(np.hypot(se_x, se_y))
    return {"value": number(value), "se": number(se),
            "ci": [number(value - uncertainty.Z * se), number(value + uncertainty.Z * se)]}


def defaulted_by(ds: xr.Dataset, firm: str, month: int) -> xr.DataArray:
    """Per path, 1 if `firm` has defaulted by month index `month`, else 0."""
    return uncertainty.defaulted_by(ds["default_month"].sel(firm=firm), month).astype("int8")


def firm_rows(a: xr.Dataset, b: xr.Dataset, paired: bool) -> list[dict[str, Any]]:
    """Cumulative PD of every common firm at the baseline's headline months (by date)."""
    dates_b = {str(d): i for i, d in enumerate(b["month"].values)}
    pd_a = uncertainty.default_probability(a).compute()
    pd_b = uncertainty.default_probability(b).compute()
    rows = []
    for firm in common(a, b, "firm"):
        for m in headline_months(a):
            mb = dates_b.get(str(a["month"].values[m]))
            if mb is None:
                continue
            ea = estimate(pd_a.sel(firm=firm).isel(month=m))
            eb = estimate(pd_b.sel(firm=firm).isel(month=mb))
            rows.append({"name": firm, "month": month_label(a, m), "baseline": ea, "other": eb,
                         "difference": difference(defaulted_by(b, firm, mb),
                                                  defaulted_by(a, firm, m), paired,
                                                  eb["se"], ea["se"])})
    return rows


def facility_rows(a: xr.Dataset, b: xr.Dataset, paired: bool) -> list[dict[str, Any]]:
    """Expected loss (with the difference's se), VaR 99% and ES 97.5% of every common
    facility; VaR and ES differences are given without a standard error."""
    stats = {}
    for key, ds in (("a", a), ("b", b)):
        stats[key] = (uncertainty.expected_loss(ds).compute(),
                      uncertainty.value_at_risk(ds, VAR_Q).compute(),
                      uncertainty.expected_shortfall(ds, ES_Q).compute())
    owners = dict(zip(a["facility"].values, a["facility_firm"].values, strict=True))
    rows = []
    for name in common(a, b, "facility"):
        (el_a, var_a, es_a), (el_b, var_b, es_b) = (
            [estimate(s.sel(facility=name)) for s in stats[k]] for k in ("a", "b"))
        rows.append({
            "name": name, "firm": str(owners[name]),
            "expected_loss": {"baseline": el_a, "other": el_b, "difference": difference(
                b["loss_total"].sel(facility=name), a["loss_total"].sel(facility=name),
                paired, el_b["se"], el_a["se"])},
            "var_99": {"baseline": var_a, "other": var_b,
                       "difference": {"value": _minus(var_b, var_a)}},
            "es_975": {"baseline": es_a, "other": es_b,
                       "difference": {"value": _minus(es_b, es_a)}}})
    return rows


def _minus(x: dict[str, Any], y: dict[str, Any]) -> float | None:
    if x["value"] is None or y["value"] is None:
        return None
    return x["value"] - y["value"]


def common(a: xr.Dataset, b: xr.Dataset, dim: str) -> list[str]:
    """Names along `dim` present in both stores, in the baseline's order."""
    if dim not in a.dims or dim not in b.dims:
        return []
    names_b = {str(n) for n in b[dim].values}
    return [str(n) for n in a[dim].values if str(n) in names_b]


def only_in_one(a: xr.Dataset, b: xr.Dataset) -> list[str]:
    """Firms and facilities that one store has and the other lacks (left out)."""
    out = []
    for dim in ("firm", "facility"):
        names = [{str(n) for n in ds[dim].values} if dim in ds.dims else set()
                 for ds in (a, b)]
        out += [f"{dim} {n}" for n in sorted(names[0] ^ names[1])]
    return out


def compare_pair(a: xr.Dataset, b: xr.Dataset, label: str) -> dict[str, Any]:
    """The comparison of store `b` (named `label`) against the baseline `a`."""
    kind, why = pairing(a, b)
    paired = kind == "paired"
    return {"store": label, "run": run_provenance(b), "pairing": kind, "why": why,
            "left_out": only_in_one(a, b), "firms": firm_rows(a, b, paired),
            "facilities": facility_rows(a, b, paired)}


def compare(stores: list[xr.Dataset], labels: list[str]) -> dict[str, Any]:
    """Every store after the first against the first; each difference is other − baseline."""
    stores = [per_path_in_memory(ds) for ds in stores]
    return {"schema": SCHEMA, "level": uncertainty.LEVEL, "baseline": labels[0],
            "baseline_run": run_provenance(stores[0]),
            "comparisons": [compare_pair(stores[0], ds, label)
                            for ds, label in zip(stores[1:], labels[1:], strict=True)]}

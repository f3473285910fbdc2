"""A store's headline results as plain data: the stable JSON of `gpusim summary --format
json` and the tidy CSV of `--format csv` and of the report's tables.

The document (`summary_document`) is a dict of lists, numbers and strings only; its layout
is versioned by `SCHEMA` and described in docs/results.md. Every estimate carries its
Monte Carlo error from `gpusim.uncertainty`: `se` (a standard error, same units) where
one exists and `ci`, a [low, high] 95% interval. Months are ISO "YYYY-MM" strings with
their index (months after the start) beside them. Non-finite numbers become null.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import xarray as xr

from gpusim import lender, target, uncertainty
from gpusim.analysis import (
    HEADLINE_QUANTILES,
    HEADLINE_VARIABLES,
    fan_with_errors,
    format_value,
    headline_months,
)

SCHEMA = "gpusim.summary/1"
"""Name and major version of the document's layout; fields are only ever added within it."""
RUN_FIELDS = ("scenario", "seed", "paths", "months", "start", "mode", "dtype", "device",
              "gpusim_version", "block_paths", "run_started", "run_finished")
VAR_Q, ES_Q = 0.99, 0.975
CSV_COLUMNS = ("table", "name", "firm", "month", "month_index", "statistic", "value", "se",
               "ci_low", "ci_high")


def number(value: Any) -> float | None:
    """A JSON-safe float: None for NaN or infinities."""
    value = float(value)
    return value if math.isfinite(value) else None


def percent(value: float | None) -> str:
    """A probability as a percentage with one decimal ("–" when undefined)."""
    return "–" if value is None else f"{value:.1%}"


def usd(value: float | None) -> str:
    """An amount in format_value's style, 3 significant figures ("–" when undefined)."""
    return "–" if value is None else format_value(value)


def month_label(ds: xr.Dataset, index: int) -> str:
    """The month `index` of the run as "YYYY-MM"."""
    return str(np.datetime_as_string(ds["month"].values[index], unit="M"))


def month_labels(ds: xr.Dataset) -> list[str]:
    """Every month of the run as "YYYY-MM", in order (`month_label` of each, at once:
    a document labels every month of several curves)."""
    return [str(label) for label in np.datetime_as_string(ds["month"].values, unit="M")]


def estimate(data: xr.Dataset, **where: Any) -> dict[str, Any]:
    """{value, se?, ci} of one entry of an estimate Dataset from gpusim.uncertainty."""
    point = data.sel(where) if where else data
    out: dict[str, Any] = {"value": number(point["value"])}
    if "se" in point:
        out["se"] = number(point["se"])
    out["ci"] = [number(point["ci_low"]), number(point["ci_high"])]
    return out


def run_provenance(ds: xr.Dataset) -> dict[str, Any]:
    """Where the numbers came from: the run's attributes that identify it."""
    attrs = {**ds.attrs, "paths": ds.sizes["path"], "months": ds.sizes["month"],
             "mode": "summary" if uncertainty.is_summary(ds) else "cube"}
    out = {}
    for key in RUN_FIELDS:
        value = attrs.get(key)
        out[key] = value.item() if isinstance(value, np.generic) else value
    return out | {key: attrs[key] for key in target.ATTRS if key in attrs}  # --target-se


def curve(ds: xr.Dataset, data: xr.Dataset, firm: str) -> list[dict[str, Any]]:
    """Every month of one firm's probability curve, each with its error."""
    data = data.sel(firm=firm).compute()
    columns = {name: data[name].values for name in ("value", "se", "ci_low", "ci_high")
               if name in data}  # numpy once: indexing xarray per month is ~1000x slower
    return [{"month": label, "month_index": i, **_estimate_at(columns, i)}
            for i, label in enumerate(month_labels(ds))]


def _estimate_at(columns: dict[str, np.ndarray], i: int) -> dict[str, Any]:
    """`estimate`'s {value, se?, ci} of entry `i` of an estimate's columns (numpy)."""
    out: dict[str, Any] = {"value": number(columns["value"][i])}
    if "se" in columns:
        out["se"] = number(columns["se"][i])
    out["ci"] = [number(columns["ci_low"][i]), number(columns["ci_high"][i])]
    return out


def firms(ds: xr.Dataset) -> list[dict[str, Any]]:
    """Per firm: cumulative and marginal default probability and LTV-breach probability."""
    pd_ = uncertainty.default_probability(ds).compute()
    marginal = uncertainty.default_probability(ds, marginal=True).compute()
    breach = uncertainty.ltv_breach_probability(ds).compute()
    return [{"name": str(f), "pd": curve(ds, pd_, f), "marginal_pd": curve(ds, marginal, f),
             "ltv_breach": curve(ds, breach, f)} for f in ds["firm"].values]


def facilities(ds: xr.Dataset) -> list[dict[str, Any]]:
    """Per facility: expected loss, 99% VaR and 97.5% ES over the run, with errors [USD]."""
    el = uncertainty.expected_loss(ds).compute()
    var = uncertainty.value_at_risk(ds, VAR_Q).compute()
    es = uncertainty.expected_shortfall(ds, ES_Q).compute()
    owners = ds["facility_firm"].values
    return [{"name": str(name), "firm": str(owners[i]),
             "expected_loss": estimate(el.isel(facility=i)),
             "var_99": estimate(var.isel(facility=i)),
             "es_975": estimate(es.isel(facility=i))}
            for i, name in enumerate(ds["facility"].values)]


def market(ds: xr.Dataset) -> list[dict[str, Any]]:
    """Headline quantiles of the market variables at the headline months, with intervals
    (on a summary store read from sketches: `relative_accuracy` says within how much)."""
    months = headline_months(ds)
    at_months = ds.isel(month=months)  # a cube reads, a sketch ranks, these months only
    out = []
    for name in HEADLINE_VARIABLES:
        fan = fan_with_errors(at_months, name, HEADLINE_QUANTILES).compute()
        for j, index in enumerate(months):
            out.append({"variable": name, "units": fan.attrs.get("units", ""),
                        "month": month_label(ds, index), "month_index": index,
                        "relative_accuracy": fan.attrs.get("relative_accuracy", 0.0),
                        "quantiles": [{"q": float(q), **estimate(fan.isel(month=j, quantile=k))}
                                      for k, q in enumerate(HEADLINE_QUANTILES)]})
    return out


def summary_document(ds: xr.Dataset) -> dict[str, Any]:
    """The whole machine-readable summary of a store (see docs/results.md)."""
    doc: dict[str, Any] = {"schema": SCHEMA, "run": run_provenance(ds),
                           "level": uncertainty.LEVEL, "market": market(ds)}
    if "firm" in ds.dims:
        doc["firms"] = firms(ds)
        doc["facilities"] = facilities(ds)
        add_lender_views(ds, doc)
    return doc


def exposure_basis(ds: xr.Dataset) -> str:
    """The exposure a store can give: "hold" (held at default) on a cube or a summary
    store that keeps each path's exposure at default, else "zero" (an older summary
    store)."""
    return "hold" if lender.holds_at_default(ds) else "zero"


def add_lender_views(ds: xr.Dataset, doc: dict[str, Any]) -> None:
    """Default timing per firm; exposure, loss by year of default and loss given default
    (where the store keeps exposures at default) per facility, into the document's
    `firms` and `facilities`."""
    timing = lender.default_timing(ds).compute()
    for firm in doc["firms"]:
        one = timing.sel(firm=firm["name"])
        firm["default_timing"] = [
            {"year": int(y), "months": int(one["months"][i]),
             **{key: _renamed(one.isel(year=i), key) for key in ("probability", "hazard")}}
            for i, y in enumerate(one["year"].values)]
    basis = exposure_basis(ds)
    exposure = lender.exposure(ds, at_default=basis).compute()
    by_year = lender.loss_by_default_year(ds).compute()
    lgd = None if basis == "zero" else lender.loss_given_default(ds)
    for i, facility in enumerate(doc["facilities"]):
        facility["exposure"] = exposure_rows(ds, exposure.isel(facility=i), basis)
        one = by_year.isel(facility=i)
        facility["loss_by_default_year"] = [
            {"year": int(y), "value": number(one["value"][j]), "se": number(one["se"][j])}
            for j, y in enumerate(one["year"].values)]
        facility["lgd"] = None if lgd is None else lgd_entry(lgd.isel(facility=i))


def _renamed(point: xr.Dataset, key: str) -> dict[str, Any]:
    """{value, se, ci} of the `key`, `key_se`, `key_low`, `key_high` variables."""
    return {"value": number(point[key]), "se": number(point[f"{key}_se"]),
            "ci": [number(point[f"{key}_low"]), number(point[f"{key}_high"])]}


def exposure_rows(ds: xr.Dataset, one: xr.Dataset, basis: str) -> dict[str, Any]:
    """Every month's EE {value, se} and PFE {value, ci} of one facility."""
    c = {name: one[name].values for name in ("ee", "ee_se", "pfe", "pfe_low", "pfe_high")}
    return {"at_default": basis, "pfe_level": float(one.attrs["pfe_level"]),
            "relative_accuracy": float(one.attrs["relative_accuracy"]),
            "months": [{"month": label, "month_index": m,
                        "ee": {"value": number(c["ee"][m]), "se": number(c["ee_se"][m])},
                        "pfe": {"value": number(c["pfe"][m]),
                                "ci": [number(c["pfe_low"][m]), number(c["pfe_high"][m])]}}
                       for m, label in enumerate(month_labels(ds))]}


def lgd_entry(one: xr.Dataset) -> dict[str, Any]:
    """Loss given default of one facility: defaults, mean LGD ± se, LGD and recovery
    quantiles."""
    return {"defaults": int(one["defaults"]),
            "mean": {"value": number(one["lgd_mean"]), "se": number(one["lgd_se"])},
            "quantiles": [{"q": float(q), "lgd": number(one["lgd"][k]),
                           "recovery": number(one["recovery"][k])}
                          for k, q in enumerate(one["quantile"].values)]}


# --- tidy CSV -------------------------------------------------------------------------------

def rows(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The document as tidy rows (CSV_COLUMNS): one estimate per row."""
    for entry in doc["market"]:
        for q in entry["quantiles"]:
            yield csv_row("market", entry["variable"], "", entry, f"q{q['q']:g}", q)
    for firm in doc.get("firms", []):
        for statistic in ("pd", "marginal_pd", "ltv_breach"):
            for point in firm[statistic]:
                yield csv_row(statistic, firm["name"], firm["name"], point, statistic, point)
    for firm in doc.get("firms", []):
        for point in firm.get("default_timing", []):
            for statistic in ("probability", "hazard"):
                yield csv_row("default_timing", firm["name"], firm["name"],
                           {"month": f"year {point['year']}"}, statistic, point[statistic])
    for facility in doc.get("facilities", []):
        for statistic in ("expected_loss", "var_99", "es_975"):
            yield csv_row("losses", facility["name"], facility["firm"], {}, statistic,
                       facility[statistic])
        yield from facility_view_rows(facility)


def facility_view_rows(facility: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A facility's exposure and loss-by-year-of-default rows."""
    name, firm = facility["name"], facility["firm"]
    for point in facility.get("exposure", {}).get("months", []):
        yield csv_row("exposure", name, firm, point, "ee", point["ee"])
        yield csv_row("exposure", name, firm, point, "pfe", point["pfe"])
    for point in facility.get("loss_by_default_year", []):
        yield csv_row("loss_by_default_year", name, firm, {"month": f"year {point['year']}"},
                   "expected_loss", point)


def csv_row(table: str, name: str, firm: str, where: dict[str, Any], statistic: str,
            value: dict[str, Any]) -> dict[str, Any]:
    """One estimate `value` ({value, se, ci}) as a tidy row of CSV_COLUMNS."""
    low, high = value.get("ci", [None, None])
    return {"table": table, "name": name, "firm": firm, "month": where.get("month", ""),
            "month_index": where.get("month_index", ""), "statistic": statistic,
            "value": value.get("value"), "se": value.get("se"), "ci_low": low, "ci_high": high}


def to_csv(records: Any) -> str:
    """Tidy rows as CSV text with a header (empty cells for missing values)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: "" if v is None else v for k, v in record.items()})
    return buffer.getvalue()


def csv_tables(doc: dict[str, Any]) -> dict[str, str]:
    """One CSV text per table of the document (`market`, `pd`, `marginal_pd`,
    `ltv_breach`, `losses`, ...), keyed by table name."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for record in rows(doc):
        tables.setdefault(record["table"], []).append(record)
    return {name: to_csv(records) for name, records in tables.items()}

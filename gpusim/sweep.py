"""Sensitivities with common random numbers: a grid of scenarios run on the same seed and
paths, so every scenario sees the same random draws path by path and the differences
between them are measured on matched pairs (gpusim.sweep_view, gpusim.compare).

`plan_sweep` checks everything first (each `--vary KEY=V1,V2,...`, every scenario's config,
that the scenarios share the store's dimensions, the output store) and raises InputError
before anything is written. `run_sweep` then carries the sweep out through gpusim.plan's
`execute`, the same path as `gpusim run` (lock, layout beside and rename, resume identity,
executors): into ONE zarr store in which every variable has a leading `scenario`
dimension, chunked 1 along it, so each (scenario, block) is its own region write and its
own "done" flag. `--resume` redoes only the unfinished (scenario, block) pairs; a resume
with another grid, seed, paths, mode or base config is refused. Scenario k of the store
holds the same bits as a plain run of its config (same seed, paths and block size).
A sweep of k scenarios costs about k runs of the same paths, minus k − 1 start-ups.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import yaml

from gpusim import sweep_view
from gpusim.compare import compare
from gpusim.config import Config, config_to_yaml, load_config, month_number
from gpusim.errors import InputError
from gpusim.plan import RunRequest, SweepGrid, check_run, execute
from gpusim.results import CSV_COLUMNS, csv_row, rows, summary_document
from gpusim.storage import root_attributes
from gpusim.store import config_differences, open_store
from gpusim.sweep_view import (
    BASELINE_ATTR,
    CONFIG_COORD,
    SCHEMA,
    SWEEP_ATTR,
    baseline_index,
    grid,
    is_sweep,
    scenarios,
)


def parse_vary(texts: Sequence[str]) -> list[tuple[str, list[Any]]]:
    """`KEY=V1,V2,...` strings → (key, values); values are parsed as YAML (1.5, true)."""
    out: list[tuple[str, list[Any]]] = []
    for text in texts:
        key, sep, values = text.partition("=")
        key = key.strip()
        items = [v.strip() for v in values.split(",")]
        if not sep or not key or not all(items):
            raise InputError(f"--vary {text!r}: expected KEY=V1,V2,... with a dotted config "
                             "key and comma-separated values, e.g. market.price.initial=1.5,2")
        if key in (k for k, _ in out):
            raise InputError(f"--vary {text!r}: the key {key!r} is varied twice; give all its "
                             "values in one --vary")
        parsed = [yaml.safe_load(item) for item in items]
        if len(set(map(repr, parsed))) != len(parsed):
            raise InputError(f"--vary {text!r}: a value is repeated; give each value once")
        out.append((key, parsed))
    if not out:
        raise InputError("sweep: no --vary KEY=V1,V2,... given; vary at least one config key")
    return out


def scenario_name(values: dict[str, Any]) -> str:
    """A scenario's label: "key=value, key2=value2"."""
    return ", ".join(f"{k}={v}" for k, v in values.items())


RESERVED = ("scenario", CONFIG_COORD, "path", "month", "firm", "facility", "facility_firm",
            "bucket")
"""Coordinate names of a sweep's store that a varied key may not take."""


def plan_sweep(config_path: Path, vary: list[tuple[str, list[Any]]], out: Path,
               overrides: Sequence[str] = (), resume: bool = False, overwrite: bool = False,
               baseline: int = 0, **run_args: Any) -> RunRequest:
    """The sweep's checked run (`run_args`: paths, seed, mode, block_paths, device,
    workers, ... as gpusim.plan.check_run takes them); nothing is written."""
    keys = [k for k, _ in vary]
    clash = [k for k in keys if k in RESERVED]
    if clash:
        raise InputError(f"--vary {clash[0]}: {clash[0]!r} names a coordinate of the store, "
                         "not a config key; vary a dotted config key")
    points = [dict(zip(keys, point, strict=True))
              for point in itertools.product(*(v for _, v in vary))]
    if isinstance(baseline, bool) or not 0 <= baseline < len(points):
        raise InputError(f"--baseline {baseline}: expected a scenario index from 0 to "
                         f"{len(points) - 1}")
    base = load_config(config_path, list(overrides))
    configs = []
    for values in points:
        sets = [*overrides, *(f"{k}={json.dumps(v)}" for k, v in values.items())]
        configs.append(load_config(config_path, sets))
        check_same_dimensions(base, configs[-1], scenario_name(values))
    identity = {SWEEP_ATTR: json.dumps({"schema": SCHEMA, "vary": [[k, v] for k, v in vary]})}
    if resume:
        check_same_sweep(Path(out), base, identity, run_args)
    given = " ".join(f"--vary {k}={','.join(map(str, v))}" for k, v in vary)
    request = check_run(base, out, overwrite=overwrite, resume=resume,
                        source=f"# {config_path}\n# " + " ".join(
                            [*(f"--set {o}" for o in overrides), given]), **run_args)
    grid = SweepGrid(tuple(configs), scenario_coords(vary, points, configs), identity,
                     {BASELINE_ATTR: baseline})
    return replace(request, sweep=grid)


def check_same_dimensions(base: Config, config: Config, label: str) -> None:
    """InputError unless scenario `label` keeps the store's dimensions and coordinates
    (months, firms, facilities, dtype): the scenarios share one store."""
    def shape(c: Config) -> dict[str, Any]:
        return {"start": c.start, "horizon_months": c.horizon_months, "dtype": c.dtype,
                "firms": [f.name for f in c.firms],
                "facilities": [[x.name for x in f.facilities] for f in c.firms]}
    differs = [k for k, v in shape(base).items() if shape(config)[k] != v]
    if differs:
        raise InputError(f"--vary: scenario {label!r} changes {', '.join(differs)}; the "
                         "scenarios of a sweep share one store, so they must keep its months, "
                         "firms, facilities and dtype (run such variants as separate runs)")


def scenario_coords(vary: list[tuple[str, list[Any]]], points: list[dict[str, Any]],
                    configs: list[Config]) -> dict[str, Any]:
    """The store's coordinates along `scenario`: labels, each varied key's values (numeric
    where the values all are, else strings) and each scenario's resolved config."""
    coords: dict[str, Any] = {
        "scenario": ("scenario", np.array([scenario_name(p) for p in points], dtype=object),
                     {"long_name": "scenario of the sweep (its varied values)"}),
        CONFIG_COORD: ("scenario", np.array([config_to_yaml(c) for c in configs],
                                            dtype=object),
                       {"long_name": "resolved config of the scenario (YAML)"})}
    for key, _ in vary:
        values = [p[key] for p in points]
        kinds = {type(v) for v in values}
        if kinds <= {int, float} or kinds == {bool}:
            array = np.array(values)
        else:
            array = np.array([json.dumps(v) if not isinstance(v, str) else v
                              for v in values], dtype=object)
        coords[key] = ("scenario", array, {"long_name": f"value of {key} in the scenario"})
    return coords


def check_same_sweep(out: Path, base: Config, identity: dict[str, Any],
                     run_args: dict[str, Any]) -> None:
    """Before anything is written: refuse to resume a store that is not this sweep (grid,
    base config, seed, paths, mode); gpusim.plan checks the rest (block size, device)."""
    found = root_attributes(out)
    if found is None or SWEEP_ATTR not in found:
        raise InputError(f"--resume: {str(out)!r} holds no sweep to resume (start the "
                         "sweep without --resume)")
    wanted = identity | {"seed": int(run_args.get("seed", 0)),
                         "paths": int(run_args.get("paths", 10_000)),
                         "mode": run_args.get("mode", "cube"), "config": config_to_yaml(base)}
    differ = []
    for key, value in wanted.items():
        if found.get(key) == value:
            continue
        if key == "config":
            differ += config_differences(found.get(key), value)
        else:
            differ.append(f"{key} {found.get(key)!r} (asked {value!r})")
    if differ:
        raise InputError(f"--resume: {str(out)!r} is a different sweep: it has "
                         + "; ".join(differ[:6]) + "; resume with the same arguments")


def run_sweep(request: RunRequest, on_block: Callable[[int], None] | None = None) -> Path:
    """Carry out a planned sweep (`plan_sweep`): every (scenario, block) not yet done,
    `on_block(n)` after each with its path count. Returns the store path."""
    return execute(request, on_block)


def open_sweep(path: Path) -> xr.Dataset:
    """A finished sweep's store as a lazy Dataset with its `scenario` dimension."""
    ds = open_store(path)
    if not is_sweep(ds):
        raise InputError(f"store {str(path)!r} is not a sweep's store (no `scenario` "
                         "dimension); it was written by gpusim run, not gpusim sweep")
    return ds


def scenario_values(ds: xr.Dataset) -> list[dict[str, Any]]:
    """Every scenario's varied values, as given, in store order (the grid's product)."""
    keys = [k for k, _ in grid(ds)]
    return [dict(zip(keys, point, strict=True))
            for point in itertools.product(*(v for _, v in grid(ds)))]


def sweep_document(ds: xr.Dataset, baseline: int | None = None) -> dict[str, Any]:
    """Every scenario against the baseline (by index; None: the one recorded): PDs and
    losses with paired errors, as gpusim.compare's document plus the grid."""
    b = baseline_index(ds, baseline)
    runs = scenarios(ds)
    order = [b, *(i for i in range(len(runs)) if i != b)]
    doc = compare([runs[i][1] for i in order], [runs[i][0] for i in order])
    record = {"schema": SCHEMA, "vary": [[k, v] for k, v in grid(ds)], "baseline": b,
              "scenarios": [{"index": k, "name": name, "values": values}
                            for k, ((name, _), values) in enumerate(
                                zip(runs, scenario_values(ds), strict=True))]}
    return doc | {"sweep": record}


SWEEP_CSV_COLUMNS = ("scenario", *CSV_COLUMNS)


def sweep_csv(ds: xr.Dataset, doc: dict[str, Any]) -> str:
    """A sweep as tidy CSV: every scenario's summary rows (gpusim.results.rows) with its
    label in a leading `scenario` column, then the differences of `doc` (sweep_document)
    against its baseline: tables `pd_difference` and `expected_loss_difference`."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SWEEP_CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()

    def put(label: str, record: dict[str, Any]) -> None:
        writer.writerow({"scenario": label} | {k: "" if v is None else v
                                               for k, v in record.items()})
    for label, one in scenarios(ds):
        for record in rows(summary_document(one)):
            put(label, record)
    for comparison in doc["comparisons"]:
        for firm in comparison["firms"]:
            put(comparison["store"], csv_row("pd_difference", firm["name"], firm["name"],
                                          {"month": firm["month"]}, "pd_difference",
                                          firm["difference"]))
        for facility in comparison["facilities"]:
            put(comparison["store"], csv_row("expected_loss_difference", facility["name"],
                                          facility["firm"], {}, "expected_loss_difference",
                                          facility["expected_loss"]["difference"]))
    return buffer.getvalue()


# --- reverse stress -------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """A reverse-stress question: at what value of the swept key does `firm`'s cumulative
    PD by `month` ("YYYY-MM") cross `pd`?"""

    firm: str
    month: str
    pd: float


def parse_target(text: str, config: Config, vary: list[tuple[str, list[Any]]]) -> Target:
    """`FIRM,YYYY-MM,PD` checked against the config (firm, month in the run) and the grid
    (one numeric key with at least two values)."""
    parts = [p.strip() for p in text.split(",")]
    expected = "expected FIRM,YYYY-MM,PD, e.g. miner,2027-12,0.2"
    if len(parts) != 3 or not re.match(r"^\d{4}-(0[1-9]|1[0-2])$", parts[1]):
        raise InputError(f"--reverse {text!r}: {expected}")
    firm, month, level = parts
    firms = [f.name for f in config.firms]
    if firm not in firms:
        raise InputError(f"--reverse {text!r}: firm {firm!r} is not in the config; expected "
                         f"one of {', '.join(firms) or '(no firms)'}")
    index = month_number(month) - month_number(config.start)
    if not 0 <= index < config.horizon_months:
        raise InputError(f"--reverse {text!r}: month {month} is outside the run "
                         f"({config.start} and {config.horizon_months} months)")
    try:
        pd = float(level)
    except ValueError:
        pd = -1.0
    if not 0 < pd < 1:
        raise InputError(f"--reverse {text!r}: PD {level!r}: expected a probability in (0, 1)")
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in vary[0][1])
    if len(vary) != 1 or len(vary[0][1]) < 2 or not numeric:
        raise InputError(f"--reverse {text!r}: a reverse stress needs a sweep of one numeric "
                         f"key with two or more values; got {[k for k, _ in vary]}")
    return Target(firm, month, pd)


def crossing(xs: np.ndarray, ys: np.ndarray, level: float) -> float | None:
    """The first x at which the piecewise-linear curve (xs, ys) reaches `level`; None if
    it does not within the grid."""
    for i in range(len(xs) - 1):
        y0, y1 = ys[i] - level, ys[i + 1] - level
        if y0 == 0:
            return float(xs[i])
        if y0 * y1 < 0:
            return float(xs[i] + (xs[i + 1] - xs[i]) * y0 / (y0 - y1))
    return float(xs[-1]) if ys[-1] == level else None


def reverse_stress(ds: xr.Dataset, target: Target) -> dict[str, Any]:
    """The value of the swept key at which the firm's PD by the month crosses the target,
    by linear interpolation between grid points, and an interval [low, high]: where the
    PD's Wilson 95% band crosses it (low None: below the grid's smallest value; high None:
    above its largest; value None: the PD does not reach the target within the grid).
    Assumes the PD moves monotonically with the key over the grid; the interpolation
    error is not included. `ds`: a sweep's store of one numeric key."""
    (key, values), *rest = grid(ds)
    if rest or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise InputError(f"--reverse: a reverse stress needs a sweep of one numeric key; this "
                         f"one varies {[k for k, _ in grid(ds)]}")
    index = month_number(target.month) - month_number(str(ds["month"].values[0])[:7])
    if not 0 <= index < ds.sizes["month"]:
        raise InputError(f"--reverse: month {target.month} is outside the sweep's months")
    pd = sweep_view.default_probability(ds).sel(firm=target.firm).isel(month=index).compute()
    order = np.argsort(np.asarray(ds[key].values, dtype=float))
    xs = np.asarray(ds[key].values, dtype=float)[order]
    band = {name: np.asarray(pd[name].values, dtype=float)[order]
            for name in ("value", "ci_low", "ci_high")}
    rising = band["value"][-1] >= band["value"][0]
    ends = [crossing(xs, band[name], target.pd)
            for name in (("ci_high", "ci_low") if rising else ("ci_low", "ci_high"))]
    return {"key": key, "firm": target.firm, "month": target.month, "pd": target.pd,
            "value": crossing(xs, band["value"], target.pd),
            "ci": ends,
            "grid": [{"value": float(x), "pd": float(p), "ci": [float(lo), float(hi)]}
                     for x, p, lo, hi in zip(xs, band["value"], band["ci_low"],
                                             band["ci_high"], strict=True)]}

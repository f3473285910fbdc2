"""Sensitivities with common random numbers: a grid of scenarios run on the same seed and
paths, so every scenario sees the same random draws path by path and the differences
between them are measured on matched pairs (gpusim.compare).

`plan_sweep` checks everything first (each `--vary KEY=V1,V2,...`, every scenario's config,
every output store) and raises InputError before anything is written. `run_sweep` then
runs the scenarios one after another through gpusim.plan's `check_run` and `execute` into
one folder: one store per scenario (`scenario_000.zarr`, ...) and `sweep.json`, the
manifest of the grid. `--resume` skips the finished scenarios and resumes the unfinished
one. A sweep of k scenarios costs k runs of the same paths.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import yaml

from gpusim import uncertainty
from gpusim.compare import compare
from gpusim.config import Config, load_config, month_number
from gpusim.errors import InputError
from gpusim.plan import RunRequest, check_run, execute
from gpusim.store import is_store, open_store

SCHEMA = "gpusim.sweep/1"
MANIFEST = "sweep.json"


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


@dataclass(frozen=True)
class Scenario:
    """One point of the grid: its varied values and its run, checked."""

    name: str
    values: dict[str, Any]
    request: RunRequest


def scenario_name(values: dict[str, Any]) -> str:
    """A scenario's label: "key=value, key2=value2"."""
    return ", ".join(f"{k}={v}" for k, v in values.items())


def plan_sweep(config_path: Path, vary: list[tuple[str, list[Any]]], out: Path,
               overrides: Sequence[str] = (), resume: bool = False, overwrite: bool = False,
               **run_args: Any) -> list[Scenario]:
    """Every scenario of the grid with its checked run (`run_args`: paths, seed, mode,
    block_paths, device, ... as gpusim.plan.check_run takes them); nothing is written."""
    check_folder(out, vary, run_args, resume, overwrite)
    scenarios = []
    keys = [k for k, _ in vary]
    for i, point in enumerate(itertools.product(*(v for _, v in vary))):
        values = dict(zip(keys, point, strict=True))
        sets = [*overrides, *(f"{k}={json.dumps(v)}" for k, v in values.items())]
        config = load_config(config_path, sets)
        store = out / f"scenario_{i:03d}.zarr"
        request = check_run(config, store, overwrite=overwrite,
                            resume=resume and is_store(store),
                            source=f"# {config_path}\n# --set " + " --set ".join(sets),
                            **run_args)
        scenarios.append(Scenario(scenario_name(values), values, request))
    return scenarios


def manifest(vary: list[tuple[str, list[Any]]], run_args: dict[str, Any]) -> dict[str, Any]:
    """What identifies a sweep: the grid and the run's seed, paths and mode."""
    return {"schema": SCHEMA, "vary": [[k, v] for k, v in vary],
            "seed": run_args.get("seed", 0), "paths": run_args.get("paths", 10_000),
            "mode": run_args.get("mode", "cube")}


def check_folder(out: Path, vary: list[tuple[str, list[Any]]], run_args: dict[str, Any],
                 resume: bool, overwrite: bool) -> None:
    """Refuse a non-empty folder unless resuming the same sweep or overwriting one."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} exists and is not a folder; a sweep writes a "
                         "folder of stores")
    if not out.is_dir() or not any(out.iterdir()):
        if resume:
            raise InputError(f"--resume: {str(out)!r} holds no sweep to resume")
        return
    recorded = out / MANIFEST
    if not recorded.is_file():
        raise InputError(f"--out {str(out)!r} is a non-empty folder without {MANIFEST}: not "
                         "a sweep; choose an empty or new folder")
    if resume:
        found = json.loads(recorded.read_text())
        wanted = json.loads(json.dumps(manifest(vary, run_args)))
        differ = [f"{k} {found.get(k)!r} (asked {v!r})" for k, v in wanted.items()
                  if found.get(k) != v]
        if differ:
            raise InputError(f"--resume: {str(out)!r} is a different sweep: it has "
                             + ", ".join(differ) + "; resume with the same arguments")
    elif not overwrite:
        raise InputError(f"--out {str(out)!r} already holds a sweep; pass --resume to finish "
                         "it or --overwrite to replace it")


def finished(store: Path) -> bool:
    """Whether a scenario's store is a finished run."""
    try:
        open_store(store)
    except InputError:
        return False
    return True


def run_sweep(scenarios: list[Scenario], vary: list[tuple[str, list[Any]]], out: Path,
              run_args: dict[str, Any], on_block: Callable[[int], None] | None = None
              ) -> Path:
    """Run every scenario not yet finished into `out`, after writing the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    record = manifest(vary, run_args) | {"scenarios": [
        {"name": s.name, "values": s.values, "store": s.request.out.name} for s in scenarios]}
    (out / MANIFEST).write_text(json.dumps(record, indent=2) + "\n")
    for scenario in scenarios:
        if not (scenario.request.resume and finished(scenario.request.out)):
            execute(scenario.request, on_block)
        elif on_block is not None:
            on_block(scenario.request.paths)
    return out


def open_sweep(out: Path) -> tuple[dict[str, Any], list[xr.Dataset]]:
    """A finished sweep's manifest and its scenarios' stores, in grid order."""
    recorded = Path(out) / MANIFEST
    if not recorded.is_file():
        raise InputError(f"{str(out)!r} is not a sweep folder (no {MANIFEST})")
    record = json.loads(recorded.read_text())
    return record, [open_store(Path(out) / s["store"]) for s in record["scenarios"]]


def sweep_document(out: Path, baseline: int = 0) -> dict[str, Any]:
    """Every scenario against the baseline (by index): PDs and losses with paired errors
    (the scenarios share seed and paths), as gpusim.compare's document plus the grid."""
    record, stores = open_sweep(out)
    names = [s["name"] for s in record["scenarios"]]
    if not 0 <= baseline < len(stores):
        raise InputError(f"--baseline {baseline}: expected a scenario index from 0 to "
                         f"{len(stores) - 1}")
    order = [baseline, *(i for i in range(len(stores)) if i != baseline)]
    doc = compare([stores[i] for i in order], [names[i] for i in order])
    return doc | {"sweep": record}


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


def reverse_stress(out: Path, target: Target) -> dict[str, Any]:
    """The value of the swept key at which the firm's PD by the month crosses the target,
    by linear interpolation between grid points, and an interval [low, high]: where the
    PD's Wilson 95% band crosses it (low None: below the grid's smallest value; high None:
    above its largest; value None: the PD does not reach the target within the grid).
    Assumes the PD moves monotonically with the key over the grid; the interpolation
    error is not included."""
    record, stores = open_sweep(out)
    key, values = record["vary"][0]
    order = np.argsort(values)
    xs = np.asarray(values, dtype=float)[order]
    curves = []
    for i in order:
        ds = stores[i]
        index = month_number(target.month) - month_number(str(ds["month"].values[0])[:7])
        curves.append(uncertainty.default_probability(ds).sel(firm=target.firm)
                      .isel(month=index).compute())
    band = {name: np.array([float(c[name]) for c in curves])
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

"""The analyst's subcommands of `gpusim`: `compare` and `sweep` (their arguments and what
they do), kept beside gpusim.cli so that the command-line module stays about running."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import xarray as xr
from rich.console import Console
from rich.progress import Progress

from gpusim.cli_args import dashboard_option
from gpusim.compare import compare
from gpusim.errors import InputError
from gpusim.results import summary_document
from gpusim.store import open_store
from gpusim.sweep import (
    open_sweep,
    parse_target,
    parse_vary,
    plan_sweep,
    reverse_stress,
    run_sweep,
    sweep_csv,
    sweep_document,
)
from gpusim.sweep_view import is_sweep, scenarios
from gpusim.tables import print_compare, print_reverse


def add_analysis_parsers(sub: Any, count: Callable[[str], int], seed: Callable[[str], int]
                         ) -> None:
    """Add `compare` and `sweep` to the subcommands `sub`; `count` and `seed` are the CLI's
    argument types for path counts and seeds."""
    p = sub.add_parser("compare", help="headline numbers of stores side by side, with the "
                       "differences against the first and their standard errors")
    p.add_argument("stores", type=Path, nargs="+", metavar="STORE",
                   help="two or more stores; the first is the baseline")
    p.add_argument("--format", default="table", choices=["table", "json"],
                   help="table (default) or json (schema gpusim.compare/1)")

    p = sub.add_parser("sweep", help="a grid of scenarios on common random numbers, into one "
                       "store with a scenario dimension; prints each against the baseline")
    p.add_argument("config", type=Path, help="scenario YAML")
    p.add_argument("--vary", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a config key and its values (repeatable: the grid is every "
                        "combination), e.g. market.price.initial=1.5,2,2.5")
    p.add_argument("--paths", type=count, default=10_000, help="paths per scenario")
    p.add_argument("--seed", type=seed, default=0, help="the seed every scenario shares")
    p.add_argument("--out", type=Path, required=True,
                   help="the sweep's store, e.g. runs/price.zarr")
    p.add_argument("--mode", default="cube", choices=["cube", "summary"])
    p.add_argument("--block-paths", type=count, default=None)
    p.add_argument("--device", default="auto", choices=["auto", "gpu", "cpu", "numpy"],
                   help="as for gpusim run: every scenario runs on the same backend")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value in every scenario")
    p.add_argument("--baseline", type=int, default=0,
                   help="index of the scenario the others are compared with (default 0; "
                        "recorded in the store)")
    p.add_argument("--reverse", "--target", dest="reverse", default=None,
                   metavar="FIRM,YYYY-MM,PD",
                   help="reverse stress: the value of the (one, numeric) varied key at which "
                        "FIRM's PD by the month crosses PD, with an interval")
    p.add_argument("--workers", type=count, default=None, metavar="N",
                   help="run each scenario's blocks on a local dask cluster of N processes")
    p.add_argument("--cuda-workers", action="store_true",
                   help="run each scenario's blocks on dask-cuda's LocalCUDACluster")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run each scenario's blocks on an existing dask cluster")
    dashboard_option(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.add_argument("--resume", action="store_true",
                   help="finish an interrupted sweep: only its unfinished (scenario, block)s")



def store_labels(paths: Sequence[Path]) -> list[str]:
    """Short names for stores: their file names, or the paths given when names repeat."""
    names = [p.name for p in paths]
    return names if len(set(names)) == len(names) else [str(p) for p in paths]


def open_stores(paths: Sequence[Path]) -> tuple[list[xr.Dataset], list[str]]:
    """Open every store (each checked before any work), a sweep's store as its scenarios
    (labelled by scenario, prefixed by the store's name when several stores are given)."""
    stores, labels = [], []
    for path, label in zip(paths, store_labels(paths), strict=True):
        ds = open_store(path)
        if not is_sweep(ds):
            stores.append(ds)
            labels.append(label)
            continue
        for name, one in scenarios(ds):
            stores.append(one)
            labels.append(name if len(paths) == 1 else f"{label}[{name}]")
    return stores, labels


def cmd_compare(args: argparse.Namespace, console: Console) -> None:
    """Compare stores against the first: paired when they share seed and paths. A sweep's
    store counts as its scenarios (alone: its scenarios against its first)."""
    stores, labels = open_stores(args.stores)
    if len(stores) < 2:
        raise InputError(f"compare: got {len(args.stores)} store ({args.stores[0]}); expected "
                         "two or more (or a sweep's store), the first being the baseline")
    doc = compare(stores, labels)
    if args.format == "json":
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        print_compare(doc, console)


def cmd_sweep(args: argparse.Namespace, console: Console,
              progress_bar: Callable[[Console, bool], Progress]) -> None:
    """Run a grid of scenarios on the same seed and paths into one store, then compare
    them (with `progress_bar(console, quiet)`, the CLI's progress display)."""
    vary = parse_vary(args.vary)
    run_args = {"paths": args.paths, "seed": args.seed, "mode": args.mode,
                "block_paths": args.block_paths, "device": args.device,
                "workers": args.workers, "cuda_workers": args.cuda_workers,
                "scheduler": args.scheduler, "dashboard": args.dashboard}
    request = plan_sweep(args.config, vary, args.out, args.overrides, resume=args.resume,
                         overwrite=args.overwrite, baseline=args.baseline, **run_args)
    target = None if args.reverse is None else parse_target(args.reverse, request.config,
                                                            vary)
    n = len(request.sweep.configs) if request.sweep else 1
    with progress_bar(console, False) as progress:
        task = progress.add_task(f"{n} scenarios", total=args.paths * n)
        out = run_sweep(request, lambda k: progress.advance(task, k))
    ds = open_sweep(out)
    print_compare(sweep_document(ds, args.baseline), console)
    if target is not None:
        print_reverse(reverse_stress(ds, target), console)


def summarize_sweep(ds: xr.Dataset, args: argparse.Namespace, console: Console) -> None:
    """`gpusim summary` of a sweep's store: every scenario against the baseline (PD per
    firm, EL per facility, paired errors) as tables, JSON (the sweep document with each
    scenario's summary document under `summaries`) or tidy CSV."""
    doc = sweep_document(ds, args.baseline)
    if args.format == "json":
        doc["summaries"] = [{"scenario": label} | summary_document(one)
                            for label, one in scenarios(ds)]
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    elif args.format == "csv":
        sys.stdout.write(sweep_csv(ds, doc))
    else:
        print_compare(doc, console)

"""The `gpusim` command line: run scenarios, then summarize, compare and report them.

Exit codes: 0 success; 2 bad input (a config, an argument, a path), reported as one short
paragraph without a traceback and before anything is written; 1 anything else.
Set GPUSIM_DEBUG=1 to see the traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from gpusim.analysis import headline_months
from gpusim.cli_analysis import (
    add_analysis_parsers,
    cmd_compare,
    cmd_sweep,
    open_stores,
    summarize_sweep,
)
from gpusim.cli_args import CONFIG_HELP, Parser, config_source, count_up_to, dashboard_option, seed
from gpusim.cli_info import cmd_info
from gpusim.config import Config, config_to_yaml, load_config
from gpusim.cube import MAX_PATHS
from gpusim.errors import InputError
from gpusim.estimate import CUBE_LIMIT_BYTES, Estimate, estimate, format_bytes
from gpusim.executors.cluster import MAX_WORKERS
from gpusim.plan import (
    DEFAULT_BLOCK_PATHS,
    GPU_BLOCK_PATHS,
    GPU_SUMMARY_BLOCK_PATHS,
    NATIVE_SUMMARY_PATHS_PER_THREAD,
    check_run,
    execute,
)
from gpusim.results import rows, summary_document, to_csv
from gpusim.scenarios import configs_dir, copy_scenario, scenario_path, scenarios
from gpusim.schema import schema_text
from gpusim.storage import OutOfSpace, check_writable_folder
from gpusim.store import open_store
from gpusim.sweep_view import is_sweep
from gpusim.tables import print_credit, print_lender, print_market
from gpusim.target import stop_note, with_target
from gpusim.version import __version__

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT = 0, 1, 2


class InterruptedRun(Exception):
    """Ctrl-C during a run: exit 1 with a hint to resume."""


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand and option; `gpusim --help` lists the subcommands."""
    parser = Parser(prog="gpusim", description=__doc__.splitlines()[0],
                     epilog="'gpusim COMMAND --help' shows a command's options")
    parser.add_argument("--version", action="version", version=f"gpusim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser,
                                title="commands", metavar="COMMAND")

    p = sub.add_parser("run", help="simulate a scenario and write a zarr store")
    p.add_argument("config", help=CONFIG_HELP + ", e.g. base or configs/base.yaml")
    p.add_argument("--paths", type=count_up_to(MAX_PATHS, "MAX_PATHS"), default=10_000,
                   help="number of paths (default 10000)")
    p.add_argument("--seed", type=seed, default=0, help="random seed in [0, 2**64) (default 0)")
    p.add_argument("--target-se", type=float, default=None, metavar="X",
                   help="add blocks until every firm's default probability at the horizon "
                        "has a standard error below X; --paths is then the cap")
    p.add_argument("--out", type=Path, required=True, help="output store, e.g. runs/x.zarr")
    p.add_argument("--block-paths", type=count_up_to(2**31 - 1, "a block is counted in 32 bits"),
                   default=None,
                   help=f"paths per block and per chunk (default {DEFAULT_BLOCK_PATHS:,} on "
                        f"the CPU, {NATIVE_SUMMARY_PATHS_PER_THREAD:,} a thread for a summary "
                        f"on the native backend; on a GPU {GPU_BLOCK_PATHS:,} for a cube, "
                        f"{GPU_SUMMARY_BLOCK_PATHS:,} for a summary); results do not depend "
                        "on it")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. market.price.initial=2.2 (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run of the same config, seed and mode")
    p.add_argument("--mode", default="summary", choices=["cube", "summary"],
                   help="summary (default): quantile sketches per month plus exact default "
                        "months and losses, a few MB; cube: every path and month, for "
                        "drill-down (~9 kB a path for the base scenario)")
    p.add_argument("--allow-large-cube", action="store_true",
                   help=f"write a cube estimated above {format_bytes(CUBE_LIMIT_BYTES)}")
    p.add_argument("--device", default="auto", choices=["auto", "gpu", "cpu", "numpy"],
                   help="gpu: the fused CUDA kernel; cpu: the same kernel built natively, on "
                        "every usable core; numpy: the numpy reference; auto (default): gpu, "
                        "else cpu, else numpy, with a notice saying which and why")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    cluster = p.add_argument_group("cluster (dask.distributed; default: in-process)")
    cluster.add_argument("--workers", type=count_up_to(MAX_WORKERS, "MAX_WORKERS"),
                         default=None, metavar="N",
                         help="start a local cluster of N worker processes")
    cluster.add_argument("--cuda-workers", action="store_true",
                         help="start dask-cuda's LocalCUDACluster: one worker per GPU")
    cluster.add_argument("--scheduler", default=None, metavar="ADDRESS",
                         help="use an existing cluster, e.g. tcp://10.0.0.5:8786")
    dashboard_option(cluster)

    p = sub.add_parser("summary", help="print the headline numbers of a store, with errors")
    p.add_argument("store", type=Path)
    p.add_argument("--format", default="table", choices=["table", "json", "csv"],
                   help="table (default): rich tables; json: the document of "
                        "docs/results.md; csv: the same numbers as tidy rows")
    p.add_argument("--baseline", type=int, default=None, metavar="K",
                   help="a sweep's store: the scenario the others are compared with "
                        "(default: the one recorded)")

    add_analysis_parsers(sub, count_up_to(MAX_PATHS, "MAX_PATHS"), seed)

    p = sub.add_parser("validate", help="check a config (and print it resolved)")
    p.add_argument("config", help=CONFIG_HELP)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--print", dest="show", action="store_true",
                   help="print the resolved YAML to stdout (the note goes to stderr), so "
                        "the output is itself a valid config")

    p = sub.add_parser("configs", help="list the shipped scenarios, or copy one out to edit")
    p.add_argument("--copy", metavar="NAME", default=None,
                   help="copy scenario NAME (with the configs it extends and the schema) "
                        "into --to")
    p.add_argument("--to", type=Path, default=Path("."), metavar="DIR",
                   help="folder to copy into (default: the current folder)")

    p = sub.add_parser("report", help="write an HTML report (figures and credit tables)")
    p.add_argument("stores", type=Path, nargs="+", metavar="STORE",
                   help="a store written by gpusim run; more stores add figures overlaying "
                        "their default and LTV-breach curves on the first's")
    p.add_argument("--out", type=Path, required=True,
                   help="folder for index.html and the PNG figures")
    p.add_argument("--overwrite", action="store_true",
                   help="write into a non-empty --out folder, replacing files of the same "
                        "names (nothing else in it is deleted)")

    sub.add_parser("schema", help="print the config's JSON Schema (for editors)")
    info = sub.add_parser("info", help="print versions and devices")
    info.add_argument("--kernels", metavar="CONFIG", type=Path,
                      help="for each kernel variant CONFIG compiles to: its name, registers, "
                           "stack and spill bytes (ptxas, where nvcc is found; else null), "
                           "and whether it compiles through NVRTC")
    info.add_argument("--json", action="store_true", help="print --kernels as JSON")

    p = sub.add_parser("bench", help="benchmark gpusim against its peers (benchmarks/README.md)")
    p.add_argument("--suite", default="quick", choices=["quick", "full"],
                   help="quick: about a minute on 2 CPU cores; full: up to 10^6 paths on the "
                        "CPU, 10^7 on a GPU, 240 months (default quick)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"],
                   help="cpu: CPU rows; gpu: GPU rows (error without one); auto (default): "
                        "CPU rows, and GPU rows when CuPy sees a device")
    p.add_argument("--out", type=Path, default=None,
                   help="results JSON (a .md table and -paths/-months.png plots are written "
                        "next to it; default bench-SUITE-DEVICE-DATE.json here)")
    p.add_argument("--config", default=None,
                   help="scenario YAML (default configs/base.yaml of the checkout, else a "
                        "built-in market); peers run its market alone")
    p.add_argument("--seed", type=seed, default=2026, help="random seed (default 2026)")
    return parser


def cmd_run(args: argparse.Namespace, console: Console) -> None:
    """Check everything, say what the run will cost, run it, print its summary."""
    path = scenario_path(args.config)
    config = load_config(path, args.overrides)
    request = check_run(config, args.out, paths=args.paths, seed=args.seed,
                        block_paths=args.block_paths, overwrite=args.overwrite,
                        device=args.device, mode=args.mode, resume=args.resume,
                        source=config_source(path, args.overrides),
                        workers=args.workers, cuda_workers=args.cuda_workers,
                        scheduler=args.scheduler, dashboard=args.dashboard)
    if args.target_se is not None:
        request = with_target(request, args.target_se)
    cost = check_cost(config, args)
    if not args.quiet:
        console.print(cost.text(), markup=False, highlight=False, soft_wrap=True)
    with _progress(console, args.quiet) as progress:
        task = progress.add_task(f"{config.name}", total=args.paths)
        try:
            out = execute(request, on_block=lambda n: progress.advance(task, n))
        except KeyboardInterrupt:
            raise InterruptedRun("interrupted; the blocks written so far are kept: continue "
                                 "with the same command and --resume") from None
    ds = open_store(out)
    note = stop_note(ds.attrs)
    if note and (not args.quiet or not ds.attrs["target_se_met"]):
        print(f"gpusim: {note}", file=sys.stderr)
    if not args.quiet:
        console.print(f"wrote {out} ({ds.sizes['path']} paths × {config.horizon_months} months)")
        print_run_summary(ds, console)


def check_cost(config: Config, args: argparse.Namespace) -> Estimate:
    """The run's estimated cost; InputError for a cube above the limit without
    --allow-large-cube, or a store that would not fit on the disk."""
    cost = estimate(config, args.paths, args.mode, backend=_estimated_backend(args),
                    cores=_usable_cores(), workers=args.workers or 1)
    if args.mode == "cube" and cost.store_bytes > CUBE_LIMIT_BYTES and not args.allow_large_cube:
        summary = estimate(config, args.paths, "summary").store_bytes
        raise InputError(
            f"--mode cube --paths {args.paths}: the cube would take about "
            f"{format_bytes(cost.store_bytes)} on disk, above the "
            f"{format_bytes(CUBE_LIMIT_BYTES)} limit; pass --allow-large-cube to write it, "
            f"or use --mode summary (about {format_bytes(summary)}, "
            "the same default curves, losses, VaR and ES)")
    parent = next(p for p in (args.out.resolve(), *args.out.resolve().parents) if p.exists())
    free = shutil.disk_usage(parent).free
    if cost.store_bytes > free and args.overwrite and args.out.is_dir():  # it will be replaced
        free += sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    if not args.resume and cost.store_bytes > free:
        raise InputError(f"--out {str(args.out)!r}: the store would take about "
                         f"{format_bytes(cost.store_bytes)}, but only {format_bytes(free)} is "
                         "free there; choose fewer paths, --mode summary or another disk")
    return cost


def _estimated_backend(args: argparse.Namespace) -> str:
    """The backend the run's time is estimated for: the one --device picks here
    ("gpu", "cpu" or "numpy"), or "cluster" for a run on --scheduler's workers."""
    if args.scheduler:
        return "cluster"
    if args.cuda_workers:
        return "gpu"
    from gpusim.backends.devices import resolve_device  # CuPy, if any, loads here

    return resolve_device(args.device, notice=False)


def _usable_cores() -> int:
    from gpusim.backends.native import usable_threads

    return usable_threads()


class PathsPerSecond(ProgressColumn):
    """Throughput of the run in paths per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("… paths/s" if speed is None else f"{speed:,.0f} paths/s")


def _progress(console: Console, quiet: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("paths"), PathsPerSecond(),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=console, disable=quiet, transient=False,
    )


def print_run_summary(ds, console: Console) -> None:
    """What `gpusim run` prints after the run: the headline quantiles at months 12, 36 and
    the last, with their 95% intervals; then default probabilities by firm and losses by
    facility, with their errors (one summary document feeds both tables)."""
    doc = summary_document(ds)
    print_market(doc, console)
    if "firm" in ds.dims:
        print_credit(doc, headline_months(ds), console)


def cmd_summary(args: argparse.Namespace, console: Console) -> None:
    """Print a store's headline numbers as tables, JSON (docs/results.md) or tidy CSV."""
    ds = open_store(args.store)
    if is_sweep(ds):
        return summarize_sweep(ds, args, console)
    doc = summary_document(ds)
    if args.format == "json":
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    elif args.format == "csv":
        sys.stdout.write(to_csv(rows(doc)))
    else:
        print_market(doc, console)
        print_credit(doc, headline_months(ds), console)
        print_lender(doc, headline_months(ds), console)


def cmd_report(args: argparse.Namespace, console: Console) -> None:
    """Write the report of a store; refuses a non-empty --out unless --overwrite."""
    from gpusim.report import write_report  # matplotlib only loads for this command

    out = args.out
    check_writable_folder(out, "--out")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} exists and is not a folder; choose a folder "
                         "for the report")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise InputError(f"--out {str(out)!r} is a non-empty folder; pass --overwrite to write "
                         "the report into it anyway, or choose an empty or new folder")
    stores, labels = open_stores(args.stores)  # a sweep's store: its scenarios, overlaid
    index = write_report(stores[0], out, list(zip(labels[1:], stores[1:], strict=True)),
                         label=labels[0])
    console.print(f"wrote {index}", markup=False, highlight=False, soft_wrap=True)


def cmd_validate(args: argparse.Namespace, console: Console) -> None:
    """Validate a config; with --print, the resolved YAML alone on stdout."""
    config = load_config(scenario_path(args.config), args.overrides)
    note = (f"{args.config}: valid ({config.name}, {config.horizon_months} months from "
            f"{config.start})")
    if args.show:
        sys.stdout.write(config_to_yaml(config))
        Console(stderr=True).print(note, markup=False, highlight=False, soft_wrap=True)
    else:
        console.print(note, markup=False, highlight=False, soft_wrap=True)


def cmd_configs(args: argparse.Namespace, console: Console) -> None:
    """List the shipped scenarios with their one-line descriptions, or copy one out."""
    if args.copy is not None:
        for path in copy_scenario(args.copy, args.to):
            console.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)
        return
    table = Table(title=f"shipped scenarios ({configs_dir()})", title_justify="left")
    for column in ("name", "extends", "description"):
        table.add_column(column, no_wrap=column != "description")
    for s in scenarios():
        table.add_row(s.name, (s.extends or "").removesuffix(".yaml"), s.description)
    console.print(table)
    console.print("run one: gpusim run NAME --out runs/NAME.zarr; copy one to edit: "
                  "gpusim configs --copy NAME [--to DIR]", markup=False, highlight=False)


def cmd_schema(args: argparse.Namespace, console: Console) -> None:
    """The config's JSON Schema (2020-12, with `$schema` and `$id`) on stdout."""
    sys.stdout.write(schema_text())


def cmd_bench(args: argparse.Namespace, console: Console) -> None:
    """Run a benchmark suite, print its table, write JSON, markdown and plots."""
    import datetime as _dt

    from gpusim.bench.report import console_text
    from gpusim.bench.suite import run_suite

    out = args.out or Path(f"bench-{args.suite}-{args.device}-{_dt.date.today()}.json")
    if out.exists() and out.is_dir():
        raise InputError(f"--out {str(out)!r} is a folder; give a file name ending in .json")
    result = run_suite(args.suite, args.device, out, config=args.config, seed=args.seed)
    console.print(console_text(result), markup=False, highlight=False, soft_wrap=True)
    console.print(f"wrote {out} and {out.with_suffix('.md')}", markup=False, highlight=False,
                  soft_wrap=True)


COMMANDS = {"run": cmd_run, "summary": cmd_summary, "compare": cmd_compare,
            "sweep": lambda args, console: cmd_sweep(args, console, _progress),
            "report": cmd_report, "configs": cmd_configs, "validate": cmd_validate,
            "schema": cmd_schema, "info": cmd_info, "bench": cmd_bench}


@contextmanager
def local_dask() -> Iterator[None]:
    """Dask collections (the summary's reads of a store) computed on this process's
    threads, rechunked by tasks: what dask picks where no distributed client exists. A
    command reads local stores; saying so keeps dask from importing distributed at the
    first compute and rechunk to look for a client (0.5-0.7 s of every command). Runs on
    --workers or --scheduler submit their blocks to their cluster's client directly and
    are not affected."""
    import dask
    import dask.threaded

    with dask.config.set({"scheduler": dask.threaded.get, "array.rechunk.method": "tasks"}):
        yield


def main(argv: Sequence[str] | None = None) -> int:
    console = Console(stderr=False)
    errors = Console(stderr=True)
    try:
        args = build_parser().parse_args(argv)
        with local_dask():
            COMMANDS[args.command](args, console)
    except InputError as err:
        errors.print(f"gpusim: {err}", markup=False, highlight=False, soft_wrap=True)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # stdout closed early (e.g. `gpusim schema | head`): quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except OutOfSpace as err:
        errors.print(f"gpusim: {err}", markup=False, highlight=False, soft_wrap=True)
        return EXIT_ERROR
    except (KeyboardInterrupt, InterruptedRun) as err:
        errors.print(f"gpusim: {err or 'interrupted'}", markup=False, highlight=False,
                     soft_wrap=True)
        return EXIT_ERROR
    except Exception as err:  # noqa: BLE001 - the last line of defence: exit 1
        if os.environ.get("GPUSIM_DEBUG"):
            traceback.print_exc()
        errors.print(f"gpusim: error: {type(err).__name__}: {err}", markup=False,
                     highlight=False, soft_wrap=True)
        return EXIT_ERROR
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

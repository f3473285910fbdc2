"""The `gpusim` command line: run, summary, validate, schema, info.

Exit codes: 0 success; 2 bad input (a config, an argument, a path), reported as one short
paragraph without a traceback and before anything is written; 1 anything else.
Set GPUSIM_DEBUG=1 to see the traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape
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

from gpusim.analysis import credit_summary, format_value, headline, headline_months
from gpusim.config import Config, config_to_yaml, load_config
from gpusim.errors import InputError
from gpusim.plan import (
    DEFAULT_BLOCK_PATHS,
    GPU_BLOCK_PATHS,
    GPU_SUMMARY_BLOCK_PATHS,
    check_run,
    execute,
)
from gpusim.store import open_store
from gpusim.version import __version__

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT = 0, 1, 2


class InterruptedRun(Exception):
    """Ctrl-C during a run: exit 1 with a hint to resume."""


def config_source(path: Path, overrides: Sequence[str]) -> str:
    """The config as given: the file's text (and what it extends) plus the overrides."""
    parts = [f"# {path}\n{path.read_text()}"]
    text = parts[0]
    seen = {path.resolve()}
    while (match := re.search(r"^extends:\s*['\"]?([^'\"\s#]+)", text, flags=re.M)):
        parent = (path.parent / match.group(1)).resolve()
        if parent in seen or not parent.is_file():
            break
        seen.add(parent)
        text = parent.read_text()
        parts.append(f"# {parent.name}\n{text}")
        path = parent
    if overrides:
        parts.append("# --set " + " --set ".join(overrides))
    return "\n".join(parts)


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments as InputError (exit 2, one paragraph)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{self.prog}: {message} (see '{self.prog} --help')")


def count(text: str) -> int:
    """A path or block count: '10000', '10_000' or '1e4' (must be a whole number ≥ 1)."""
    expected = f"expected a positive whole number, got {text!r}"
    try:
        value = float(text.replace("_", "")) if "e" in text.lower() else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(expected) from None
    if value != int(value) or value < 1:
        raise argparse.ArgumentTypeError(expected)
    return int(value)


def seed(text: str) -> int:
    """A seed: an integer in [0, 2**64)."""
    expected = f"expected an integer in [0, 2**64), got {text!r}"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(expected) from None
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(expected)
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gpusim", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"gpusim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("run", help="simulate a scenario and write a zarr store")
    p.add_argument("config", type=Path, help="scenario YAML (e.g. configs/base.yaml)")
    p.add_argument("--paths", type=count, default=10_000, help="number of paths (default 10000)")
    p.add_argument("--seed", type=seed, default=0, help="random seed in [0, 2**64) (default 0)")
    p.add_argument("--out", type=Path, required=True, help="output store, e.g. runs/x.zarr")
    p.add_argument("--block-paths", type=count, default=None,
                   help=f"paths per block and per chunk (default {DEFAULT_BLOCK_PATHS:,} on "
                        f"the CPU; on a GPU {GPU_BLOCK_PATHS:,} for a cube, "
                        f"{GPU_SUMMARY_BLOCK_PATHS:,} for a summary); results do not depend "
                        "on it")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. market.price.initial=2.2 (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run of the same config, seed and mode")
    p.add_argument("--mode", default="cube", choices=["cube", "summary"],
                   help="cube: every path and month; summary: quantile sketches per month "
                        "plus exact default months and losses (default cube)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"],
                   help="gpu: the fused CUDA kernel; cpu: numpy; auto (default): the GPU "
                        "when CuPy and a device are present, else numpy")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    cluster = p.add_argument_group("cluster (dask.distributed; default: in-process)")
    cluster.add_argument("--workers", type=count, default=None, metavar="N",
                         help="start a local cluster of N worker processes")
    cluster.add_argument("--cuda-workers", action="store_true",
                         help="start dask-cuda's LocalCUDACluster: one worker per GPU")
    cluster.add_argument("--scheduler", default=None, metavar="ADDRESS",
                         help="use an existing cluster, e.g. tcp://10.0.0.5:8786")

    p = sub.add_parser("summary", help="print the headline quantiles of a store")
    p.add_argument("store", type=Path)

    p = sub.add_parser("validate", help="check a config and print it resolved")
    p.add_argument("config", type=Path)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--print", dest="show", action="store_true", help="print the resolved YAML")

    p = sub.add_parser("report", help="write an HTML report (figures and credit tables)")
    p.add_argument("store", type=Path, help="a store written by gpusim run")
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
    config = load_config(args.config, args.overrides)
    request = check_run(config, args.out, paths=args.paths, seed=args.seed,
                        block_paths=args.block_paths, overwrite=args.overwrite,
                        device=args.device, mode=args.mode, resume=args.resume,
                        source=config_source(args.config, args.overrides),
                        workers=args.workers, cuda_workers=args.cuda_workers,
                        scheduler=args.scheduler)
    with _progress(console, args.quiet) as progress:
        task = progress.add_task(f"{config.name}", total=args.paths)
        try:
            out = execute(request, on_block=lambda n: progress.advance(task, n))
        except KeyboardInterrupt:
            raise InterruptedRun("interrupted; the blocks written so far are kept: continue "
                                 "with the same command and --resume") from None
    if not args.quiet:
        console.print(f"wrote {out} ({args.paths} paths × {config.horizon_months} months)")
        ds = open_store(out)
        print_summary(ds, console)
        print_credit_summary(ds, console)


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


def print_summary(ds, console: Console) -> None:
    """The headline table: quantiles over paths at months 12, 36 and the last."""
    table = Table(title=f"{ds.attrs.get('scenario', '')}: {ds.sizes['path']} paths, "
                        f"seed {ds.attrs.get('seed')}")
    table.add_column(escape("variable [units]"), no_wrap=True)
    table.add_column("month", no_wrap=True)
    summary = headline(ds)
    quantiles = summary["quantile"].values
    for q in quantiles:
        table.add_column(f"p{q * 100:g}", justify="right")
    for name, values in summary.data_vars.items():
        for i, month in enumerate(values["month"].values):
            row = [format_value(v) for v in values.isel(month=i).values]
            label = str(month)[:7]
            first = [name, escape(f"[{values.attrs.get('units', '')}]")]
            table.add_row(first[i] if i < len(first) else "", label, *row)
    console.print(table)


def print_credit_summary(ds, console: Console) -> None:
    """Default probabilities by firm and losses by facility."""
    if "firm" not in ds.dims:
        return
    credit = credit_summary(ds)
    months = headline_months(ds)
    table = Table(title="cumulative default probability and LTV breaches")
    table.add_column("firm", no_wrap=True)
    for m in months:
        table.add_column(f"PD {str(ds.month.values[m])[:7]}", justify="right")
    table.add_column("P(LTV breach) max/month", justify="right")
    for firm in credit.firm.values:
        curve = credit.default_probability.sel(firm=firm)
        row = [f"{float(curve.isel(month=m)):.1%}" for m in months]
        breach = float(credit.ltv_breach_probability.sel(firm=firm).max())
        table.add_row(str(firm), *row, f"{breach:.1%}")
    console.print(table)
    table = Table(title="lender losses over the run [USD]")
    for column in ("facility", "firm", "expected loss", "VaR 99%", "ES 97.5%"):
        table.add_column(column, justify="left" if column in ("facility", "firm") else "right")
    for i, name in enumerate(credit.facility.values):
        table.add_row(str(name), str(ds.facility_firm.values[i]),
                      format_value(float(credit.expected_loss[i])),
                      format_value(float(credit.value_at_risk_99[i])),
                      format_value(float(credit.expected_shortfall_97_5[i])))
    console.print(table)


def cmd_summary(args: argparse.Namespace, console: Console) -> None:
    ds = open_store(args.store)
    print_summary(ds, console)
    print_credit_summary(ds, console)


def cmd_report(args: argparse.Namespace, console: Console) -> None:
    """Write the report of a store; refuses a non-empty --out unless --overwrite."""
    from gpusim.report import write_report  # matplotlib only loads for this command

    out = args.out
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} exists and is not a folder; choose a folder "
                         "for the report")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise InputError(f"--out {str(out)!r} is a non-empty folder; pass --overwrite to write "
                         "the report into it anyway, or choose an empty or new folder")
    index = write_report(open_store(args.store), out)
    console.print(f"wrote {index}", markup=False, highlight=False, soft_wrap=True)


def cmd_validate(args: argparse.Namespace, console: Console) -> None:
    config = load_config(args.config, args.overrides)
    if args.show:
        console.print(config_to_yaml(config), markup=False, highlight=False)
    console.print(f"{args.config}: valid ({config.name}, {config.horizon_months} months from "
                  f"{config.start})")


def cmd_schema(args: argparse.Namespace, console: Console) -> None:
    print(json.dumps(Config.model_json_schema(), indent=2, ensure_ascii=False))


def cmd_info(args: argparse.Namespace, console: Console) -> None:
    """Versions, devices, driver and CUDA versions, and whether the kernels compile."""
    import shutil

    import dask
    import numpy
    import xarray
    import zarr

    from gpusim.backends.cuda import compile_check
    from gpusim.backends.devices import cupy_or_none
    from gpusim.backends.host import host_compiler
    from gpusim.backends.toolchain import nvrtc_check

    if getattr(args, "kernels", None) is not None:
        info_kernels(args, console)
        return

    console.print(f"gpusim {__version__}; python {platform.python_version()} on "
                  f"{platform.machine()} ({platform.processor() or platform.system()})")
    console.print(f"numpy {numpy.__version__}, xarray {xarray.__version__}, zarr "
                  f"{zarr.__version__}, dask {dask.__version__}")
    console.print(f"host C++ compiler (kernel tests): {host_compiler() or 'none'}; "
                  f"nvcc: {shutil.which('nvcc') or 'none'}")
    cupy = cupy_or_none()
    if cupy is None:
        try:
            import cupy as cp  # noqa: F401
            console.print("cupy: installed, but no CUDA device is usable (CPU only)")
        except ImportError:
            console.print(escape("cupy: not installed (CPU only; pip install 'gpusim[cuda12]')"))
        console.print(f"kernels compile (NVRTC, no device): {nvrtc_check()}")
        return
    runtime = cupy.cuda.runtime
    console.print(f"cupy {cupy.__version__}; CUDA driver {runtime.driverGetVersion()}, "
                  f"runtime {runtime.runtimeGetVersion()}")
    for i in range(runtime.getDeviceCount()):
        props = runtime.getDeviceProperties(i)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        console.print(f"device {i}: {name}, {props['totalGlobalMem'] / 2**30:.0f} GiB, "
                      f"sm_{props['major']}{props['minor']}")
    console.print(f"kernels compile: {compile_check()}")


def info_kernels(args: argparse.Namespace, console: Console) -> None:
    """`gpusim info --kernels CONFIG [--json]`: the config's kernel variants (all four
    kernels, specialized to its shape) with ptxas's registers, stack and spill bytes (null
    without nvcc), the occupancy of 128-thread blocks on sm_90, and the NVRTC check."""
    from gpusim.backends.toolchain import nvrtc_check, resource_usage

    config = load_config(args.kernels)
    rows = resource_usage(config)
    report = {"config": str(args.kernels), "variants": rows,
              "nvrtc": nvrtc_check(config)}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for row in rows:
        console.print(f"{row['name']}: registers {row['registers']}, stack "
                      f"{row['stack_bytes']} B, spills {row['spill_bytes']} B, occupancy "
                      f"{row['occupancy']}", markup=False, highlight=False)
    console.print(f"NVRTC: {report['nvrtc']}", markup=False, highlight=False)


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


COMMANDS = {"run": cmd_run, "summary": cmd_summary, "report": cmd_report,
            "validate": cmd_validate, "schema": cmd_schema, "info": cmd_info,
            "bench": cmd_bench}


def main(argv: Sequence[str] | None = None) -> int:
    console = Console(stderr=False)
    errors = Console(stderr=True)
    try:
        args = build_parser().parse_args(argv)
        COMMANDS[args.command](args, console)
    except InputError as err:
        errors.print(f"gpusim: {err}", markup=False, highlight=False, soft_wrap=True)
        return EXIT_BAD_INPUT
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

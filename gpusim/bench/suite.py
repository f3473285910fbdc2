"""The benchmark suite: gpusim and its peers on the same model, paths and months.

`run_suite(suite, device, out)` measures, per device:

- CPU: gpusim's numpy engine (the reference), the plain-numpy peer (numpy's default
  Generator), JAX `jit` on the CPU (one row per PRNG implementation), and gpusim's full
  model (market + firms; gpusim only);
- GPU: gpusim's fused kernel in cube mode (kernel only, outputs left in device memory)
  and summary mode (kernel + sketches on the device), the numpy reference on CuPy arrays,
  JAX `jit` on the GPU, the same gpusim rows for the full model, the full model's cube
  copied to pinned host memory, the full model in float64, and the fused summary at
  several block sizes; plus device-to-device and device-to-host bandwidths.

Peers run the market alone (the config's firms dropped); full-model rows are gpusim's
only. Every run is timed cold (the first call in the process, with any compilation:
NVRTC for the kernel, CuPy's elementwise kernels, XLA for JAX) and warm (the best of
`repeats` calls after it), at the headline size and along two scaling curves (paths at a
fixed horizon, months at a fixed path count). Times are wall-clock seconds; throughput is
path-months per second. GPU runs wait for the device before the timer stops.

Each peer's last month is checked against gpusim's (mean and standard deviation of log
rental price and log token demand within 4 standard errors; a summary row's sketch
quantiles against the exact quantiles of the same paths, within the sketch's bound), and
the plain-numpy and JAX month steps, fed gpusim's own draws, must reproduce gpusim's
engine to rounding.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from gpusim.bench import gpu, jax_market, machine, peers
from gpusim.bench.peers import CHECKED
from gpusim.config import Config
from gpusim.errors import InputError
from gpusim.model.market import MarketParams, market_params

SUITE_NAMES = ("quick", "full")
DEVICES = ("auto", "cpu", "gpu")


@dataclass(frozen=True)
class Sizes:
    """What one device runs in a suite. Paths and months are counts; `block` is paths per
    block for every peer on the device; `repeats` warm runs follow each cold one."""

    paths: tuple[int, ...]  # the paths curve, at `months_at` months; its largest is the headline
    months: tuple[int, ...]  # the months curve, at `paths_at` paths
    months_at: int
    paths_at: int
    block: int
    repeats: int
    jax_impls: tuple[str, ...] = ("threefry2x32", "rbg")
    full_paths: int | None = None  # full-model rows' headline paths (default: the headline's)
    full_repeats: int | None = None  # their warm repeats (default: `repeats`)
    full_scales: bool = False  # whether full-model rows also run the scaling curves
    block_sweep: tuple[int, ...] = ()  # GPU: block sizes for the fused full-model summary
    host_paths: int = 0  # GPU: paths of the full-model cube copied to the host
    host_block: int = 1 << 18

    @property
    def headline(self) -> tuple[int, int]:
        """(paths, months) of the headline row: the largest point of the paths curve."""
        return max(self.paths), self.months_at

    def curve_points(self) -> list[tuple[int, int]]:
        """Every (paths, months) of both curves but the headline, smallest work first."""
        points = {(n, self.months_at) for n in self.paths} | {(self.paths_at, m)
                                                               for m in self.months}
        points.discard(self.headline)
        return sorted(points, key=lambda pm: (pm[0] * pm[1], pm))


SUITES: dict[str, dict[str, Sizes]] = {
    # ~1 minute on 2 CPU cores; seconds on a GPU
    "quick": {
        "cpu": Sizes(paths=(10_000, 30_000, 100_000), months=(12, 36, 84), months_at=84,
                     paths_at=30_000, block=16_384, repeats=2, full_paths=30_000,
                     full_repeats=1),
        "gpu": Sizes(paths=(10_000, 100_000, 1_000_000), months=(12, 36, 84), months_at=84,
                     paths_at=1_000_000, block=1 << 19, repeats=3, full_scales=True,
                     block_sweep=(16_384, 65_536, 262_144), host_paths=1 << 20),
    },
    # minutes: CPU to 10⁶ paths and 240 months, GPU to 10⁷ paths
    "full": {
        "cpu": Sizes(paths=(10_000, 100_000, 1_000_000), months=(12, 24, 60, 120, 240),
                     months_at=84, paths_at=100_000, block=16_384, repeats=3,
                     jax_impls=jax_market.IMPLS, full_repeats=1),
        "gpu": Sizes(paths=(10_000, 100_000, 1_000_000, 10_000_000),
                     months=(12, 24, 60, 120, 240), months_at=84, paths_at=1_000_000,
                     block=1 << 19, repeats=3, jax_impls=jax_market.IMPLS, full_scales=True,
                     block_sweep=(16_384, 65_536, 262_144, 1 << 19), host_paths=1 << 21),
    },
}

RunFn = Callable[[int, int], dict[str, Any]]
"""run(paths, months) → the last month of `CHECKED` (arrays, or lists of per-block arrays,
on the host or the device); returns once the work is finished."""


@dataclass
class Peer:
    """One row of the suite: a program, on a device, for a model, in a mode and dtype."""

    key: str
    label: str
    device: str  # "cpu" or "gpu"
    model: str  # "market" (firms dropped) or "full" (market + firms)
    mode: str  # what is produced, e.g. "cube in memory", "summary"
    dtype: str
    run: RunFn | None = field(default=None, repr=False)
    status: str = "ok"  # or why it did not run
    scales: bool = True
    paths: int | None = None  # headline paths, if not the device's headline
    block: int | None = None  # paths per block, if not the device's
    repeats: int | None = None
    compile_s: float = 0.0  # compilation done before the first run, added to its cold time
    notes: str = ""

    def describe(self) -> dict[str, Any]:
        row = {k: v for k, v in asdict(self).items() if k not in ("run", "compile_s")}
        return row | {"headline": None, "points": [], "distribution_check": None}


class Bench:
    """Configs, parameters and compiled programs shared by the rows of one run."""

    def __init__(self, config_path: str | None, seed: int, log: Callable[[str], None]) -> None:
        self.config_path, self.seed, self.log = config_path, seed, log
        self._cache: dict[tuple, Any] = {}
        self.block = 0  # paths per block of the row being run (GPU rows read it)
        raw, source = peers.raw_config(config_path)
        checkout = f"{peers.DEFAULT_CONFIG.parents[1]}{os.sep}"
        self.source = source.removeprefix(checkout)  # configs/base.yaml, not /home/…/configs/…
        self.firms = bool(raw.get("firms"))
        self.dtype = str(raw.get("dtype", Config.model_fields["dtype"].default))

    def setup(self, model: str, months: int, dtype: str) -> tuple[Config, MarketParams]:
        """(config, market params) of the market alone or the full model, at a horizon."""
        key = ("setup", model, months, dtype)
        if key not in self._cache:
            over = (f"dtype={dtype}",)
            config = (peers.load_market_config(self.config_path, months, over)[0]
                      if model == "market"
                      else peers.load_full_config(self.config_path, months, over))
            self._cache[key] = (config, market_params(config) if config else None)
        return self._cache[key]

    def cached(self, key: tuple, make: Callable[[], Any]) -> Any:
        """A per-run cache (compiled JAX functions, packed kernel inputs, simulators)."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]


# --- the rows -----------------------------------------------------------------------------

def cpu_peers(bench: Bench, sizes: Sizes, dtype: str) -> list[Peer]:
    """gpusim numpy (reference), plain numpy, JAX on the CPU, gpusim's full model."""
    block, seed = sizes.block, bench.seed

    def numpy_run(model: str, program: Callable[..., dict]) -> RunFn:
        def run(paths: int, months: int) -> dict[str, Any]:
            config, p = bench.setup(model, months, dtype)
            return program(config, p, paths, block, seed)
        return run

    rows = [
        Peer("gpusim_numpy", "gpusim numpy (reference)", "cpu", "market", "cube in memory",
             dtype, numpy_run("market", peers.run_gpusim_numpy),
             notes="gpusim.engine.simulate_block; Philox4x32-10 + Box–Muller draws"),
        Peer("plain_numpy", "plain numpy", "cpu", "market", "cube in memory", dtype,
             numpy_run("market", peers.run_plain),
             notes="gpusim.bench.peers.plain_block; np.random.default_rng (PCG64, ziggurat)"),
        *jax_peers(bench, sizes, "cpu", dtype),
    ]
    full = Peer("gpusim_numpy_full", "gpusim numpy, full model", "cpu", "full",
                "cube in memory", dtype, numpy_run("full", peers.run_gpusim_numpy),
                scales=sizes.full_scales, paths=sizes.full_paths,
                repeats=sizes.full_repeats, notes="market + firms; gpusim only")
    return [*rows, _needs_firms(bench, full)]


def _needs_firms(bench: Bench, peer: Peer) -> Peer:
    if bench.firms:
        return peer
    return replace(peer, run=None, status="the config has no firms")


def jax_peers(bench: Bench, sizes: Sizes, device: str, dtype: str) -> list[Peer]:
    """One JAX row per PRNG implementation; "not installed" (etc.) rows without JAX."""
    jax_device, reason = jax_market.jax_device(device)
    rows = []
    for impl in sizes.jax_impls:
        peer = Peer(f"jax_{device}_{impl}", f"JAX jit ({device.upper()}, {impl})", device,
                    "market", "cube in memory", dtype,
                    notes=f"jax.jit(lax.scan over months), jax.random {impl}")
        why = reason or _impl_missing(impl)
        if why:
            rows.append(replace(peer, status=why))
            continue
        rows.append(replace(peer, run=_jax_run(bench, jax_device, impl, dtype, sizes.block)))
    return rows


def _impl_missing(impl: str) -> str | None:
    jax, _ = jax_market.load_jax()
    try:
        jax.random.key(0, impl=impl)
    except (TypeError, ValueError):
        return f"PRNG {impl} not in JAX {jax.__version__}"
    return None


def _jax_run(bench: Bench, device: Any, impl: str, dtype: str, block: int) -> RunFn:
    def run(paths: int, months: int) -> dict[str, Any]:
        _, p = bench.setup("market", months, dtype)
        market = bench.cached(("jax", str(device), impl, months, dtype),
                              lambda: jax_market.JaxMarket(p, dtype, impl))
        return jax_market.run_jax(market, device, paths, block, bench.seed)
    return run


def gpu_peers(bench: Bench, sizes: Sizes, cupy: ModuleType | None, why: str, dtype: str
              ) -> list[Peer]:
    """The GPU rows; without CuPy and a device, the same rows with `why` as their status."""
    rows = _gpu_rows(bench, sizes, cupy, dtype)
    if cupy is None:
        rows = [replace(r, run=None, status=why) for r in rows]
    rows += jax_peers(bench, sizes, "gpu", dtype) if cupy is not None else [
        Peer(f"jax_gpu_{impl}", f"JAX jit (GPU, {impl})", "gpu", "market", "cube in memory",
             dtype, status=why) for impl in sizes.jax_impls]
    return rows


def _gpu_rows(bench: Bench, sizes: Sizes, cupy: ModuleType | None, dtype: str) -> list[Peer]:
    fused = "gpusim fused kernel"
    full = dict(scales=sizes.full_scales, paths=sizes.full_paths, repeats=sizes.full_repeats)
    rows = [
        Peer("fused_cube", f"{fused}, cube (kernel only)", "gpu", "market",
             "cube in device memory", dtype, _fused_cube(bench, cupy, "market", dtype)),
        Peer("fused_summary", f"{fused}, summary", "gpu", "market", "summary", dtype,
             _fused_summary(bench, cupy, "market", dtype)),
        Peer("numpy_cupy", "gpusim numpy on CuPy", "gpu", "market", "cube in device memory",
             dtype, _numpy_cupy(bench, cupy, "market", dtype)),
        Peer("fused_full_cube", f"{fused}, full model, cube (kernel only)", "gpu", "full",
             "cube in device memory", dtype, _fused_cube(bench, cupy, "full", dtype), **full),
        Peer("fused_full_summary", f"{fused}, full model, summary", "gpu", "full", "summary",
             dtype, _fused_summary(bench, cupy, "full", dtype), **full),
        Peer("fused_full_cube_host", f"{fused}, full model, cube to pinned host memory",
             "gpu", "full", "cube in pinned host memory", dtype,
             _fused_cube(bench, cupy, "full", dtype, to_host=True), scales=False,
             paths=sizes.host_paths or None, block=sizes.host_block),
        Peer("numpy_cupy_full", "gpusim numpy on CuPy, full model", "gpu", "full",
             "cube in device memory", dtype, _numpy_cupy(bench, cupy, "full", dtype),
             scales=False, paths=sizes.full_paths, repeats=1),
        Peer("fused_full_summary_f64", f"{fused}, full model, summary, float64", "gpu", "full",
             "summary", "float64", _fused_summary(bench, cupy, "full", "float64"),
             scales=False, paths=sizes.full_paths),
    ]
    sweep = [Peer(f"fused_full_summary_block_{b}", f"{fused}, full model, summary, "
                  f"blocks of {b:,}", "gpu", "full", "summary", dtype,
                  _fused_summary(bench, cupy, "full", dtype), scales=False, block=b,
                  notes="block-size sweep") for b in sizes.block_sweep]
    return [r if r.model == "market" else _needs_firms(bench, r) for r in rows + sweep]


def _gpu_run(bench: Bench, model: str, dtype: str,
             program: Callable[[Config, MarketParams, int, int], dict]) -> RunFn:
    def run(paths: int, months: int) -> dict[str, Any]:
        config, p = bench.setup(model, months, dtype)
        return program(config, p, paths, months)
    return run


def _fused_cube(bench: Bench, cupy: ModuleType | None, model: str, dtype: str,
                to_host: bool = False) -> RunFn:
    from gpusim.backends.packing import pack

    def program(config: Config, p: MarketParams, paths: int, months: int) -> dict:
        packed = bench.cached(("packed", model, months, dtype), lambda: pack(config))
        return gpu.fused_cube(cupy, config, packed, paths, bench.block, bench.seed, to_host)
    return _gpu_run(bench, model, dtype, program)


def _fused_summary(bench: Bench, cupy: ModuleType | None, model: str, dtype: str) -> RunFn:
    from gpusim.cube import block_simulator

    def program(config: Config, p: MarketParams, paths: int, months: int) -> dict:
        simulator = bench.cached(("simulator", model, months, dtype),
                                 lambda: block_simulator(config, "gpu"))
        return gpu.fused_summary(cupy, simulator, paths, bench.block, bench.seed)
    return _gpu_run(bench, model, dtype, program)


def _numpy_cupy(bench: Bench, cupy: ModuleType | None, model: str, dtype: str) -> RunFn:
    def program(config: Config, p: MarketParams, paths: int, months: int) -> dict:
        return gpu.numpy_on_cupy(cupy, config, p, paths, bench.block, bench.seed)
    return _gpu_run(bench, model, dtype, program)


# --- measuring -------------------------------------------------------------------------------

def host_last(result: dict[str, Any], paths: int) -> dict[str, np.ndarray]:
    """The last month of `CHECKED` as numpy arrays of `paths` values (blocks joined,
    padding cut); a summary run's sketches (`gpu.SKETCHES`) as they are."""
    if gpu.SKETCHES in result:
        return {gpu.SKETCHES: result[gpu.SKETCHES]}

    def to_numpy(x: Any) -> np.ndarray:
        return x.get() if hasattr(x, "get") and not isinstance(x, np.ndarray) else np.asarray(x)

    out = {}
    for name in CHECKED:
        values = result[name]
        joined = (np.concatenate([to_numpy(v) for v in values]) if isinstance(values, list)
                  else to_numpy(values))
        out[name] = joined[:paths]
    return out


def measure(run: RunFn, paths: int, months: int, repeats: int
            ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Cold run, then `repeats` warm runs: the point's times [s] and throughput
    [path-months/s], and the last run's last month (on the host)."""
    walls, cpus = [], []
    result: dict[str, Any] = {}
    for _ in range(1 + repeats):
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        result = run(paths, months)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    best = int(np.argmin(walls[1:])) + 1 if repeats else 0
    work = paths * months
    point = {"paths": paths, "months": months, "path_months": work, "cold_s": walls[0],
             "warm_s": walls[best], "times_s": walls,
             "path_months_per_s": work / walls[best],
             "ns_per_path_month": 1e9 * walls[best] / work,
             "cpu_over_wall": cpus[best] / walls[best]}
    return point, host_last(result, paths)


def run_peer(peer: Peer, sizes: Sizes, log: Callable[[str], None]
             ) -> tuple[dict[str, Any], dict[str, np.ndarray] | None]:
    """All points of one row; a failure is recorded in the row, not raised."""
    row = peer.describe()
    if peer.run is None:
        log(f"  {peer.label}: {peer.status}")
        return row, None
    head = (peer.paths or sizes.headline[0], sizes.months_at)
    repeats = sizes.repeats if peer.repeats is None else peer.repeats
    points = [head] + (sizes.curve_points() if peer.scales else [])
    last = None
    for i, (paths, months) in enumerate(points):
        try:
            point, got = measure(peer.run, paths, months, repeats)
        except Exception as err:  # noqa: BLE001 - one broken row must not lose the others
            why = f"failed: {type(err).__name__}: {err}"
            log(f"  {peer.label}, {paths:,} paths × {months} months: {why}")
            if i == 0:
                row["status"] = why
                break
            row.setdefault("failed_points", []).append(
                {"paths": paths, "months": months, "error": why})
            continue
        if i == 0:
            point["cold_s"] += peer.compile_s
            point["compile_s"] = peer.compile_s
            row["headline"], last = point, got
        row["points"].append(point)
        log(f"  {peer.label}: {paths:,} paths × {months} months: cold {point['cold_s']:.3g} s, "
            f"warm {point['warm_s']:.3g} s, {point['path_months_per_s']:.3g} path-months/s")
    row["points"].sort(key=lambda pt: (pt["path_months"], pt["paths"]))
    return row, last


# --- checks ---------------------------------------------------------------------------------

def check_distributions(rows: list[dict], lasts: dict[str, dict], reference: str) -> None:
    """Each row's last month against the reference row's (4 standard errors), in place."""
    ref = lasts.get(reference)
    if ref is None:
        return
    for row in rows:
        mine = lasts.get(row["key"])
        if mine is None or row["key"] == reference:
            continue
        if gpu.SKETCHES in mine:
            row["distribution_check"] = peers.sketch_check(ref, mine[gpu.SKETCHES])
        else:
            row["distribution_check"] = peers.distribution_check(
                ref, mine, labels=(reference, row["key"]))


def equation_checks(bench: Bench, sizes: Sizes, device: str, dtype: str) -> list[dict]:
    """Fed gpusim's draws, plain numpy (CPU) and the JAX step reproduce the engine."""
    months, n = sizes.months_at, min(4096, sizes.headline[0])
    config, p = bench.setup("market", months, dtype)
    checks = []
    if device == "cpu":
        checks.append({"peer": "plain_numpy"} | peers.equation_check(config, p, bench.seed, n))
    jax_device, reason = jax_market.jax_device(device)
    if jax_device is not None:
        checks.append({"peer": f"jax_{device}"} | jax_market.jax_equation_check(
            config, p, jax_device, bench.seed, n))
    else:
        checks.append({"peer": f"jax_{device}", "skipped": reason})
    return checks


# --- one device ------------------------------------------------------------------------------

def run_device(bench: Bench, peers_: list[Peer], sizes: Sizes, reference: str,
               cleanup: Callable[[], None] = lambda: None) -> list[dict]:
    """Run the rows of one device, then check their distributions against `reference`."""
    rows, lasts = [], {}
    for peer in peers_:
        bench.block = peer.block or sizes.block
        row, last = run_peer(peer, sizes, bench.log)
        rows.append(row)
        if last is not None:
            lasts[peer.key] = last
        cleanup()
    check_distributions(rows, lasts, reference)
    return rows


def cpu_part(bench: Bench, sizes: Sizes, dtype: str) -> dict[str, Any]:
    bench.log(f"CPU ({dtype}):")
    rows = run_device(bench, cpu_peers(bench, sizes, dtype), sizes, "gpusim_numpy")
    return {"rows": rows, "equation_checks": equation_checks(bench, sizes, "cpu", dtype)}


def gpu_part(bench: Bench, sizes: Sizes, cupy: ModuleType | None, why: str, dtype: str
             ) -> dict[str, Any]:
    """Bandwidths, kernel compile time and the GPU rows (or, without a GPU, why not)."""
    if cupy is None:
        return {"rows": [r.describe() | {"status": why}
                         for r in gpu_peers(bench, sizes, None, why, dtype)],
                "equation_checks": [], "bandwidth": None, "gpu": None, "skipped": why}
    bench.log(f"GPU ({dtype}):")
    info = machine.gpu_info(cupy)
    band = gpu.bandwidths(cupy)
    bench.log(f"  bandwidth: device copy {band['d2d_copy_bytes_per_s'] / 1e9:.0f} GB/s, "
              f"write {band['write_bytes_per_s'] / 1e9:.0f} GB/s, to pinned host "
              f"{band['d2h_pinned_bytes_per_s'] / 1e9:.1f} GB/s")
    with gpu.fresh_kernel_cache():
        compile_s = gpu.compile_seconds(cupy, dtype)
        rows = [replace(r, compile_s=compile_s, notes="cold includes the NVRTC compile of "
                        f"gpusim.cu ({compile_s:.1f} s)") if r.key == "fused_cube" else r
                for r in gpu_peers(bench, sizes, cupy, "", dtype)]
        done = run_device(bench, rows, sizes, "fused_cube", lambda: gpu.free_memory(cupy))
    return {"rows": done, "equation_checks": equation_checks(bench, sizes, "gpu", dtype),
            "bandwidth": band, "gpu": info, "kernel_compile_s": compile_s}


# --- the suite ---------------------------------------------------------------------------------

def resolve_devices(device: str) -> tuple[list[str], ModuleType | None, str]:
    """(devices to run, CuPy or None, why there is no GPU)."""
    from gpusim.backends.cuda import cupy_or_none

    if device not in DEVICES:
        raise InputError(f"device = {device!r}: expected one of {', '.join(DEVICES)}")
    cupy = cupy_or_none() if device != "cpu" else None
    why = "" if cupy is not None else _no_gpu_reason()
    if device == "gpu" and cupy is None:
        raise InputError(f"--device gpu: {why}; use --device cpu or auto")
    return {"cpu": ["cpu"], "gpu": ["gpu"], "auto": ["cpu", "gpu"]}[device], cupy, why


def _no_gpu_reason() -> str:
    try:
        import cupy  # noqa: F401
    except ImportError:
        return "no GPU: CuPy is not installed"
    return "no GPU: CuPy sees no CUDA device"


def run_suite(suite: str = "quick", device: str = "auto", out: str | Path | None = None,
              config: str | None = None, seed: int = 2026,
              sizes: dict[str, Sizes] | None = None, gpu_dtype: str = "float32",
              log: Callable[[str], None] | None = None, plots: bool = True) -> dict[str, Any]:
    """Run a suite and return its results; with `out`, write them as JSON, a markdown
    table (same name, .md) and plots (same stem, -paths.png and -months.png).

    `sizes` replaces the suite's per-device sizes ({"cpu": Sizes, "gpu": Sizes}), e.g.
    for tiny test runs. CPU rows run in the config's dtype, GPU rows in `gpu_dtype`.
    `log` receives progress lines (default: stderr).
    """
    from gpusim.bench import report

    if suite not in SUITES:
        raise InputError(f"suite = {suite!r}: expected one of {', '.join(SUITES)}")
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    devices, cupy, why = resolve_devices(device)
    chosen = {**SUITES[suite], **(sizes or {})}
    started = time.perf_counter()
    bench = Bench(config, seed, log)
    cpu_dtype = bench.dtype
    result: dict[str, Any] = {
        "benchmark": "gpusim bench", "suite": suite, "device_requested": device,
        "machine": machine.machine_info(), "libraries": machine.library_versions(),
        "settings": {"config": bench.source, "seed": seed, "cpu_dtype": cpu_dtype,
                     "gpu_dtype": gpu_dtype,
                     "sizes": {d: asdict(chosen[d]) for d in devices}},
    }
    if "cpu" in devices:
        result["cpu"] = cpu_part(bench, chosen["cpu"], cpu_dtype)
    if "gpu" in devices:
        result["gpu"] = gpu_part(bench, chosen["gpu"], cupy, why, gpu_dtype)
    result["machine"]["gpu"] = (result.get("gpu") or {}).get("gpu")
    result["fractions"] = fractions(result, bench)
    result["goals"] = goals(result)
    result["wall_time_s"] = time.perf_counter() - started
    if hasattr(os, "getloadavg"):
        result["machine"]["load_average_at_end"] = list(os.getloadavg())
    if out is not None:
        report.write(result, Path(out), plots=plots)
    return result


def all_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every row of a result, CPU first."""
    return [row for d in ("cpu", "gpu") for row in (result.get(d) or {}).get("rows", [])]


def find_row(result: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The row with this key, if it ran."""
    for r in all_rows(result):
        if r["key"] == key and r.get("headline"):
            return r
    return None


def rate(result: dict[str, Any], key: str) -> float | None:
    """Warm throughput [path-months/s] of a row at its headline point, if it ran."""
    r = find_row(result, key)
    return r["headline"]["path_months_per_s"] if r else None


def best_rate(result: dict[str, Any], prefix: str) -> tuple[str | None, float | None]:
    """(key, throughput) of the fastest row whose key starts with `prefix`."""
    found = [(k["key"], rate(result, k["key"])) for k in all_rows(result)
             if k["key"].startswith(prefix) and rate(result, k["key"])]
    return max(found, key=lambda kv: kv[1]) if found else (None, None)


def slope(points: list[dict[str, Any]], axis: str) -> float | None:
    """Log-log slope of warm time against `axis` ('paths' or 'months') over the larger
    half of the points (at least two): 1 means cost linear in work once fixed overheads
    no longer matter."""
    pts = sorted(points, key=lambda p: p[axis])
    pts = pts[max(0, len(pts) - max(2, (len(pts) + 1) // 2)):]
    if len(pts) < 2 or pts[0][axis] == pts[-1][axis]:
        return None
    x = np.log([p[axis] for p in pts])
    y = np.log([p["warm_s"] for p in pts])
    return float(np.polyfit(x, y, 1)[0])


# --- what the results say ------------------------------------------------------------------------

def fractions(result: dict[str, Any], bench: Bench) -> dict[str, Any]:
    """Fused kernel in cube mode against the bandwidth floors: bytes written by the kernel
    per second ÷ device bandwidths, and cube bytes copied to the host per second ÷ the
    device-to-host bandwidth."""
    from gpusim.backends.packing import pack

    band = (result.get("gpu") or {}).get("bandwidth")
    if not band:
        return {}
    out = {}
    for key in ("fused_cube", "fused_full_cube", "fused_full_cube_host"):
        r = find_row(result, key)
        if r is None:
            continue
        head = r["headline"]
        config, _ = bench.setup(r["model"], head["months"], r["dtype"])
        moved = gpu.cube_bytes(pack(config), head["paths"], r["dtype"])
        per_s = moved / head["warm_s"]
        if key.endswith("_host"):
            out[key] = {"bytes_to_host": moved, "bytes_per_s": per_s,
                        "of_d2h_pinned": per_s / band["d2h_pinned_bytes_per_s"]}
        else:
            out[key] = {"bytes_written": moved, "bytes_per_s": per_s,
                        "of_d2d_copy": per_s / band["d2d_copy_bytes_per_s"],
                        "of_write": per_s / band["write_bytes_per_s"]}
    return out


def _why(result: dict[str, Any], *keys: str) -> str:
    """Why rows gave no number: their statuses, or that their device was not run. A key
    ending in '_' stands for every row whose key starts with it."""
    device = "cpu" if keys[0] in ("gpusim_numpy", "plain_numpy") else "gpu"
    if device not in result:
        return f"no {device.upper()} rows in this run (--device {result['device_requested']})"
    reasons = []
    for key in keys:
        found = [r for r in all_rows(result)
                 if (r["key"].startswith(key) if key.endswith("_") else r["key"] == key)]
        reasons += [r["status"] for r in found if r["status"] != "ok"]
    return "; ".join(dict.fromkeys(reasons)) or "not measured"


def _goal(name: str, value: float | None, target: float, why: str, note: str = ""
          ) -> dict[str, Any]:
    met = None if value is None else bool(value >= target)
    return {"goal": name, "value": value, "target": target, "met": met,
            "note": note if value is not None else why}


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def goals(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The suite's goals with the measured value, or why there is none."""
    fs, fm = rate(result, "fused_full_summary"), rate(result, "fused_summary")
    jax_key, jax_rate = best_rate(result, "jax_gpu_")
    versus = f"against {jax_key}" if jax_key else ""
    return [
        _goal("CPU: gpusim numpy ÷ plain numpy, market [×]",
              _ratio(rate(result, "gpusim_numpy"), rate(result, "plain_numpy")), 0.5,
              _why(result, "gpusim_numpy", "plain_numpy")),
        _goal("GPU: fused kernel, full model, float32 summary [path-months/s]", fs, 1e9,
              _why(result, "fused_full_summary")),
        _goal("GPU: fused summary ÷ best JAX jit on the GPU, market [×]",
              _ratio(fm, jax_rate), 10, _why(result, "fused_summary", "jax_gpu_"), versus),
        _goal("GPU: fused full-model summary ÷ best JAX jit (market only) [×]",
              _ratio(fs, jax_rate), 10, _why(result, "fused_full_summary", "jax_gpu_"),
              versus + "; the fused side also runs the firms"),
        _goal("GPU: fused summary ÷ numpy on CuPy, market [×]",
              _ratio(fm, rate(result, "numpy_cupy")), 20,
              _why(result, "fused_summary", "numpy_cupy")),
        _goal("GPU: fused summary ÷ numpy on CuPy, full model [×]",
              _ratio(fs, rate(result, "numpy_cupy_full")), 20,
              _why(result, "fused_full_summary", "numpy_cupy_full")),
    ]

"""The suite's rows: what each device runs (`Sizes`, `SUITES`), and one `Peer` per program,
on a device, for a model, in a mode and dtype, with the function that runs it. The rows
share a `Bench`: the configs, parameters and compiled programs of one suite run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from types import ModuleType
from typing import Any

from gpusim.backends.devices import select_backend
from gpusim.backends.packing import pack
from gpusim.backends.reference import NumpyBackend
from gpusim.bench import cpu, gpu, jax_market, peers
from gpusim.config import Config
from gpusim.model.market import MarketParams, market_params

DEVICES = ("auto", "cpu", "gpu")
DTYPES = ("float64", "float32")


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
             notes="gpusim.backends.reference.simulate_block; Philox4x32-10 + Box–Muller draws"),
        Peer("plain_numpy", "plain numpy", "cpu", "market", "cube in memory", dtype,
             numpy_run("market", peers.run_plain),
             notes="gpusim.bench.peers.plain_block; np.random.default_rng (PCG64, ziggurat)"),
        *jax_peers(bench, sizes, "cpu", dtype),
    ]
    full = dict(scales=sizes.full_scales, paths=sizes.full_paths, repeats=sizes.full_repeats)
    rows += [_needs_firms(bench, r) for r in (
        Peer("gpusim_numpy_full", "gpusim numpy, full model", "cpu", "full",
             "cube in memory", dtype, numpy_run("full", peers.run_gpusim_numpy),
             notes="market + firms; gpusim only", **full),
        Peer("gpusim_numpy_full_summary", "gpusim numpy, full model, summary", "cpu", "full",
             "summary", dtype, _backend_run(bench, "full", dtype, "summary", NumpyBackend,
                                            block), notes="NumpyBackend.launch_summary",
             **full))]
    return rows + native_peers(bench, sizes, dtype)


def native_peers(bench: Bench, sizes: Sizes, dtype: str) -> list[Peer]:
    """gpusim's native CPU backend on one thread and on every usable core, market and full
    model, cube and summary, in `dtype`; the all-core rows also in the other dtype."""
    rows = []
    for dt in (dtype, *(d for d in DTYPES if d != dtype)):
        for model in ("market", "full"):
            for mode in ("cube", "summary"):
                for threads in ((1, 0) if dt == dtype else (0,)):
                    rows.append(_native_peer(bench, sizes, model, mode, dt, threads, dtype))
    why = cpu.native_reason()
    return [replace(r, run=None, status=f"no native build: {why}") if why else r
            for r in rows]


def _native_peer(bench: Bench, sizes: Sizes, model: str, mode: str, dtype: str,
                 threads: int, main_dtype: str) -> Peer:
    team = "1t" if threads == 1 else "mt"
    key = f"native_{model}_{mode}_{team}" + ("" if dtype == main_dtype else f"_{dtype}")
    label = (f"gpusim native CPU, {'1 thread' if threads == 1 else 'all cores'}, "
             f"{'full model' if model == 'full' else 'market'}, {mode}"
             + ("" if dtype == main_dtype else f", {dtype}"))
    make = lambda config: cpu.native_backend(config, threads or None)  # noqa: E731
    extra = {} if model == "market" else dict(paths=sizes.full_paths,
                                              repeats=sizes.full_repeats)
    peer = Peer(key, label, "cpu", model, "cube in memory" if mode == "cube" else "summary",
                dtype, _backend_run(bench, model, dtype, mode, make, sizes.block),
                scales=(model, mode, threads, dtype) == ("market", "cube", 0, main_dtype),
                notes="kernels/native.cpp, OpenMP over paths", **extra)
    return peer if model == "market" else _needs_firms(bench, peer)


def _backend_run(bench: Bench, model: str, dtype: str, mode: str,
                 make: Callable[[Config], Any], block: int) -> RunFn:
    """Run a backend made by `make` for the model's config, in cube or summary mode."""
    program = cpu.cube_run if mode == "cube" else cpu.summary_run

    def run(paths: int, months: int) -> dict[str, Any]:
        config, _ = bench.setup(model, months, dtype)
        backend = bench.cached(("cpu-backend", make, model, months, dtype),
                               lambda: make(config))
        return program(backend, paths, block, bench.seed)
    return run


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
    def program(config: Config, p: MarketParams, paths: int, months: int) -> dict:
        packed = bench.cached(("packed", model, months, dtype), lambda: pack(config))
        return gpu.fused_cube(cupy, config, packed, paths, bench.block, bench.seed, to_host)
    return _gpu_run(bench, model, dtype, program)


def _fused_summary(bench: Bench, cupy: ModuleType | None, model: str, dtype: str) -> RunFn:
    def program(config: Config, p: MarketParams, paths: int, months: int) -> dict:
        backend = bench.cached(("backend", model, months, dtype),
                               lambda: select_backend(config, "gpu"))
        return gpu.fused_summary(cupy, backend, paths, bench.block, bench.seed)
    return _gpu_run(bench, model, dtype, program)


def _numpy_cupy(bench: Bench, cupy: ModuleType | None, model: str, dtype: str) -> RunFn:
    def program(config: Config, p: MarketParams, paths: int, months: int) -> dict:
        return gpu.numpy_on_cupy(cupy, config, p, paths, bench.block, bench.seed)
    return _gpu_run(bench, model, dtype, program)

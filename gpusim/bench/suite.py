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
from dataclasses import asdict, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from gpusim.backends.devices import cupy_or_none
from gpusim.bench import gpu, jax_market, machine, peers, report
from gpusim.bench.peers import CHECKED
from gpusim.bench.results import fractions, goals
from gpusim.bench.rows import (
    DEVICES,
    SUITES,
    Bench,
    Peer,
    RunFn,
    Sizes,
    cpu_peers,
    gpu_peers,
)
from gpusim.errors import InputError

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

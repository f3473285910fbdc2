"""Reading a suite's results: its rows, throughputs and scaling slopes, the kernel's
fractions of the bandwidth floors, and the goals with their measured values."""

from __future__ import annotations

from typing import Any

import numpy as np

from gpusim.backends.packing import pack
from gpusim.bench import gpu
from gpusim.bench.rows import Bench

CPU_KEYS = ("gpusim_numpy", "plain_numpy", "native_", "jax_cpu_")
"""Key prefixes of the CPU rows."""


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
    device = "cpu" if keys[0].startswith(CPU_KEYS) else "gpu"
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
              _ratio(rate(result, "gpusim_numpy"), rate(result, "plain_numpy")), 0.6,
              _why(result, "gpusim_numpy", "plain_numpy")),
        _goal("CPU: native (all cores) ÷ plain numpy, market cube [×]",
              _ratio(rate(result, "native_market_cube_mt"), rate(result, "plain_numpy")), 1.5,
              _why(result, "native_market_cube_mt", "plain_numpy")),
        _goal("CPU: native (all cores) ÷ gpusim numpy, full model summary [×]",
              _ratio(rate(result, "native_full_summary_mt"),
                     rate(result, "gpusim_numpy_full_summary")), 3,
              _why(result, "native_full_summary_mt", "gpusim_numpy_full_summary")),
        _goal("CPU: native (1 thread) ÷ gpusim numpy, full model summary [×]",
              _ratio(rate(result, "native_full_summary_1t"),
                     rate(result, "gpusim_numpy_full_summary")), 1,
              _why(result, "native_full_summary_1t", "gpusim_numpy_full_summary"),
              "one core against numpy's one core"),
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

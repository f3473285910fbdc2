"""The suite's results as a console table, JSON, a markdown page and scaling plots."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from gpusim.bench.results import all_rows, slope

HEADERS = ("device", "row", "model", "mode", "dtype", "paths × months", "cold [s]",
           "warm [s]", "path-months/s", "ns/path-month", "CPU/wall", "distribution")
CONSOLE = (0, 1, 4, 5, 6, 7, 8, 9, 10, 11)
"""The columns `gpusim bench` prints (model and mode are in the row's label)."""


# --- formatting ---------------------------------------------------------------------------------

def _num(x: float | None, digits: int = 3) -> str:
    """A number for a table: `digits` significant figures, thousands separated from 100
    to 10⁷, exponent form beyond; '—' for None."""
    if x is None or not math.isfinite(x):
        return "—"
    if abs(x) >= 1e7:
        mantissa, exponent = f"{x:.{digits}g}".split("e")
        return f"{mantissa}e{int(exponent)}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _dist(row: dict[str, Any], reference: str) -> str:
    check = row.get("distribution_check")
    if row["key"] == reference and row.get("headline"):
        return "reference"
    if not check:
        return "—"
    if check.get("kind") == "sketch":
        worst = max(v["max_rel_err"] for v in check["variables"].values())
        return f"{'ok' if check['pass'] else 'FAIL'} (sketch, max rel err {worst:.2g})"
    worst = max(max(abs(v["z_mean"]), abs(v["z_std"])) for v in check["variables"].values())
    return f"{'ok' if check['pass'] else 'FAIL'} (max |z| {worst:.1f})"


def row_cells(row: dict[str, Any], reference: str) -> list[str]:
    """One table row: numbers at the headline point, or the reason it did not run."""
    head = row.get("headline")
    first = [row["device"], row["label"], row["model"], row["mode"], row["dtype"]]
    if not head:
        return [*first, row["status"], *[""] * (len(HEADERS) - 6)]
    return [*first, f"{head['paths']:,} × {head['months']}", _num(head["cold_s"]),
            _num(head["warm_s"]), _num(head["path_months_per_s"]),
            _num(head["ns_per_path_month"]), f"{head['cpu_over_wall']:.2f}",
            _dist(row, reference)]


REFERENCE = {"cpu": "gpusim_numpy", "gpu": "fused_cube"}


def headline_rows(result: dict[str, Any]) -> list[list[str]]:
    return [row_cells(r, REFERENCE[r["device"]]) for r in all_rows(result)]


def text_table(headers: tuple[str, ...] | list[str], rows: list[list[str]]) -> str:
    """A fixed-width table for the console."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def md_table(headers: tuple[str, ...] | list[str], rows: list[list[str]]) -> str:
    def cells(values: Any) -> str:
        return "| " + " | ".join(str(v).replace("|", "\\|") for v in values) + " |"

    return "\n".join([cells(headers), cells(["---"] * len(headers)), *map(cells, rows)])


def goal_rows(result: dict[str, Any]) -> list[list[str]]:
    met = {True: "yes", False: "**no**", None: "not measured"}
    return [[g["goal"], _num(g["value"]), f"≥ {_num(g['target'])}", met[g["met"]], g["note"]]
            for g in result["goals"]]


def console_text(result: dict[str, Any]) -> str:
    """What `gpusim bench` prints: the headline table and the goals."""
    m = result["machine"]
    gpu = m.get("gpu")
    lines = [f"gpusim bench, {result['suite']} suite, {m['date']}",
             f"machine: {m['cpu']} ({m['cpus_usable']} CPUs usable), host {m['hostname']}"
             + (f"; GPU {gpu['name']}, driver {gpu['nvidia_driver']}" if gpu else ""),
             "", text_table([HEADERS[i] for i in CONSOLE],
                            [[r[i] for i in CONSOLE] for r in headline_rows(result)]), "",
             text_table(("goal", "value", "target", "met", "note"), goal_rows(result))]
    for key, f in result.get("fractions", {}).items():
        lines.append(f"{key}: " + ", ".join(f"{k} {v:.2f}" for k, v in f.items()
                                            if k.startswith("of_")))
    return "\n".join(lines)


# --- markdown ------------------------------------------------------------------------------------

def _machine_md(result: dict[str, Any]) -> list[str]:
    m, s = result["machine"], result["settings"]
    gpu = m.get("gpu")
    load = " → ".join(f"{loads[0]:.1f}" if loads else "?" for loads in (
        m.get("load_average_at_start"), m.get("load_average_at_end")))
    lines = [
        f"- host `{m['hostname']}`: {m['cpu']}, {m['cpus_usable']} CPUs usable; {m['platform']}",
        f"- python {m['python']}, numpy {m['numpy']} ({m['blas']}), gpusim {m['gpusim']}; "
        f"1-minute load average {load}",
        "- libraries: " + ", ".join(f"{k} {v}" for k, v in result["libraries"].items()),
        f"- config: {s['config']}; seed {s['seed']}; CPU rows in {s['cpu_dtype']}, GPU rows "
        f"in {s['gpu_dtype']} (unless a row says otherwise)",
    ]
    if gpu:
        lines.append(
            f"- GPU: {gpu['name']} ({gpu['memory_GiB']:.0f} GiB, {gpu['multiprocessors']} SMs, "
            f"compute {gpu['compute_capability']}), NVIDIA driver {gpu['nvidia_driver']}, CUDA "
            f"driver {gpu['cuda_driver']}, runtime {gpu['cuda_runtime']}, CuPy {gpu['cupy']}")
    else:
        why = (result.get("gpu") or {}).get("skipped", "not requested")
        lines.append(f"- GPU: none ({why})")
    return lines


def _sizes_md(result: dict[str, Any]) -> list[str]:
    lines = []
    for device, sz in result["settings"]["sizes"].items():
        curve = ", ".join(f"{n:,}" for n in sz["paths"])
        lines.append(f"- {device.upper()}: headline {max(sz['paths']):,} paths × "
                     f"{sz['months_at']} months; paths curve {curve}"
                     f" at {sz['months_at']} months; months curve "
                     f"{', '.join(map(str, sz['months']))} at {sz['paths_at']:,} paths; blocks of "
                     f"{sz['block']:,} paths; cold run + best of {sz['repeats']} warm runs")
    return lines


def _curve(row: dict[str, Any], axis: str, sizes: dict[str, Any]) -> list[dict[str, Any]]:
    """A row's points along one curve: paths at months_at, or months at paths_at."""
    other, at = ("months", sizes["months_at"]) if axis == "paths" else ("paths", sizes["paths_at"])
    return sorted((p for p in row["points"] if p[other] == at), key=lambda p: p[axis])


def scaling_md(result: dict[str, Any], device: str, axis: str) -> str:
    sizes = result["settings"]["sizes"][device]
    values = sorted(set(sizes[axis] if axis == "paths" else sizes["months"]))
    headers = ["row", *[f"{v:,}" for v in values], "slope"]
    rows = []
    for r in (result.get(device) or {}).get("rows", []):
        pts = _curve(r, axis, sizes)
        if len(pts) < 2:
            continue
        by = {p[axis]: p for p in pts}
        rows.append([r["label"], *[_num(by[v]["path_months_per_s"]) if v in by else "—"
                                   for v in values], _num(slope(pts, axis), 2)])
    at = (f"at {sizes['months_at']} months" if axis == "paths"
          else f"at {sizes['paths_at']:,} paths")
    title = (f"{device.upper()}, warm path-months/s by {axis} {at} (slope: log-log slope of "
             f"warm time against {axis} over the larger half of the points)")
    return f"{title}\n\n{md_table(headers, rows)}" if rows else ""


def _checks_md(result: dict[str, Any]) -> list[str]:
    lines = []
    for device in ("cpu", "gpu"):
        for c in (result.get(device) or {}).get("equation_checks", []):
            if "skipped" in c:
                lines.append(f"- {c['peer']}: skipped ({c['skipped']})")
                continue
            worst = max(c["max_rel_err"].values())
            lines.append(f"- {c['peer']} fed gpusim's draws, {c['paths']:,} paths: max relative "
                         f"difference {worst:.1e} (tolerance {c['tol']:.0e}) "
                         f"{'ok' if c['pass'] else 'FAIL'}")
    return lines


def _fractions_md(result: dict[str, Any]) -> list[str]:
    band = (result.get("gpu") or {}).get("bandwidth")
    if not band:
        return ["No GPU in this run: no bandwidths."]
    lines = [f"- device-to-device copy {band['d2d_copy_bytes_per_s'] / 1e9:,.0f} GB/s (read + "
             f"written), write-only fill {band['write_bytes_per_s'] / 1e9:,.0f} GB/s, device to "
             f"pinned host {band['d2h_pinned_bytes_per_s'] / 1e9:,.1f} GB/s "
             f"({band['bytes'] / 2**30:.0f} GiB arrays)"]
    for key, f in result["fractions"].items():
        if "of_d2h_pinned" in f:
            lines.append(f"- {key}: {f['bytes_per_s'] / 1e9:,.1f} GB/s of cube to pinned host "
                         f"memory = {f['of_d2h_pinned']:.0%} of device-to-host")
        else:
            lines.append(f"- {key}: kernel writes {f['bytes_per_s'] / 1e9:,.0f} GB/s = "
                         f"{f['of_d2d_copy']:.0%} of device copy bandwidth, "
                         f"{f['of_write']:.0%} of write-only bandwidth")
    return lines


def markdown(result: dict[str, Any], plots: list[Path]) -> str:
    m = result["machine"]
    parts = [f"# gpusim bench: {result['suite']} suite, {m['date']}", "",
             *_machine_md(result), *_sizes_md(result), "",
             f"Suite wall time {result['wall_time_s']:.0f} s. How to read this: "
             "benchmarks/README.md, section `gpusim bench`.", "",
             "## Headline (warm = best of the warm runs; cold includes compilation)", "",
             md_table(HEADERS, headline_rows(result)), "", "## Goals", "",
             md_table(("goal", "value", "target", "met", "note"), goal_rows(result)), "",
             "## Bandwidth floors (GPU)", "", *_fractions_md(result), "",
             "## Checks", "", *_checks_md(result), "", "## Scaling", ""]
    for device in ("cpu", "gpu"):
        if device in result["settings"]["sizes"]:
            parts += [t + "\n" for axis in ("paths", "months")
                      if (t := scaling_md(result, device, axis))]
    parts += [f"![{p.stem}]({p.name})" for p in plots]
    return "\n".join(parts) + "\n"


# --- plots --------------------------------------------------------------------------------

def plot_scaling(result: dict[str, Any], axis: str, path: Path) -> Path | None:
    """Warm time and throughput against paths (or months), one line per row, log-log,
    with a dashed line of slope 1 through each row's largest point. Figure API, Agg."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator

    fig = Figure(figsize=(12, 4.8), layout="constrained")
    FigureCanvasAgg(fig)  # Agg, whatever pyplot's backend is; pyplot is never imported
    ax_t, ax_r = fig.subplots(1, 2)
    drawn, xs, rates = 0, set(), []
    for device in ("cpu", "gpu"):
        sizes = result["settings"]["sizes"].get(device)
        for r in (result.get(device) or {}).get("rows", []) if sizes else []:
            pts = _curve(r, axis, sizes)
            if len(pts) < 2:
                continue
            x = [p[axis] for p in pts]
            style = "-" if device == "cpu" else "--"
            line, = ax_t.plot(x, [p["warm_s"] for p in pts], style, marker="o",
                              label=f"{r['label']}")
            ax_t.plot(x, [pts[-1]["warm_s"] * v / x[-1] for v in x], ":",
                      color=line.get_color(), linewidth=0.8)
            ax_r.plot(x, [p["path_months_per_s"] for p in pts], style, marker="o",
                      color=line.get_color())
            drawn += 1
            xs.update(x)
            rates += [p["path_months_per_s"] for p in pts]
    if not drawn:
        return None
    for ax, label in ((ax_t, "warm time [s]"), (ax_r, "path-months per second")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sorted(xs), [_num(v) for v in sorted(xs)])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel(axis)
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    ax_r.set_ylim(min(rates) / 3, max(rates) * 3)  # at least a decade: noise looks like noise
    ax_t.set_title(f"time against {axis} (dotted: ∝ {axis})")
    ax_r.set_title("throughput (flat: cost linear in work)")
    ax_t.legend(fontsize=7)
    fig.suptitle(f"gpusim bench, {result['suite']} suite: scaling in {axis} "
                 "(solid: CPU, dashed: GPU)")
    fig.savefig(path, dpi=110)
    return path


def write(result: dict[str, Any], out: Path, plots: bool = True) -> dict[str, Path]:
    """JSON at `out`, markdown next to it (.md) and plots (<stem>-paths.png, -months.png)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    written = {"json": out, "markdown": out.with_suffix(".md")}
    images = []
    if plots:
        for axis in ("paths", "months"):
            made = plot_scaling(result, axis, out.with_name(f"{out.stem}-{axis}.png"))
            if made:
                images.append(made)
                written[f"plot_{axis}"] = made
    result["files"] = {k: v.name for k, v in written.items()}
    out.write_text(json.dumps(result, indent=2, default=_jsonable) + "\n")
    written["markdown"].write_text(markdown(result, images))
    return written


def _jsonable(x: Any) -> Any:
    if hasattr(x, "item"):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serializable: {type(x).__name__}")

"""What goes into a kernel launch and what comes out, defined once for both builds of the
kernel (CUDA through CuPy, and the host build through ctypes).

`cube_arguments` and `summary_arguments` give the argument lists of kernels/gpusim.cu's
kernels and of kernels/host.cpp's entry points, which are declared with the same
parameter-list macros of kernels/engine.cuh; the order and the C types are read from
there, and the scalars passed as numpy scalars of those types, so CuPy passes them as
declared and the host build converts them by dtype. The output
buffers are laid out (variable, month, [entity,] path), as kernels/engine.cuh writes
them, and `unpack`/`unpack_summary` name their rows by the kernel's output enums.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import numpy as np

from gpusim import sketch
from gpusim.backends import header
from gpusim.backends.packing import Packed
from gpusim.outputs import BY_NAME, FLAGS, PER_PATH, sketch_name

OUTPUT_ENUMS = (("market", "MarketOutput", "MO_"), ("firm", "FirmOutput", "FO_"),
                ("facility", "FacilityOutput", "AO_"))
"""(raw buffer, enum, prefix) of each monthly output group of the kernel."""
FLOW_ENUM = ("Flow", "FL_")
SUMMARY_COUNTS = ("market", "firm", "facility", "bust", "ltv_breach", "nonfinite")
"""The summary kernel's count buffers."""
INPUT_ARRAYS = ("monthly", "firm_table", "contract_table", "facility_table", "capex", "draws")
"""The parameter names of `Packed.arrays()`, in its order: the inputs the kernel reads
through pointers. The market scalars (`mp`) go by value (`STRUCTS`)."""
NULL = np.uint64(0)
"""A null pointer argument (no cash-flow buffer)."""


SCALARS = {"int": np.int32, "long long": np.int64, "u64": np.uint64, "double": np.float64}
"""The numpy scalar type that passes each C scalar type of the kernels' parameters."""
STRUCTS = {"MarketScalars": ("MarketParam", "MP_")}
"""The kernels' by-value struct parameters (params.cuh): C type → the enum that lays out
its one member, `double v[<prefix>COUNT]`."""


def struct_dtype(ctype: str) -> np.dtype:
    """The numpy structured dtype of by-value struct `ctype`: one field "v" of the enum's
    count of doubles, the C struct's layout."""
    count = header.count(*STRUCTS[ctype])
    return np.dtype({"names": ["v"], "formats": [(np.float64, (count,))]})


def struct_argument(ctype: str, values: np.ndarray) -> np.ndarray:
    """`values` (host doubles) as struct `ctype` passed by value: a one-element structured
    host array, which CuPy passes as the struct itself (and `c_argument` likewise).
    Raises ValueError if the count does not match the struct's."""
    dtype = struct_dtype(ctype)
    flat = np.ascontiguousarray(values, dtype=np.float64).ravel()
    if flat.size != dtype["v"].shape[0]:
        raise ValueError(f"{ctype} holds {dtype['v'].shape[0]} doubles, not {flat.size}")
    return flat.view(dtype)


def arguments(macro: str, values: dict[str, Any]) -> tuple[Any, ...]:
    """The arguments of a kernel declared with engine.cuh's parameter-list `macro`, in the
    declaration's order, from `values` by parameter name: arrays as given (None: a null
    pointer), scalars as numpy scalars of their C type. The header is the one definition
    of the order and the types; a name missing or left over is an error."""
    parameters = header.parameters(macro)
    names = [name for name, _, _ in parameters]
    if set(names) != set(values):
        raise KeyError(f"{macro}: arguments {sorted(set(values) - set(names))} are not "
                       f"parameters; parameters {sorted(set(names) - set(values))} are missing")
    out = []
    for name, ctype, pointer in parameters:
        value = values[name]
        if pointer:
            out.append(NULL if value is None else value)
        elif ctype in STRUCTS:
            out.append(struct_argument(ctype, value))
        else:
            out.append(SCALARS[ctype](value))
    return tuple(out)


C_TYPES = {np.dtype(np.int32): ctypes.c_int, np.dtype(np.int64): ctypes.c_longlong,
           np.dtype(np.uint64): ctypes.c_uint64, np.dtype(np.float64): ctypes.c_double}
"""The ctypes type of each numpy scalar type that kernel arguments use."""


def c_argument(value: Any) -> Any:
    """A kernel argument as ctypes passes it to a host build (the tests' host library or
    the native extension): an array's data pointer, or a numpy scalar as its C type.
    Raises TypeError for anything else (a Python int's C type is a guess)."""
    if isinstance(value, np.ndarray) and value.dtype.names == ("v",) and value.size == 1:
        return _c_struct(value)
    if isinstance(value, np.ndarray):
        if not value.flags.c_contiguous:
            raise TypeError("kernel arrays must be C-contiguous")
        return value.ctypes.data_as(ctypes.c_void_p)
    if isinstance(value, np.generic) and value.dtype in C_TYPES:
        return C_TYPES[value.dtype](value.item())
    raise TypeError(f"kernel scalars must be numpy scalars of {sorted(map(str, C_TYPES))}: "
                    f"{value!r}")


def _c_struct(value: np.ndarray) -> ctypes.Structure:
    """A `struct_argument` as the ctypes structure that passes it by value."""
    count = value.dtype["v"].shape[0]
    struct = type("ByValue", (ctypes.Structure,), {"_fields_": [("v", ctypes.c_double * count)]})
    return struct.from_buffer_copy(value.tobytes())


def input_values(inputs: Sequence[Any], packed: Packed, seed: int, start: int, stop: int
                 ) -> dict[str, Any]:
    """The kernels' common inputs by parameter name (GPUSIM_INPUT_PARAMS): `inputs` are
    `packed.arrays()` where the kernel can read them (device or host); the market scalars
    go by value from the host."""
    n_firms, n_contracts, n_facilities = packed.counts
    return dict(zip(INPUT_ARRAYS, inputs, strict=True)) | {"mp": packed.market} | {
        "n_firms": n_firms, "n_contracts": n_contracts, "n_facilities": n_facilities,
        "months": packed.months, "seed": seed, "path0": start, "n": stop - start}


def cube_arguments(inputs: Sequence[Any], packed: Packed, seed: int, start: int, stop: int,
                   out: dict[str, Any]) -> tuple[Any, ...]:
    """A cube kernel's arguments, writing into `out` (the buffers of `cube_buffers`; no
    "flows" buffer: no cash-flow terms)."""
    return arguments("GPUSIM_CUBE_PARAMS", input_values(inputs, packed, seed, start, stop)
                     | {"flows": None} | out)


def summary_arguments(inputs: Sequence[Any], packed: Packed, seed: int, start: int, stop: int,
                      out: dict[str, Any]) -> tuple[Any, ...]:
    """A summary kernel's arguments, counting into `out` (the buffers of
    `summary_buffers`), then gpusim.sketch's bucket layout (kernels/sketch.cuh)."""
    return arguments("GPUSIM_SUMMARY_PARAMS", input_values(inputs, packed, seed, start, stop)
                     | out | sketch_layout())


def sketch_layout() -> dict[str, Any]:
    """kernels/sketch.cuh's SketchLayout from gpusim.sketch's constants, by name."""
    return {"min_magnitude": sketch.MIN_MAGNITUDE, "log_gamma": sketch.LOG_GAMMA,
            "key_min": sketch.KEY_MIN, "key_max": sketch.KEY_MAX, "buckets": sketch.BUCKETS}


def kernel_name(mode: str, dtype: Any) -> str:
    """The kernel of `mode` ("cube" or "summary") for float dtype `dtype`."""
    return f"simulate_{mode}_" + ("f64" if np.dtype(dtype) == np.float64 else "f32")


def cube_buffers(packed: Packed, n: int, dtype: Any, record_flows: bool = False
                 ) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """(shape, dtype) of a cube kernel's output buffers for a block of n paths."""
    real = np.dtype(dtype)
    months = packed.months
    n_firms, _, n_facilities = packed.counts
    shapes = {
        "market": (header.count("MarketOutput", "MO_"), months, n),
        "firm": (header.count("FirmOutput", "FO_"), months, n_firms, n),
        "facility": (header.count("FacilityOutput", "AO_"), months, n_facilities, n),
        "default_month": (n_firms, n),
        "loss_total": (n_facilities, n),
        "exposure_at_default": (n_facilities, n),
    }
    if record_flows:
        shapes["flows"] = (header.count(*FLOW_ENUM), months, n_firms, n)
    return {key: (shape, np.dtype(np.int32) if key == "default_month" else real)
            for key, shape in shapes.items()}


def summary_buffers(packed: Packed, n: int, dtype: Any
                    ) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """(shape, dtype) of a summary kernel's buffers: its uint32 counts (per block,
    whatever its size) and the block's per-path results (`outputs.PER_PATH`): default
    months, total losses and exposures at default."""
    months, buckets = packed.months, sketch.BUCKETS
    n_firms, _, n_facilities = packed.counts
    counts = np.dtype(np.uint32)
    return {
        "market": ((header.count("MarketOutput", "MO_"), months, buckets), counts),
        "firm": ((header.count("FirmOutput", "FO_"), months, n_firms, buckets), counts),
        "facility": ((header.count("FacilityOutput", "AO_"), months, n_facilities, buckets),
                     counts),
        "bust": ((months,), counts),
        "ltv_breach": ((months, n_firms), counts),
        "nonfinite": ((1,), counts),
        "default_month": ((n_firms, n), np.dtype(np.int32)),
        "loss_total": ((n_facilities, n), np.dtype(dtype)),
        "exposure_at_default": ((n_facilities, n), np.dtype(dtype)),
    }


def unpack(raw: dict[str, Any]) -> dict[str, Any]:
    """Cube kernel buffers → the backends' outputs by name (and "flow_<term>" rows when
    the cash-flow buffer was written)."""
    out: dict[str, Any] = {}
    for key, enum, prefix in OUTPUT_ENUMS:
        for v, name in enumerate(header.names(enum, prefix)):
            values = raw[key][v]  # flags travel as floats, become int8 here
            out[name] = values.astype(BY_NAME[name].dtype(str(values.dtype)), copy=False)
    out |= {name: raw[name] for name in PER_PATH}
    if raw.get("flows") is not None:
        for v, name in enumerate(header.names(*FLOW_ENUM)):
            out[f"flow_{name}"] = raw["flows"][v]
    return out


def unpack_summary(raw: dict[str, Any]) -> dict[str, Any]:
    """Summary kernel counts → summary-mode names: `<variable>_sketch` (month, [entity,]
    bucket) for every monthly variable but the 0/1 flags, `bust_count` (month) and
    `ltv_breach_count` (month, firm). The flags' rows, which the kernel leaves at zero,
    are dropped; so is `defaulted` (default curves use the exact default months)."""
    out: dict[str, Any] = {}
    for key, enum, prefix in OUTPUT_ENUMS:
        for v, name in enumerate(header.names(enum, prefix)):
            if name not in FLAGS:
                out[sketch_name(name)] = raw[key][v]
    out[BY_NAME["regime"].count[0]] = raw["bust"]
    out[BY_NAME["ltv_breach"].count[0]] = raw["ltv_breach"]
    return out


EDGES_HEADER = "sketch_edges.cuh"
"""The kernels' bucket edge table (kernels/sketch_edges.cuh), generated by `edges_header`."""


def sketch_edges() -> np.ndarray:
    """The exact bucket edges of gpusim.sketch: E[i] is the smallest float64 magnitude
    that `sketch.bucket_index` puts at least i + 2 buckets from the zero bucket (i = 0 ..
    SIDE − 2), found by bisection over the float64 bit patterns with `bucket_index`
    itself, so a kernel that counts the edges below |x| reproduces its buckets exactly
    (bucket_index is non-decreasing in |x|)."""
    want = np.arange(2, sketch.SIDE + 1, dtype=np.int64) + sketch.ZERO  # bucket index ≥ this
    lo = np.full(want.shape, np.float64(sketch.MIN_MAGNITUDE).view(np.int64))  # below: zero
    hi = np.full(want.shape, np.float64(np.inf).view(np.int64))  # inf: the top bucket
    while np.any(hi - lo > 1):  # invariant: bucket(lo) < want <= bucket(hi)
        mid = lo + (hi - lo) // 2
        above = sketch.bucket_index(mid.view(np.float64)) >= want
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    edges = hi.view(np.float64)
    if not np.all(np.diff(edges) > 0):
        raise AssertionError("sketch edges are not increasing: bucket_index is not monotone")
    return edges


INDEX_SHIFT = 46
"""The bucket index table's key is a float64 magnitude's bits >> INDEX_SHIFT: its exponent
and top 52 − 46 = 6 mantissa bits, sub-ranges of relative width ≤ 2⁻⁶ (< ln γ ≈ 0.02)."""


def sketch_index(edges: np.ndarray) -> tuple[int, np.ndarray]:
    """(base, table) of the kernels' bucket index: for a magnitude a ≥ MIN_MAGNITUDE with
    key k = min((bits(a) >> INDEX_SHIFT) − base, len(table) − 1), its distance from the
    zero bucket is d = table[k] + (a ≥ edges[table[k] − 1]). table[k] is 1 + the edges at
    or below the sub-range's start (at most SIDE − 1: above that the comparison adds
    the last 1), exact because no sub-range holds two edges (checked here)."""
    base = int(np.float64(sketch.MIN_MAGNITUDE).view(np.int64)) >> INDEX_SHIFT
    top = int(edges[-1:].view(np.int64)[0]) >> INDEX_SHIFT  # the last edge's sub-range
    keys = np.arange(base, top + 2, dtype=np.int64)  # + one sub-range above every edge
    starts = (keys << INDEX_SHIFT).view(np.float64)
    below = np.searchsorted(edges, starts, side="right")  # edges <= the start
    within = np.searchsorted(edges, np.append(starts[1:], np.inf), side="left") - below
    if np.any(within[:-1] > 1):
        raise AssertionError("a sub-range of the bucket index holds two edges")
    return base, np.minimum(1 + below, sketch.SIDE - 1).astype(np.uint16)


def _c_rows(values: Sequence[str], per_row: int) -> str:
    """Values as the rows of a brace initializer in a multi-line #define."""
    rows = [", ".join(values[i:i + per_row]) for i in range(0, len(values), per_row)]
    return "  { \\\n" + ",\n".join(f"  {row}" for row in rows).replace("\n", " \\\n") + " \\\n  }\n"


def edges_header() -> str:
    """The text of kernels/sketch_edges.cuh: gpusim.sketch's layout, `sketch_edges()`
    as doubles in 17 significant digits, which read back exactly, and `sketch_index`
    (tests/test_kernels.py checks the file is current; regenerate it with `python -c
    "from gpusim.backends import kernel_io; print(kernel_io.edges_header(), end='')" >
    kernels/sketch_edges.cuh`)."""
    edges = sketch_edges()
    base, index = sketch_index(edges)
    return (
        "// Generated by gpusim.backends.kernel_io.edges_header from gpusim/sketch.py; do not\n"
        "// edit. GS_EDGES[i]: the smallest magnitude that gpusim.sketch.bucket_index puts\n"
        "// at least i + 2 buckets from the zero bucket (kernel_io.sketch_edges);\n"
        "// GS_SKETCH_INDEX: the first guess of the distance from zero by sub-range of\n"
        "// magnitudes (kernel_io.sketch_index).\n"
        "#pragma once\n"
        f"#define GS_SKETCH_MIN_MAGNITUDE {float(sketch.MIN_MAGNITUDE):.17g}\n"
        f"#define GS_SKETCH_LOG_GAMMA {float(sketch.LOG_GAMMA):.17g}\n"
        f"#define GS_SKETCH_KEY_MIN ({sketch.KEY_MIN})\n"
        f"#define GS_SKETCH_KEY_MAX ({sketch.KEY_MAX})\n"
        f"#define GS_SKETCH_SIDE {sketch.SIDE}\n"
        f"#define GS_SKETCH_EDGE_COUNT {len(edges)}\n"
        "#define GS_SKETCH_EDGES \\\n" + _c_rows([f"{float(x):.17g}" for x in edges], 4)
        + f"#define GS_SKETCH_INDEX_SHIFT {INDEX_SHIFT}\n"
        f"#define GS_SKETCH_INDEX_BASE {base}\n"
        f"#define GS_SKETCH_INDEX_COUNT {len(index)}\n"
        "#define GS_SKETCH_INDEX \\\n" + _c_rows([str(int(d)) for d in index], 16))


def _select(name: str, values: Sequence[int]) -> str:
    """A function-like macro body that is `values[i]` for a constant i (a chain of ?:, which
    folds once the loops over i are unrolled)."""
    if not values:
        return f"#define {name}(i) 0"
    chain = str(int(values[-1]))
    for i in range(len(values) - 2, -1, -1):
        chain = f"((i) == {i} ? {int(values[i])} : {chain})"
    return f"#define {name}(i) {chain}"


def shape_defines(packed: Packed) -> str:
    """The #defines of kernels/shapes.cuh that specialize the kernel to a run's shape:
    counts, each firm's contract and facility rows, each contract's default stream, the
    utilization lag and the switches. Everything of the config that the compiled code
    depends on, besides the mode and dtype (the kernel's name)."""
    enums = header.layout()
    ft, ct, mp = enums["FirmField"], enums["ContractField"], enums["MarketParam"]
    firms, contracts = packed.firm_table, packed.contract_table
    n_firms, n_contracts, n_facilities = packed.counts

    def column(table: np.ndarray, index: int) -> list[int]:
        return [int(x) for x in table[:, index]] if len(table) else []

    def switch(key: str) -> int:
        return int(packed.market[mp[key]] != 0.0)

    lines = [
        "#define GPUSIM_SHAPED 1",
        f"#define GPUSIM_N_FIRMS {n_firms}",
        f"#define GPUSIM_N_CONTRACTS {n_contracts}",
        f"#define GPUSIM_N_FACILITIES {n_facilities}",
        _select("GPUSIM_FIRM_CONTRACT0", column(firms, ft["FT_CONTRACT0"])),
        _select("GPUSIM_FIRM_N_CONTRACTS", column(firms, ft["FT_N_CONTRACTS"])),
        _select("GPUSIM_FIRM_FACILITY0", column(firms, ft["FT_FACILITY0"])),
        _select("GPUSIM_FIRM_N_FACILITIES", column(firms, ft["FT_N_FACILITIES"])),
        _select("GPUSIM_DEFAULT_STREAM", column(contracts, ct["CT_DEFAULT_STREAM"])),
        f"#define GPUSIM_LAG {int(packed.market[mp['MP_LAG']])}",
        f"#define GPUSIM_REGIMES_ON {switch('MP_REGIMES_ON')}",
        f"#define GPUSIM_RESPONSE_ON {switch('MP_RESPONSE_ON')}",
        f"#define GPUSIM_FIRE_SALE_ON {switch('MP_FIRE_SALE_ON')}",
    ]
    return "\n".join(lines) + "\n"


def variant_prelude(packed: Packed, kernel: str) -> str:
    """What goes before gpusim.cu's text to compile only `kernel` for `packed`'s shape."""
    return f"#define GPUSIM_ONLY 1\n#define GPUSIM_ONLY_{kernel} 1\n" + shape_defines(packed)

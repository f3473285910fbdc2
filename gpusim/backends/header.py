"""The kernel's sources as Python sees them: where they are, their digest, and what
kernels/params.cuh defines (the parameter and output layouts as enums, the limits of the
per-path state as #defines).

params.cuh is the single definition of those facts: the packing, the unpacking and the
config's limits are read from it or checked against it (tests/test_kernels.py).
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from pathlib import Path


def kernel_dir() -> Path:
    """The CUDA sources: gpusim/kernels in a wheel, the top-level kernels/ in a checkout."""
    packaged = Path(__file__).resolve().parents[1] / "kernels"
    if (packaged / "params.cuh").is_file():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "kernels"
    if (checkout / "params.cuh").is_file():
        return checkout
    raise FileNotFoundError(f"CUDA sources not found in {packaged} or {checkout}")


def sources_digest() -> str:
    """A digest of every kernel source, so an edited header makes a new compiled kernel."""
    digest = hashlib.sha256()
    for path in sorted(kernel_dir().glob("*.c*")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _params_text() -> str:
    return re.sub(r"//[^\n]*", "", (kernel_dir() / "params.cuh").read_text())


@cache
def layout() -> dict[str, dict[str, int]]:
    """Enum name → value for every enum in params.cuh, by enum type name."""
    enums: dict[str, dict[str, int]] = {}
    for name, body in re.findall(r"enum\s+(\w+)\s*\{(.*?)\}", _params_text(), flags=re.S):
        values: dict[str, int] = {}
        next_value = 0
        for item in (x.strip() for x in body.split(",")):
            if not item:
                continue
            key, _, expr = (part.strip() for part in item.partition("="))
            if expr:
                base, _, offset = (p.strip() for p in expr.partition("+"))
                next_value = (values[base] if base in values else int(base)) + (
                    int(offset) if offset else 0)
            values[key] = next_value
            next_value += 1
        enums[name] = values
    return enums


@cache
def limits() -> dict[str, int]:
    """The integer #defines of params.cuh: MAX_FIRMS, MAX_CONTRACTS, MAX_FACILITIES,
    MAX_LAG (the capacity of the kernel's per-path state)."""
    return {name: int(value) for name, value in
            re.findall(r"^\s*#define\s+(\w+)\s+(\d+)\s*$", _params_text(), flags=re.M)}


def names(enum: str, prefix: str) -> list[str]:
    """An enum's entries in value order, lower-cased without the prefix and without the
    closing COUNT: MO_TOKEN_DEMAND → token_demand."""
    fields = sorted(layout()[enum].items(), key=lambda kv: kv[1])
    return [k.removeprefix(prefix).lower() for k, _ in fields if k != f"{prefix}COUNT"]


def count(enum: str, prefix: str) -> int:
    """An enum's closing `<prefix>COUNT`: the number of slots it lays out."""
    return layout()[enum][f"{prefix}COUNT"]


def _macro(name: str) -> str:
    """The body of engine.cuh's #define `name`, continuation lines joined."""
    text = re.sub(r"//[^\n]*", "", (kernel_dir() / "engine.cuh").read_text())
    match = re.search(rf"^#define\s+{name}\b(\(\w+\))?((?:[^\n]*\\\n)*[^\n]*)", text, re.M)
    if match is None:
        raise KeyError(f"engine.cuh defines no macro {name}")
    return match.group(2).replace("\\\n", " ")


@cache
def parameters(macro: str) -> tuple[tuple[str, str, bool], ...]:
    """(name, C type, is a pointer) of every parameter in one of engine.cuh's kernel
    parameter-list macros (GPUSIM_CUBE_PARAMS, GPUSIM_SUMMARY_PARAMS, ...), in order, the
    lists they include (GPUSIM_INPUT_PARAMS, ...) expanded: the kernels' and the host
    build's signature."""
    body = _macro(macro)
    while (inner := re.search(r"\bGPUSIM_\w+_PARAMS\b", body)) is not None:
        body = body.replace(inner.group(0), _macro(inner.group(0)), 1)
    out = []
    for declaration in (d.strip() for d in body.split(",")):
        pointer = "*" in declaration
        words = declaration.replace("*", " ").split()
        if words and words[0] == "const":
            words = words[1:]
        out.append((words[-1], " ".join(words[:-1]), pointer))
    return tuple(out)

"""The CPU rows' programs beyond the numpy peers: gpusim's native CPU backend (the kernel's
headers built at install, on one thread or every usable core) and any backend in summary
mode, block after block, with what the suite checks."""

from __future__ import annotations

from typing import Any

import numpy as np

from gpusim.backends.base import Backend, block_bounds
from gpusim.backends.native import NativeBackend, native, usable_threads
from gpusim.bench.gpu import last_month_sketches
from gpusim.bench.peers import CHECKED
from gpusim.config import Config
from gpusim.store import Summary


def native_reason() -> str:
    """Why the native rows cannot run here ('' if they can)."""
    return native().reason


def native_backend(config: Config, threads: int | None) -> NativeBackend:
    """The native backend on `threads` threads (None: every usable core)."""
    return NativeBackend(config, threads=threads or usable_threads())


def cube_run(backend: Backend, paths: int, block: int, seed: int) -> dict[str, np.ndarray]:
    """A backend's cube over blocks of `block` paths; the last month of `CHECKED`."""
    keep = {name: np.empty(paths, np.dtype(backend.config.dtype)) for name in CHECKED}
    for start, stop in block_bounds(paths, block):
        out = backend(seed, start, stop)
        for name in CHECKED:
            keep[name][start:stop] = out[name][-1]
    return keep


def summary_run(backend: Backend, paths: int, block: int, seed: int) -> dict[str, Any]:
    """A backend's summary over blocks of `block` paths, merged as a store merges them;
    the last month's sketches of `CHECKED`."""
    summary = Summary.empty(backend.config)
    for b, (start, stop) in enumerate(block_bounds(paths, block)):
        summary.add(b, backend.launch_summary(seed, start, stop).result().counts)
    return last_month_sketches(summary)

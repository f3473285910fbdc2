"""What is done with one block of a run, in three steps that an executor can overlap.

`launch` starts the block on a backend (on a GPU the kernel runs on its stream while the
caller goes on), `collect` waits for it and shapes its outputs, `write` puts them into the
block's own region of the store and returns what the run must record. The in-process
executor runs `write` on writer threads while the next block computes; a cluster worker
runs all three in one task (`run_block`). Tasks are small and picklable: the store's path,
its id and the seed; the backend comes from whoever runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import xarray as xr

from gpusim.backends.base import Backend, Block, BlockSummary, Handle, SparseCounts
from gpusim.cube import block_dataset
from gpusim.store import write_per_path, write_region


class BlockTask(Protocol):
    """One kind of block work: `mode` names it ("cube" or "summary")."""

    mode: str

    def launch(self, backend: Backend, block: Block) -> Handle[Any]: ...

    def collect(self, backend: Backend, block: Block, handle: Handle[Any]) -> Any: ...

    def write(self, backend: Backend, block: Block, payload: Any) -> Any: ...


@dataclass(frozen=True)
class CubeTask:
    """Simulate a block and write every output into its region of a cube store; the
    result is the block's path count."""

    out: str
    seed: int
    store_id: str | None = None
    scenario: int | None = None  # a sweep's store: the scenario the block belongs to
    mode = "cube"

    def launch(self, backend: Backend, block: Block) -> Handle[dict[str, Any]]:
        return backend.launch(self.seed, block.start, block.stop)

    def collect(self, backend: Backend, block: Block, handle: Handle[dict[str, Any]]
                ) -> xr.Dataset:
        return block_dataset(handle.result(), block.start, backend.config)

    def write(self, backend: Backend, block: Block, payload: xr.Dataset) -> int:
        write_region(Path(self.out), payload, block.start, block.stop, self.store_id,
                     self.scenario)
        return block.paths


@dataclass(frozen=True)
class SummaryTask:
    """Summarize a block: write its exact per-path results into its region of a summary
    store; the result is its sketches and counts, sparse, for the run to merge."""

    out: str
    seed: int
    store_id: str | None = None
    scenario: int | None = None  # a sweep's store: the scenario the block belongs to
    mode = "summary"

    def launch(self, backend: Backend, block: Block) -> Handle[BlockSummary]:
        return backend.launch_summary(self.seed, block.start, block.stop)

    def collect(self, backend: Backend, block: Block, handle: Handle[BlockSummary]
                ) -> BlockSummary:
        return handle.result()

    def write(self, backend: Backend, block: Block, payload: BlockSummary
              ) -> dict[str, SparseCounts]:
        write_per_path(Path(self.out), backend.config, payload, block.start, block.stop,
                       self.store_id, self.scenario)
        return payload.counts


def task_for(mode: str, out: Path, seed: int, store_id: str | None = None,
             scenario: int | None = None) -> CubeTask | SummaryTask:
    """The block task of a run in `mode` ("cube" or "summary") on the store laid out as
    `store_id` (its blocks are written into no other store); `scenario`: the index of the
    scenario it computes in a sweep's store."""
    kind = SummaryTask if mode == "summary" else CubeTask
    return kind(str(out), seed, store_id, scenario)


def run_block(task: BlockTask, backend: Backend, block: Block) -> Any:
    """All of one block's work, here and now."""
    return task.write(backend, block, task.collect(backend, block, task.launch(backend, block)))

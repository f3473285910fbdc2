"""The in-process executor: blocks one after another on this process's backend.

The next block is launched before the last one is collected, so on a GPU its kernel runs
while the last one is copied to pinned host memory and written; WRITERS threads compress
and write collected blocks while the next block computes. At most WRITERS blocks wait to
be written (plus one in flight), so host memory stays bounded by a few blocks whatever the
path count. A block is recorded (`on_done`) only after its write has returned.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from gpusim.backends.base import Backend, Block, Handle
from gpusim.backends.devices import select_backend
from gpusim.backends.native import NativeBackend
from gpusim.config import Config
from gpusim.executors.tasks import BlockTask

WRITERS = 2
"""Threads that compress and write blocks while the next block is computed."""


class LocalExecutor:
    """Runs a config's blocks in this process, on the backend of the requested device."""

    def __init__(self, config: Config, device: str) -> None:
        self.backend: Backend = select_backend(config, device)
        self.device_name = self.backend.device_name
        self.kind = self.backend.device
        self.on_gpu = self.kind == "gpu"
        self.native_threads = self.backend.threads if isinstance(self.backend, NativeBackend) \
            else None

    def with_config(self, config: Config) -> LocalExecutor:
        """The same executor for another config (a sweep's next scenario), on the device
        already chosen (so 'auto' resolves, and says so, once)."""
        return LocalExecutor(config, self.kind)

    def wind_down(self) -> None:
        """No more blocks will be run: nothing to let go of in process."""

    def run(self, task: BlockTask, blocks: Sequence[Block],
            on_done: Callable[[Block, Any], None]) -> None:
        """Carry out `task` on every block; `on_done(block, result)` here, in block order."""
        backend = self.backend
        pending: deque[tuple[Future, Block]] = deque()

        def finish_one() -> None:
            future, block = pending.popleft()
            on_done(block, future.result())  # re-raises a failed write here

        def collect(block: Block, handle: Handle[Any]) -> None:
            payload = task.collect(backend, block, handle)
            while len(pending) >= WRITERS:
                finish_one()
            pending.append((pool.submit(task.write, backend, block, payload), block))

        with ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="gpusim-write") as pool:
            previous = None  # launched, not yet collected: on a GPU it runs while we write
            for block in blocks:
                launched = (block, task.launch(backend, block))
                if previous is not None:
                    collect(*previous)
                previous = launched
            if previous is not None:
                collect(*previous)
            while pending:
                finish_one()

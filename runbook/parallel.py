"""Worker processes for one render: the streaming pass over the export, then per-batch scripts.

Checking and quoting 100,000 rows, and writing a few hundred thousand lines of per-batch
scripts, is pure CPU work; spreading it over the machine's cores keeps a large render within a
few times the cost of merely reading the file. Results of the streaming pass come back in input
order (duplicate detection and automatic batches depend on export order), and only a few blocks
are in flight at once, so the export is still streamed, never held whole.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

C = TypeVar("C")
T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """Worker processes worth starting here: one per core, none on a single core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores if cores > 1 else 0


class Workers:
    """A process pool that can also be no pool at all: ``count`` 0 runs everything in-process.

    One pool serves a whole render, so the processes are started once, before the export's
    data exists in this process (a forked worker then shares little but the code).
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Workers:
        if self.count > 0:
            # What exists now is shared with the forked workers; frozen, no collection in any of
            # them touches (and so copies) those objects' memory.
            gc.freeze()
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            # A forked worker inherits a paused collector (see prepare.paused_gc); it renders
            # templates, whose cyclic garbage would otherwise keep whole scripts alive.
            self._pool = ProcessPoolExecutor(max_workers=self.count, mp_context=context, initializer=gc.enable)
        return self

    def __exit__(self, *_: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            gc.unfreeze()

    def submit(self, func: Callable[..., R], *args: Any) -> Future[R]:
        """Start ``func(*args)`` in a worker; without workers it runs here, now."""
        if self._pool is not None:
            return self._pool.submit(func, *args)
        future: Future[R] = Future()
        try:
            future.set_result(func(*args))
        except BaseException as exc:  # re-raised by result(), as a pool's future would
            future.set_exception(exc)
        return future

    def ordered_map(self, func: Callable[[C, T], R], context: C, blocks: Iterable[T], *,
                    in_flight: int = 4) -> Iterator[R]:
        """Yield ``func(context, block)`` for each block, in order, with a few blocks in flight."""
        if self._pool is None:
            for block in blocks:
                yield func(context, block)
            return
        pending: deque[Future[R]] = deque()
        for block in blocks:
            pending.append(self._pool.submit(func, context, block))
            if len(pending) >= self.count * in_flight:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

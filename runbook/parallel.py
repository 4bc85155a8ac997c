"""An ordered, bounded map over blocks of work in worker processes.

Checking and quoting 100,000 rows is pure CPU work per row; spreading it over the machine's
cores keeps a large render within a few times the cost of merely reading the file. Results come
back in input order (duplicate detection and automatic batches depend on export order), and only
a few blocks are in flight at once, so the export is still streamed, never held whole.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar

C = TypeVar("C")
T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """Worker processes worth starting here: one per core, none on a single core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores if cores > 1 else 0


def ordered_map(
    func: Callable[[C, T], R], context: C, blocks: Iterable[T], *, workers: int, in_flight: int = 4
) -> Iterator[R]:
    """Yield ``func(context, block)`` for each block, in order; in-process when ``workers`` is 0."""
    if workers <= 0:
        for block in blocks:
            yield func(context, block)
        return
    methods = multiprocessing.get_all_start_methods()
    mp_context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp_context) as pool:
        pending: deque[Future[R]] = deque()
        for block in blocks:
            pending.append(pool.submit(func, context, block))
            if len(pending) >= workers * in_flight:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

"""Worker processes for one render: the streaming pass over the export, then per-batch scripts.

Checking and quoting 100,000 rows, and writing a few hundred thousand lines of per-batch
scripts, is pure CPU work; spreading it over the machine's cores keeps a large render within a
few times the cost of merely reading the file. This process works too: it takes a block or a
job whenever the workers already have a queue, so a machine with N cores runs N - 1 workers
(each one costs memory) and no core waits. Results of the streaming pass come back in input
order (duplicate detection and automatic batches depend on export order), and only a few blocks
are in flight at once, so the export is still streamed, never held whole.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Generic, TypeVar

SWITCH_INTERVAL = 0.0005
"""Seconds a thread of this process may hold the GIL while the pool runs (see Workers)."""

PIPE_BYTES = 1 << 20
"""Room in each pipe to and from the workers: a block of the export, or a block's results."""

C = TypeVar("C")
T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """Worker processes worth starting here: one per core but this process's own."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores - 1


class Task(Generic[R]):
    """A call handed to :meth:`Workers.submit`: a worker runs it, unless this process gets to it first."""

    def __init__(self, future: Future[R] | None, func: Callable[..., R], args: tuple[Any, ...]) -> None:
        self._future = future
        self._func = func
        self._args = args
        self._here: Future[R] | None = None

    def run_here_unless_started(self) -> None:
        """Compute the result in this process if no worker has started the call (once at most;
        an error is kept for :meth:`result`, as a worker's would be)."""
        if self._here is None and (self._future is None or self._future.cancel()):
            self._here = Future()
            try:
                self._here.set_result(self._func(*self._args))
            except Exception as exc:
                self._here.set_exception(exc)

    def done(self) -> bool:
        """True when the result is there: computed here, or by a worker."""
        return self._here is not None or (self._future is not None and self._future.done())

    def result(self) -> R:
        """The call's result: waited for if a worker has started it, else computed here."""
        self.run_here_unless_started()
        done = self._here if self._here is not None else self._future
        assert done is not None
        return done.result()


def gather(tasks: list[Task[R]]) -> list[R]:
    """The results of ``tasks`` in order. This process works from the last task backwards
    while the workers go on from the first, so nobody waits while a task is left."""
    for task in reversed(tasks):
        task.run_here_unless_started()
    return [task.result() for task in tasks]


def _widen_pipes(pool: ProcessPoolExecutor) -> None:
    """Give the pool's two pipes room for a whole block, where the platform allows it.

    A pipe holds 64 KiB by default, and a worker's results for one block are about 0.9 MB. The
    worker then waits in its write while this process reads them 64 KiB at a time, and before
    each read the reading thread must win the GIL back from the thread that is computing: the
    worker sat idle about a fifth of a large render. With room for the whole block, it writes and
    goes on. Linux only (``F_SETPIPE_SZ``); where the size cannot be set (another platform, a
    per-user pipe limit, a Python whose pool keeps its pipes elsewhere) nothing changes but speed.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        return
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_size is None:
        return
    for queue in (getattr(pool, "_call_queue", None), getattr(pool, "_result_queue", None)):
        try:
            fcntl.fcntl(queue._reader.fileno(), set_size, PIPE_BYTES)  # type: ignore[union-attr]
        except (AttributeError, OSError):
            pass


class Workers:
    """A process pool shared with this process; ``count`` 0 runs everything in-process.

    One pool serves a whole render, so the processes are started once, early, while this
    process is still small: a forked worker then shares most of its memory with it.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self._pool: ProcessPoolExecutor | None = None
        self._switch_interval = 0.0
        self._froze = False

    def __enter__(self) -> Workers:
        if self.count > 0:
            # What exists now is shared with the forked workers; frozen, no collection in any of
            # them touches (and so copies) those objects' memory. A caller's own frozen objects
            # are left as they are (unfreezing would release theirs too).
            self._froze = gc.get_freeze_count() == 0
            if self._froze:
                gc.freeze()
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            # A forked worker inherits a paused collector (see prepare.paused_gc); it renders
            # templates, whose cyclic garbage would otherwise keep whole scripts alive.
            self._pool = ProcessPoolExecutor(max_workers=self.count, mp_context=context, initializer=gc.enable)
            _widen_pipes(self._pool)
            # The pool's threads in this process hand blocks to the workers and take results
            # back; while this process works on a block itself they wait for the GIL, and at
            # the default 5 ms a worker runs dry. A shorter interval keeps the workers fed.
            self._switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(SWITCH_INTERVAL)
        return self

    def __exit__(self, *_: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            if self._froze:
                gc.unfreeze()
            sys.setswitchinterval(self._switch_interval)

    def submit(self, func: Callable[..., R], *args: Any) -> Task[R]:
        """Queue ``func(*args)`` for a worker; :meth:`Task.result` runs it here if none took it."""
        return Task(self._pool.submit(func, *args) if self._pool is not None else None, func, args)

    def ordered_map(self, func: Callable[[C, T], R], context: C, blocks: Iterable[T], *,
                    in_flight: int = 3) -> Iterator[R]:
        """Yield ``func(context, block)`` for each block, in order.

        Each worker keeps up to ``in_flight`` blocks queued; a block that finds them all queued
        is worked on here instead, so this process is never idle while there is work. Once the
        input is read, this process takes the queued blocks no worker has started yet. Three
        blocks (about 75 ms of work) keep a worker busy; every block more held back costs this
        process about 2 MB of finished results waiting their turn, and measured no faster.
        """
        if self._pool is None:
            for block in blocks:
                yield func(context, block)
            return
        queued = self.count * in_flight
        pending: deque[Task[R]] = deque()
        for block in blocks:
            if sum(1 for task in pending if not task.done()) < queued:
                pending.append(self.submit(func, context, block))
            else:
                here = Task(None, func, (context, block))
                here.run_here_unless_started()
                pending.append(here)
            while pending and (pending[0].done() or len(pending) > 2 * queued):
                yield pending.popleft().result()
        # The input is read: the blocks still queued for the workers are shared out as in the
        # tail, this process taking them from the back, instead of waiting for the workers.
        yield from gather(list(pending))

"""The worker pool a render shares with its own process: order, who does the work, clean-up."""

from __future__ import annotations

import gc
import os
import sys
import time

import pytest

from runbook.parallel import PIPE_BYTES, Workers, gather


def _slow_square(delay: float, n: int) -> tuple[int, int]:
    time.sleep(delay)
    return n * n, os.getpid()


def _pid_of(n: int) -> tuple[int, int]:
    return n, os.getpid()


@pytest.mark.parametrize("count", [0, 1, 2])
def test_ordered_map_keeps_input_order_and_this_process_helps(count: int) -> None:
    with Workers(count) as pool:
        results = list(pool.ordered_map(_slow_square, 0.01, range(40), in_flight=2))
    assert [square for square, _ in results] == [n * n for n in range(40)]
    pids = {pid for _, pid in results}
    assert os.getpid() in pids  # this process took blocks while the workers had a queue
    assert len(pids) == count + 1


@pytest.mark.parametrize("count", [0, 1])
def test_gather_returns_every_result_in_order_whoever_ran_it(count: int) -> None:
    with Workers(count) as pool:
        tasks = [pool.submit(_slow_square, 0.02, n) for n in range(12)]
        time.sleep(0.05)  # let a worker start on the first tasks
        results = gather(tasks)
    assert [square for square, _ in results] == [n * n for n in range(12)]
    if count:
        pids = {pid for _, pid in results}
        assert len(pids) == 2  # the worker started at the front, this process took the rest


def test_an_exception_in_a_task_reaches_the_caller() -> None:
    with Workers(1) as pool:
        task = pool.submit(int, "not a number")
        with pytest.raises(ValueError):
            gather([task])


def test_the_pool_restores_what_it_changes() -> None:
    interval = sys.getswitchinterval()
    with Workers(1) as pool:
        assert sys.getswitchinterval() < interval
        assert gc.get_freeze_count() > 0
        assert gather([pool.submit(_pid_of, 1)])[0][0] == 1
    assert sys.getswitchinterval() == interval
    assert gc.get_freeze_count() == 0


def _echo(data: bytes) -> bytes:
    return data


def test_the_pipes_to_and_from_a_worker_hold_a_whole_block() -> None:
    """A block's results must fit the pipe, or the worker waits for this process (see _widen_pipes).

    This reads the pool's private queues, as _widen_pipes does: a Python whose pool keeps its
    pipes elsewhere fails here instead of quietly losing the speed.
    """
    fcntl = pytest.importorskip("fcntl")
    if not hasattr(fcntl, "F_GETPIPE_SZ"):
        pytest.skip("pipe sizes can be set on Linux only")
    with Workers(1) as pool:
        assert pool._pool is not None
        for queue in (pool._pool._call_queue, pool._pool._result_queue):
            assert fcntl.fcntl(queue._reader.fileno(), fcntl.F_GETPIPE_SZ) >= PIPE_BYTES
        big = os.urandom(PIPE_BYTES // 2)
        assert gather([pool.submit(_echo, big)]) == [big]


def test_a_callers_frozen_objects_stay_frozen() -> None:
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        with Workers(1) as pool:
            gather([pool.submit(_pid_of, 1)])
        assert gc.get_freeze_count() == before
    finally:
        gc.unfreeze()


def _count_and_fail(calls: list[int]) -> None:
    calls.append(1)
    raise ValueError("no")


def test_a_task_run_here_runs_once_and_keeps_its_error_for_result() -> None:
    calls: list[int] = []
    with Workers(0) as pool:
        task = pool.submit(_count_and_fail, calls)
        task.run_here_unless_started()
        for _ in range(2):
            with pytest.raises(ValueError):
                task.result()
    assert calls == [1]

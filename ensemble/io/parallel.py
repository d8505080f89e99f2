"""Row work on threads: how many, and how to split the rows (one rule for every reader/writer).

pyarrow and numpy release the GIL on large arrays, so threads share the cores. The number of
threads follows the cores this process may use; a table under `MIN_ROWS_A_PART` rows a part is
not split (the threads would cost more than they save).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

MAX_WORKERS = 4  # past a few threads, file reads and writes are bound by memory, not cores
MIN_ROWS_A_PART = 8192

T = TypeVar("T")
R = TypeVar("R")


def workers() -> int:
    """Threads for row work: the cores this process may run on, between 1 and MAX_WORKERS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


def row_parts(rows: int) -> list[tuple[int, int]]:
    """[first, stop) row ranges, one per worker, none under MIN_ROWS_A_PART rows (at least one)."""
    count = max(1, min(workers(), rows // MIN_ROWS_A_PART))
    bounds = [rows * part // count for part in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def map_ordered(
    function: Callable[[T], R], items: Iterable[T], ahead: int | None = None
) -> Iterator[R]:
    """`function` of each item, in order, computed on `workers()` threads a few items ahead.

    Items are taken from `items` only as threads free up, and at most `ahead` (default: the
    number of workers) results wait to be taken, so memory stays bounded when either side is
    slower. Closing the iterator early (or dropping it) cancels what has not started and never
    waits for the threads.
    """
    count = workers()
    source = iter(items)
    if count == 1:
        yield from map(function, source)
        return
    ahead = count if ahead is None else max(1, ahead)
    pool = ThreadPoolExecutor(count)
    pending: deque[Future[R]] = deque()
    finished = False
    try:
        for item in source:
            pending.append(pool.submit(function, item))
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
        finished = True
    finally:
        # Closed early, this may run in the garbage collector, on any thread and at any point
        # (even inside another thread's start): joining the workers there can deadlock, so they
        # are only told to stop; the item each is on finishes and is dropped.
        for future in pending:
            future.cancel()
        pool.shutdown(wait=finished)

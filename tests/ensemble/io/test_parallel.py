"""Row work on threads: parts that cover the rows once, results in order, bounded look-ahead."""

from __future__ import annotations

import threading
import time

from ensemble.io import parallel
from ensemble.io.parallel import map_ordered, row_parts, workers


def test_workers_follow_the_cores_within_bounds(monkeypatch) -> None:
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6, 7})
    assert workers() == parallel.MAX_WORKERS
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: {3})
    assert workers() == 1


def test_row_parts_cover_every_row_once(monkeypatch) -> None:
    monkeypatch.setattr(parallel, "workers", lambda: 3)
    for rows in (0, 1, parallel.MIN_ROWS_A_PART - 1, 2 * parallel.MIN_ROWS_A_PART, 99_819):
        parts = row_parts(rows)
        assert parts[0][0] == 0 and parts[-1][1] == rows
        assert all(a[1] == b[0] for a, b in zip(parts, parts[1:], strict=False))
        assert len(parts) == max(1, min(3, rows // parallel.MIN_ROWS_A_PART))


def test_map_ordered_keeps_the_order_and_takes_items_as_threads_free_up(monkeypatch) -> None:
    monkeypatch.setattr(parallel, "workers", lambda: 2)
    taken = []

    def items():
        for number in range(10):
            taken.append(number)
            yield number

    def slow_square(number: int) -> int:
        time.sleep(0.01 * (number % 3))
        return number * number

    results = map_ordered(slow_square, items(), ahead=2)
    assert next(results) == 0
    assert len(taken) <= 4  # not the whole source at once
    assert [0, *results] == [n * n for n in range(10)]


def test_map_ordered_on_one_core_runs_in_this_thread(monkeypatch) -> None:
    monkeypatch.setattr(parallel, "workers", lambda: 1)
    threads = list(map_ordered(lambda _: threading.current_thread(), range(3)))
    assert threads == [threading.current_thread()] * 3


def test_closing_early_never_waits_for_a_busy_thread(monkeypatch) -> None:
    # Closed early, map_ordered may run its cleanup in the garbage collector on any thread:
    # joining the workers there can deadlock, so closing must return while a worker is busy.
    monkeypatch.setattr(parallel, "workers", lambda: 2)
    release, busy = threading.Event(), threading.Event()

    def blocked_after_first(number: int) -> int:
        if number > 0:
            busy.set()
            release.wait()
        return number

    results = map_ordered(blocked_after_first, range(4), ahead=1)
    assert next(results) == 0
    assert busy.wait(timeout=30)  # a worker is inside item 1: it cannot be cancelled
    closer = threading.Thread(target=results.close)
    closer.start()
    closer.join(timeout=30)
    closed = not closer.is_alive()
    release.set()  # let the busy workers finish either way
    closer.join()
    assert closed, "closing map_ordered waited for a busy worker thread"

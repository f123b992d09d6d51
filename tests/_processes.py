"""Run a function in several real OS processes at once and collect what each returned.

Workers are forked and released together by a barrier, so their transactions overlap.
Each worker opens its own store (never one inherited from the parent).
"""

from __future__ import annotations

import multiprocessing
import traceback
from collections.abc import Callable
from typing import Any


def _child(
    worker: Callable[..., Any],
    index: int,
    args: tuple[Any, ...],
    barrier: Any,
    results: Any,
) -> None:
    try:
        barrier.wait(timeout=60)
        results.put((index, True, worker(index, *args)))
    except BaseException:
        results.put((index, False, traceback.format_exc()))


def run_processes(
    worker: Callable[..., Any], count: int, *args: Any, timeout: float = 180.0
) -> list[Any]:
    """``[worker(0, *args), ..., worker(count - 1, *args)]``, each run in its own process.

    A worker that raises fails the calling test with the worker's traceback.
    """
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(count)
    results = context.Queue()
    processes = [
        context.Process(target=_child, args=(worker, i, args, barrier, results), daemon=True)
        for i in range(count)
    ]
    for process in processes:
        process.start()
    collected: dict[int, Any] = {}
    failures: list[str] = []
    try:
        for _ in range(count):
            index, ok, value = results.get(timeout=timeout)
            if ok:
                collected[index] = value
            else:
                failures.append(f"worker {index} failed:\n{value}")
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    if failures:
        raise AssertionError("\n".join(failures))
    return [collected[i] for i in range(count)]

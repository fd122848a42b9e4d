"""Spread the independent pieces of one big job over worker processes.

A pass of the decide job over a whole store (every order falls due on the same day after an import,
or after the daemon was down) is pure Python: one process uses one core. Pieces that touch disjoint
rows can run side by side in processes; each worker opens its own database connections.

Workers are started for the job and stopped after it, so an idle daemon holds no extra memory.
Their log records come back through a queue to this process's handlers (the same format and the
same secret scrubbing); an exception in a piece is raised here once the running pieces are done.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from logging.handlers import QueueHandler, QueueListener
from typing import Any, TypeVar

T = TypeVar("T")


def process_count(configured: int) -> int:
    """`configured` processes, or one per CPU this process may use for 0."""
    if configured > 0:
        return configured
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


async def fan_out(
    piece: Callable[..., T],
    pieces: Sequence[tuple[Any, ...]],
    *,
    processes: int,
    start: Callable[..., None],
    start_args: tuple[Any, ...],
) -> AsyncGenerator[T, None]:
    """`piece(*args)` for each args of `pieces` in `processes` fresh worker processes, each
    result yielded as soon as it is ready (in no set order). `start(*start_args)` runs once in
    each worker first; all three must be importable module-level callables and their arguments
    picklable (workers are spawned, not forked: the daemon has threads, and a forked child can
    inherit a lock some thread held).

    Two pieces per worker are handed out at a time, so results wait here only as long as the
    caller takes to use one, and a failure stops the job after the pieces already running.
    Use it under `contextlib.aclosing` so the workers stop when the caller stops early.
    """
    context = multiprocessing.get_context("spawn")
    records = context.Queue()
    root = logging.getLogger()
    listener = QueueListener(records, *root.handlers, respect_handler_level=True)
    listener.start()
    pool = ProcessPoolExecutor(
        max_workers=processes,
        mp_context=context,
        initializer=_start_worker,
        initargs=(records, _levels(), start, start_args),
    )
    loop = asyncio.get_running_loop()
    waiting = iter(pieces)
    running: set[asyncio.Future[T]] = set()
    try:
        while True:
            for args in waiting:
                running.add(loop.run_in_executor(pool, piece, *args))
                if len(running) >= 2 * processes:
                    break
            if not running:
                return
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                yield future.result()
    finally:
        # Pieces not started yet are dropped; the running ones finish (each is one transaction
        # per chunk, so a stop in between loses nothing but time). Their failures are taken
        # here: the one raised to the caller says what went wrong.
        for future in running:
            if future.done() and not future.cancelled():
                future.exception()
            else:
                future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        listener.stop()
        records.close()


def _levels() -> dict[str, int]:
    """The levels set in this process, root's under "", for the workers to log as it does."""
    levels = {"": logging.getLogger().level}
    for name, logger in logging.root.manager.loggerDict.items():
        if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET:
            levels[name] = logger.level
    return levels


def _start_worker(
    records: Any, levels: dict[str, int], start: Callable[..., None], start_args: tuple[Any, ...]
) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(QueueHandler(records))
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level)
    start(*start_args)

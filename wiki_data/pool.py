"""The mining worker pool: tasks run in worker processes (or in-process for one worker), results in order.

Kept as light as `wiki_data.worker`: spawned workers import this module for their initializer.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TypeVar

from eat.compat import terminate_workers
from eat.errors import UserError
from wiki_data.worker import Task, WorkResult, init_worker, warm_up, work

Tag = TypeVar("Tag")


@dataclass(frozen=True)
class WorkerSettings:
    """What every worker process is set up with (see `wiki_data.worker.init_worker`)."""

    lang: str
    variant: str | None  # Chinese script variant, None for other languages
    page_timeout: float
    mention_sections: int | None = None  # None: no mentions


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGTERM this worker when the mining parent dies (kill -9, OOM killer), so no orphan keeps
    decompressing; elsewhere a daemon thread watches the parent's pid instead."""
    import ctypes
    import sys
    import threading
    import time

    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(1, signal.SIGTERM, 0, 0, 0) == 0:  # 1 = PR_SET_PDEATHSIG
                if os.getppid() != parent:  # the parent died before the call took effect
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="eat-parent-watch").start()


def _init_pool_worker(settings: WorkerSettings, parent: int) -> None:
    """Workers leave Ctrl-C to the parent, which stops them: no traceback from every worker, no hang; and
    they end when the parent does."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)
    init_worker(settings.lang, settings.variant, settings.page_timeout, settings.mention_sections)


class Runner:
    """Runs tasks on a process pool (or in-process for one worker), in order, with a bounded queue.

    A ProcessPoolExecutor rather than multiprocessing.Pool: when a worker dies (OOM killer, kill -9) Pool
    waits for its task forever, while the executor fails the task with BrokenProcessPool.
    """

    def __init__(self, workers: int, settings: WorkerSettings):
        self.workers = workers
        self.pool = None
        if workers > 1:
            self.pool = ProcessPoolExecutor(
                workers,
                mp_context=mp.get_context("spawn"),
                initializer=_init_pool_worker,
                initargs=(settings, os.getpid()),
            )
        else:
            init_worker(settings.lang, settings.variant, settings.page_timeout, settings.mention_sections)

    def warm_up(self) -> None:
        """Start every worker process now (the executor starts them one task at a time) and have it import
        the page parsers, so that this happens while the parent reads the SQL tables, not after."""
        if self.pool is not None:
            for _ in range(self.workers):
                self.pool.submit(warm_up)

    def run(self, jobs: Iterator[tuple[Tag, Task]]) -> Iterator[tuple[Tag, WorkResult]]:
        """Yield (tag, result) in job order."""
        if self.pool is None:
            for tag, task in jobs:
                yield tag, work(task)
            return
        window: deque = deque()
        limit = self.workers * 4
        try:
            try:
                for tag, task in jobs:
                    window.append((tag, self.pool.submit(work, task)))
                    while len(window) >= limit:
                        t, fut = window.popleft()
                        yield t, fut.result()
            except UserError:
                # The input broke (e.g. a damaged plain dump): finish what was already handed out, so every
                # shard completed before the damage is written, then report.
                while window:
                    t, fut = window.popleft()
                    yield t, fut.result()
                raise
            while window:
                t, fut = window.popleft()
                yield t, fut.result()
        except BrokenProcessPool:
            raise UserError(
                "a mining worker process died (out of memory, or killed); finished shards are kept: "
                "re-run with --resume (and fewer --workers if memory is short)"
            ) from None

    def close(self) -> None:
        if self.pool is not None:
            # Stop at once (Ctrl-C, errors): running tasks belong to unfinished shards, which are redone.
            terminate_workers(self.pool)
            self.pool.shutdown(wait=True, cancel_futures=True)

"""The harness designs: one function mapped over work units with a strategy at N workers.

A *strategy* maps a top-level function over work units:

``loop``        a plain for-loop (concurrency 1 only)
``semaphore``   asyncio tasks for every unit, at most N in flight (asyncio.Semaphore)
``queue``       an asyncio.Queue drained by N worker tasks
``threads``     a ThreadPoolExecutor with N threads
``processes``   a ProcessPoolExecutor with N spawned processes

The asyncio designs run synchronous work with ``run_in_executor`` on a pool of
exactly N threads (``asyncio.to_thread`` would cap them at the default
executor's ``min(32, cpus + 4)``).  Pools start in ``Runner()`` (the benchmark's
``setup``) and stop in ``close()`` (its ``teardown``, or at once when ``setup`` raises:
see ``Scenario``); process workers die with the benchmark process (PR_SET_PDEATHSIG), so
asv's timeout killing a benchmark leaves none behind.
"""

import asyncio
import concurrent.futures as cf
import multiprocessing
import os
import sys
import time
from pathlib import Path

from . import strategies
from .children import die_with_parent

#: The harness designs (rows of ``strategies.TABLE``) and the pool each one needs.
DESIGNS = {"loop": None, "semaphore": "threads", "queue": "threads", "threads": "threads",
           "processes": "processes"}
#: Process pools larger than this make no sense on the machine's cores: n/a.
MAX_PROCESSES = max(5, os.cpu_count() or 1)
#: Seconds a process pool may take to start every worker, and a pool to stop in ``close()``.
POOL_START_TIMEOUT = 300.0
POOL_CLOSE_TIMEOUT = 10.0


def _noop(_):
    return os.getpid()


def _worker_init(parent_pid):
    """Process-pool initializer: the worker dies with the process that started the pool."""
    die_with_parent(parent_pid)


class Runner:
    """Maps ``fn`` over units with one strategy at one concurrency level."""

    def __init__(self, strategy, concurrency):
        if strategy not in DESIGNS:
            raise ValueError(f"unknown strategy {strategy!r}")
        strategies.check_workers(strategy, concurrency)
        if strategy == "processes" and concurrency > MAX_PROCESSES:
            raise NotImplementedError(f"{concurrency} processes on {os.cpu_count()} cores")
        self.strategy, self.concurrency = strategy, concurrency
        self.pool = None
        if DESIGNS[strategy] == "threads":
            self.pool = cf.ThreadPoolExecutor(concurrency, thread_name_prefix="bench")
        elif DESIGNS[strategy] == "processes":
            # asv imports the suite from a path that is not on sys.path; spawned workers
            # unpickle benchmarks.* functions, so they need its parent, first: asv's runner
            # can leave its own folder at sys.path[0], whose asv/benchmarks.py is not ours.
            parent = str(Path(__file__).resolve().parents[2])
            if sys.path[:1] != [parent]:
                sys.path.insert(0, parent)
            # Started from this (the benchmark's main) thread: PR_SET_PDEATHSIG follows it.
            ctx = multiprocessing.get_context("spawn")
            self.pool = cf.ProcessPoolExecutor(concurrency, mp_context=ctx, initializer=_worker_init,
                                               initargs=(os.getpid(),))
            try:  # start every worker now
                list(self.pool.map(_noop, range(concurrency), timeout=POOL_START_TIMEOUT))
            except BaseException:
                self.close()
                raise

    def map(self, fn, units):
        """``[fn(u) for u in units]``, in order, computed with this strategy."""
        units = list(units)
        if self.strategy in ("semaphore", "queue"):
            return asyncio.run(self._asyncio(fn, units))
        return list(self._in_order(fn, units))

    def each(self, fn, units, consume):
        """Call ``consume(fn(u))`` for every unit as results arrive, keeping none of them.

        Pools hand results over in unit order; the asyncio designs as they complete.
        """
        units = list(units)
        if self.strategy in ("semaphore", "queue"):
            asyncio.run(self._asyncio(fn, units, consume))
            return
        for result in self._in_order(fn, units):
            consume(result)
            del result  # not held while the next unit is read (a whole Parquet file's items, say)

    def _in_order(self, fn, units):
        """Results of the loop and the pools, lazily, in unit order."""
        if self.strategy == "loop":
            return map(fn, units)
        if self.strategy == "threads":
            return self.pool.map(fn, units)
        chunk = max(1, len(units) // (4 * self.concurrency))
        return self.pool.map(fn, units, chunksize=chunk)

    def _asyncio(self, fn, units, consume=None):
        run = _semaphore if self.strategy == "semaphore" else _queue
        return run(self._in_pool(fn), units, self.concurrency, consume)

    def amap(self, afn, units):
        """Like ``map`` for a coroutine function (network clients): loop/semaphore/queue."""
        units = list(units)
        if self.strategy in ("threads", "processes"):
            raise NotImplementedError(f"{self.strategy} do not run coroutines")

        async def sequential(afn, units, _):
            return [await afn(u) for u in units]

        run = {"loop": sequential, "semaphore": _semaphore, "queue": _queue}[self.strategy]
        return asyncio.run(run(afn, units, self.concurrency))

    def _in_pool(self, fn):
        async def call(unit):
            return await asyncio.get_running_loop().run_in_executor(self.pool, fn, unit)
        return call

    def close(self, timeout=POOL_CLOSE_TIMEOUT):
        """Stop the pool (idempotent): workers get ``timeout`` s to finish, then processes are killed."""
        pool, self.pool = self.pool, None
        if pool is None:
            return
        # The executors keep their workers private; these are the only handles to bound the wait.
        processes = list((getattr(pool, "_processes", None) or {}).values())
        workers = [*processes, *getattr(pool, "_threads", ()),
                   *filter(None, [getattr(pool, "_executor_manager_thread", None)])]
        pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        for proc in processes:
            if proc.is_alive():
                proc.kill()
                proc.join(5.0)


async def _semaphore(afn, units, n, consume=None):
    sem = asyncio.Semaphore(n)

    async def one(unit):
        async with sem:
            result = await afn(unit)
        if consume is None:
            return result
        consume(result)

    return await asyncio.gather(*(one(u) for u in units))


async def _queue(afn, units, n, consume=None):
    queue = asyncio.Queue()
    for pair in enumerate(units):
        queue.put_nowait(pair)
    results = [None] * len(units)

    async def worker():
        while True:
            try:
                i, unit = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            result = await afn(unit)
            if consume is None:
                results[i] = result
            else:
                consume(result)

    await asyncio.gather(*(worker() for _ in range(n)))
    return results


def flatten(batches):
    return [item for batch in batches for item in batch]

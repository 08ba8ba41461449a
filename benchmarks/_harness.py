"""The strategy layer shared by every suite: concurrency designs, checks, memory.

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

import abc
import asyncio
import concurrent.futures as cf
import functools
import itertools
import multiprocessing
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import psutil

from . import datagen, strategies
from ._lifetime import die_with_parent

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
            # asv imports the suite from a path that is not on sys.path; spawned
            # workers unpickle benchmarks.* functions, so they need its parent.
            parent = str(Path(__file__).resolve().parents[1])
            if parent not in sys.path:
                sys.path.append(parent)
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


# --- checks ---------------------------------------------------------------------------
# The checks live in ``_checks`` (one id-set check, one item check for every suite); these
# names stay importable from here.

from ._checks import (REQUIRED, ItemCheck, LastWall, ResultMismatch, check_ids,  # noqa: E402,F401
                      check_items, sample)

_sample = sample  # the old private name (api_ingest imports it)


# --- memory and throughput -----------------------------------------------------------

def _rss_tree(proc, children=None):
    """RSS of ``proc`` and ``children`` (default: its descendants now), bytes."""
    total = proc.memory_info().rss
    for child in proc.children(recursive=True) if children is None else children:
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total


#: The sampler looks for new children every this many samples: finding them walks all of
#: /proc (about a millisecond, holding the GIL), while a sample of known processes is cheap.
CHILDREN_EVERY = 10


def peak_rss_increment_mb(fn, interval=0.005):
    """Run ``fn`` once; return the peak RSS of this process plus its children above the start, MB."""
    proc = psutil.Process()
    base = peak = _rss_tree(proc)
    stop = threading.Event()

    def sample():
        nonlocal peak
        for count in itertools.count():
            if stop.wait(interval):
                return
            if count % CHILDREN_EVERY == 0:
                children = proc.children(recursive=True)
            peak = max(peak, _rss_tree(proc, children))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        stop.set()
        sampler.join()
    return max(0.0, (max(peak, _rss_tree(proc)) - base) / 1e6)


def measured_where(method, params, param_names, where):
    """``method`` for one class, measured only on its rows where ``where(**row)`` holds.

    asv records the other rows n/a without starting a process's setup (its ``skip_params``):
    a measurement that would say nothing there (a ceiling's memory, say) costs nothing.
    """
    @functools.wraps(method)
    def measured(self, *args):
        return method(self, *args)

    measured.skip_params = [row for row in itertools.product(*params)
                            if not where(**dict(zip(param_names, row)))]
    return measured


def _teardown_on_error(setup):
    """``setup`` that calls ``self.teardown(*args)`` when it raises, then re-raises."""
    @functools.wraps(setup)
    def wrapped(self, *args):
        try:
            return setup(self, *args)
        except BaseException as exc:
            try:
                self.teardown(*args)
            except Exception as cleanup:  # noqa: BLE001 - the setup's error is the one to report
                exc.add_note(f"teardown after the failed setup failed too: {cleanup!r}")
            raise
    return wrapped


def items_per_second(fn, n_items):
    start = time.perf_counter()
    fn()
    return n_items / (time.perf_counter() - start)


#: The sampling of the history profile's classes (asv's ``(min, max, seconds)``).
HISTORY_REPEAT = (1, 3, 4.0)
#: The full profile's own classes (harness prototypes, ceilings, hybrids) take one sample a
#: row: with ``repeat`` above 1, asv re-runs ``setup`` (a pool, a server and its warm-up) and
#: ``teardown`` for every further sample, and a full commit cost 26 minutes.  They make a
#: head's report, not a history series that a pre-merge verdict reads.
FULL_REPEAT = 1


class Scenario(abc.ABC):
    """Base of every scenario class: timing knobs and the two measurements every row has.

    ``time_run`` (the checked wall time; throughput is ``n_items`` over it) and ``track_mem_mb``
    (the peak RSS increment of the run, children included).  The suites that time a write
    apart from its check add ``track_throughput`` (``_checks.LastWall``).  asv's ``peakmem_``
    (imports and setup included, children excluded) is left to the import baseline: a fourth
    process per row, for a number the report never showed.

    Subclasses set ``self.run`` (one complete, checked run) and ``self.n`` in
    ``setup``.  Abstract, so that asv does not collect it as a benchmark.  A ``setup``
    that raises (n/a included) runs ``teardown`` before the error leaves it: asv skips
    ``teardown`` then, and a pool or server started before the error would live on.
    ``teardown`` must therefore be idempotent and cope with a half-done ``setup``.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        setup = cls.__dict__.get("setup")
        if setup is not None and not getattr(setup, "__isabstractmethod__", False):
            cls.setup = _teardown_on_error(setup)
        if getattr(cls, "profile", None) != "history":
            if "repeat" not in cls.__dict__:
                cls.repeat = FULL_REPEAT
        elif cls.repeat == FULL_REPEAT:  # a Control below a full-profile class
            cls.repeat = HISTORY_REPEAT

    number = 1
    #: History classes: one round of at most 3 samples (stopping after 4 s), so that a history
    #: commit costs under a minute; the pre-merge command asks for more rounds (``-a
    #: rounds=N``), interleaved.  Classes outside the history profile take ``FULL_REPEAT``.
    repeat = HISTORY_REPEAT
    rounds = 1
    warmup_time = 0
    timeout = 600

    @abc.abstractmethod
    def setup(self, *args):
        """Set ``self.run`` and ``self.n``; raise NotImplementedError for n/a."""

    def teardown(self, *args):
        """Stop the strategy's pool and remove ``self.root`` (a temporary output root), if any."""
        runner = getattr(self, "runner", None)
        if runner is not None:
            runner.close()
        root, self.root = getattr(self, "root", None), None
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)

    def time_run(self, *args):
        """Wall time of one complete run (result checked)."""
        self.run()

    def track_mem_mb(self, *args):
        """Peak RSS increment of the process and its children during one run."""
        return peak_rss_increment_mb(self.run)

    track_mem_mb.unit = "MB"

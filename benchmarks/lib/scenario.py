"""The base of every benchmark class (``Scenario``) and the measurements every row shares.

``Scenario`` sets the sampling of a class by its profile, stops a half-started setup's pool or
server, and gives every row ``time_run`` (one checked run) and ``track_mem_mb`` (the peak RSS
increment of the run, children included).  ``WriteThroughput`` adds ``track_throughput`` to the
suites that time a write apart from its check; ``measured_where`` limits a measurement to the
rows where it can differ.  ``preload`` is what a suite asks for at import: the once-per-commit
work of asv's forkserver.
"""

import abc
import functools
import itertools
import multiprocessing
import shutil
import threading
import time

import psutil

from .checks import exact, prepare

try:
    from asv_runner.benchmarks.mark import SkipNotImplemented  # n/a raised by a benchmark itself
except ImportError:  # outside asv (tests, by hand)
    class SkipNotImplemented(NotImplementedError):
        pass
from .settings import N_ITEMS, PROBE_ITEMS
from .subject import preload_subject, preloading


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


def _reset_peak():
    """Reset the kernel's record of this process's peak RSS (Linux); False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_rss():
    """This process's peak RSS since the last reset (``VmHWM``), bytes."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


def peak_rss_increment_mb(fn, interval=0.005):
    """Run ``fn`` once; return the peak RSS of this process plus its children above the start, MB.

    This process's own peak is the kernel's (``VmHWM``, reset before the run): the sampler, a
    Python thread, waits for the GIL, and a peak that lives while the run holds it (30 MB of
    items for 20 ms after a ``json.loads``) was missed in 11 of 300 runs: 1.5 MB instead of 30.
    The sampler still adds the children (pools, servers), which the kernel's figure does not.
    """
    proc = psutil.Process()
    base = peak = _rss_tree(proc)
    own_base = proc.memory_info().rss
    kernel = _reset_peak()
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
    peak = max(peak, _rss_tree(proc))
    if kernel:
        peak = max(peak, base + _peak_rss() - own_base)
    return max(0.0, (peak - base) / 1e6)


def measured_where(method, params, param_names, where):
    """``method`` for one class, measured only on its rows where ``where(**row)`` holds.

    asv records the other rows n/a without starting a process's setup (its ``skip_params``):
    a measurement that would say nothing there (a ceiling's memory, say) costs nothing.
    """
    @functools.wraps(method)
    def measured(self, *args):
        return method(self, *args)

    measured.skip_params = [row for row in itertools.product(*params)
                            if not where(**dict(zip(param_names, row, strict=True)))]
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
    apart from its check add ``track_throughput`` (``scenario.WriteThroughput``).  asv's ``peakmem_``
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


class WriteThroughput(abc.ABC):
    """``track_throughput`` of the suites that time a write apart from its check.

    A run sets ``self.last_wall`` to the wall time of its timed part (the write, the pipeline,
    the Phase 1 loop); throughput is ``n_items`` over it.  Abstract (``setup``), so that asv
    collects it only through the scenario classes.
    """

    last_wall = None

    @abc.abstractmethod
    def setup(self, *args):
        """The scenario's setup (``Scenario``)."""

    def track_throughput(self, *args):
        """Items per second: n_items over the timed part of one run (setup has warmed up)."""
        self.run()
        return self.n / self.last_wall

    track_throughput.unit = "items/s"


def timed(fn):
    """``fn()``'s wall time in seconds."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def preload(expect=exact, keys=None, loose_props=(), sizes=None):
    """Do the once-per-commit work now, in the process asv forks every benchmark from.

    Under ``launch_method = forkserver`` the suite is imported once per commit and every
    benchmark process is forked from that process, so stac-manager's import (about 0.5 s:
    pandas, pyarrow, pystac) and the schema validation of the expected items (about 4 ms an
    item on this suite's 2-core machines) are paid once per commit.  Each suite calls this at
    import; it does nothing where ``subject.preloading()`` says so (asv's discovery and
    ``setup_cache`` processes, pool workers, tests, ``STAC_BENCH_PRELOAD=0``): ``prepare`` in
    ``setup`` then does the checks' part per process.  ``sizes``: the ``n_items`` to prepare
    (default: ``N_ITEMS``; the probe's always).
    """
    if not preloading() or multiprocessing.parent_process() is not None:
        return
    preload_subject()
    for n in sorted({*(N_ITEMS if sizes is None else sizes), PROBE_ITEMS}):
        prepare(n, expect, keys, loose_props)

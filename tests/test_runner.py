"""The Runner's pools, the Scenario base, and what asv collects from benchmarks/."""

import inspect
import itertools
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import types
from pathlib import Path

import psutil
import pytest

from benchmarks import api_ingest
from benchmarks.lib import runners
from benchmarks.lib.runners import Runner
from benchmarks.lib.scenario import Scenario
from benchmarks.scale import SCALE_REPEAT

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
#: Names asv collects as benchmarks (asv_runner.benchmarks: time, timeraw, track, peakmem, mem).
PREFIXES = ("time_", "timeraw_", "track_", "peakmem_", "mem_")
#: Polls of a bounded wait (the count bounds it, not a wall-time assertion).
POLLS, POLL = 200, 0.05


def alive(pids):
    living = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                living.append(pid)
        except psutil.NoSuchProcess:
            pass
    return living


def wait_until(condition):
    for _ in range(POLLS):
        if condition():
            return True
        time.sleep(POLL)
    return condition()


# --- process pools die with the process that owns them ------------------------------------

OWNER = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, sys.argv[1])
    os.environ["STAC_BENCH_PRELOAD"] = "0"
    from benchmarks.lib.runners import Runner
    runner = Runner("processes", 2)
    print(" ".join(str(p.pid) for p in runner.pool._processes.values()), flush=True)
    time.sleep(600)
""")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_process_workers_die_with_the_benchmark_process(sig):
    # asv's timeout SIGTERMs, then SIGKILLs, the benchmark process: no teardown, no atexit.
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(ROOT)], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(pid) for pid in owner.stdout.readline().split()]
        assert len(pids) == 2 and alive(pids) == pids
        owner.send_signal(sig)
        owner.wait(30)
        gone = wait_until(lambda: not alive(pids))
    finally:
        owner.kill()
        owner.wait()
        for pid in alive(locals().get("pids", [])):
            psutil.Process(pid).kill()
    assert gone, f"workers {alive(pids)} outlived their owner"


@pytest.mark.timeout(120)
def test_close_kills_workers_that_do_not_finish():
    runner = Runner("processes", 2)
    pids = [p.pid for p in runner.pool._processes.values()]
    task = runner.pool.submit(time.sleep, 600)  # a task that never ends in time
    assert wait_until(task.running)
    runner.close(timeout=0.5)
    assert runner.pool is None
    assert wait_until(lambda: not alive(pids))


# --- a setup that fails closes what it started ---------------------------------------------

class _Failing(Scenario):
    version = "test"

    def setup(self, strategy):
        self.runner = Runner(strategy, 2)
        self.n, self.run = 1, lambda: None
        raise RuntimeError("a later step of setup failed")


def bench_threads():
    return [t for t in threading.enumerate() if t.name.startswith("bench")]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("strategy", ["processes", "threads", "semaphore"])
def test_a_setup_that_fails_after_starting_a_pool_leaves_nothing_running(strategy):
    before_children = {p.pid for p in psutil.Process().children(recursive=True)}
    bench = _Failing()
    with pytest.raises(RuntimeError, match="later step"):
        bench.setup(strategy)  # asv would skip teardown now
    assert bench.runner.pool is None
    assert wait_until(lambda: not bench_threads())
    assert wait_until(lambda: not multiprocessing.active_children())
    assert wait_until(lambda: {p.pid for p in psutil.Process().children(recursive=True)} <= before_children)


def test_a_teardown_that_fails_too_does_not_hide_the_setup_error():
    class Broken(_Failing):
        def teardown(self, *args):
            super().teardown(*args)
            raise OSError("teardown broke")

    with pytest.raises(RuntimeError, match="later step") as info:
        Broken().setup("threads")
    assert any("teardown broke" in note for note in info.value.__notes__)


def test_the_wrapped_setup_keeps_its_signature_for_asv():
    # asv checks the argument count of setup against the params: the wrapper must not hide it.
    params = list(inspect.signature(api_ingest.Search.setup).parameters)
    assert params == ["self", "roots", "n_items", "strategy", "concurrency", "condition"]
    assert len(api_ingest.Search.param_names) == len(params) - 2  # self, and setup_cache's value


# --- what asv collects -----------------------------------------------------------------------

def suite_modules():
    """Every module of benchmarks/, imported as asv imports them (private ones included)."""
    from asv_runner.discovery import disc_modules
    return list(disc_modules("benchmarks"))


def misnamed(module):
    """Helpers that asv would collect as benchmarks: top-level functions named like one, and such
    methods of a concrete class that is not a benchmark (no explicit ``version``) or that cannot
    take the benchmark's parameters (asv calls them with the parameter values)."""
    found = []
    for name, obj in vars(module).items():
        if name.startswith("_"):
            continue  # asv skips private names (a module's, not a method's)
        if inspect.isfunction(obj) and name.startswith(PREFIXES):
            found.append(f"{module.__name__}.{name}()")
        if inspect.isclass(obj) and not inspect.isabstract(obj):
            found += [f"{module.__name__}.{obj.__name__}.{m}()" for m in benchmark_methods(obj)
                      if not takes_params(obj, m)]
    return found


def benchmark_methods(cls):
    return [m for m in dir(cls) if m.startswith(PREFIXES) and callable(getattr(cls, m))]


def takes_params(cls, method):
    if not isinstance(getattr(cls, "version", None), str):
        return False
    n_args = len(getattr(cls, "param_names", [])) + (1 if hasattr(cls, "setup_cache") else 0)
    try:
        inspect.signature(getattr(cls, method)).bind(None, *range(n_args))
    except TypeError:
        return False
    return True


def test_no_helper_is_named_like_a_benchmark():
    modules = suite_modules()
    assert {"benchmarks.lib.api_clients", "benchmarks.api_ingest", "benchmarks.lib.runners"} <= \
        {m.__name__ for m in modules}
    found = [hit for module in modules for hit in misnamed(module)]
    assert not found, f"asv would collect these as benchmarks: {found}"


def test_the_walk_finds_planted_helpers():
    planted = types.ModuleType("benchmarks._planted")
    exec(textwrap.dedent("""
        import abc
        def time_windows(interval, chunks): pass
        class Helper:
            def track_x(self): pass
        class Bench:
            version = "1"
            param_names = ["n"]
            def time_run(self, *args): pass
            def time_windows(self, interval, chunks, extra): pass
        class Abstract(abc.ABC):
            @abc.abstractmethod
            def setup(self): pass
            def time_run(self): pass
    """), planted.__dict__)
    assert misnamed(planted) == ["benchmarks._planted.time_windows()", "benchmarks._planted.Helper.track_x()",
                                 "benchmarks._planted.Bench.time_windows()"]


def test_asv_collects_only_methods_of_versioned_benchmark_classes():
    from asv_runner.discovery import disc_benchmarks

    found, bad = 0, []
    for bench in disc_benchmarks(str(BENCHMARKS)):
        found += 1
        owner = getattr(bench.func, "__self__", None)
        if owner is None:
            bad.append(f"{bench.name}: a module-level function")
        elif not isinstance(getattr(type(owner), "version", None), str):
            bad.append(f"{bench.name}: {type(owner).__name__} has no explicit version")
    assert found and not bad, bad


def test_the_proxy_script_imports_neither_the_package_nor_aiohttp_on_import():
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import api_proxy; "
            "print('benchmarks' in sys.modules, 'aiohttp' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(BENCHMARKS / "lib")], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.split() == ["False", "False"]


def test_the_pool_limits_are_bounded():
    assert 0 < runners.POOL_CLOSE_TIMEOUT and 0 < runners.POOL_START_TIMEOUT


PRELOAD_PROBE = """
import sys
sys.path.insert(0, {root!r})
sys.argv = ["benchmark.py", "run_server"]  # what asv's forkserver runs: it preloads


def preloaded(_):
    from benchmarks.lib import checks
    return sorted(n for n, *_ in checks._EXPECTED)


if __name__ == "__main__":
    from benchmarks import file_ingest  # noqa: F401 - a suite: importing it preloads
    from benchmarks.lib import checks, runners
    runner = runners.Runner("processes", 2)
    try:
        print(sorted(n for n, *_ in checks._EXPECTED), runner.map(preloaded, [0, 1]))
    finally:
        runner.close()
"""


def test_pool_workers_of_a_preloading_process_do_not_preload_again(tmp_path):
    """asv's process preloads the checks; the ``processes`` workers it spawns must not.

    A spawned worker inherits ``sys.argv`` and imports the suite while unpickling its task:
    it used to pay the whole preload again (12 s a worker at 1,000 items) in every setup.
    """
    script = tmp_path / "benchmark.py"
    script.write_text(PRELOAD_PROBE.format(root=str(ROOT)))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "STAC_BENCH_PRELOAD": "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[3, 60] [[], []]"


def test_the_profile_decides_the_sampling():
    """History classes (Controls below full-profile classes included) take up to 3 samples; the
    full profile's own classes one, as asv reads it: a further sample would redo their setup; the
    scale selection's up to 3 within 20 s (one at 100,000 items)."""
    from asv_runner.discovery import disc_benchmarks

    from benchmarks.lib.scenario import FULL_REPEAT, HISTORY_REPEAT

    seen = {}
    for bench in disc_benchmarks(str(BENCHMARKS)):
        owner = type(getattr(bench.func, "__self__", None))
        if bench.type == "time" and issubclass(owner, Scenario):
            seen[bench.name] = (getattr(owner, "profile", None), bench.repeat)
    assert seen["output.Control.time_run"] == ("history", HISTORY_REPEAT)  # below ItemFiles
    assert seen["file_ingest.Control.time_run"] == ("history", HISTORY_REPEAT)
    assert seen["file_ingest.Directory.time_run"] == (None, FULL_REPEAT)
    assert seen["scale.FileDirectory.time_run"] == ("scale", SCALE_REPEAT)  # below DirectoryModule
    assert seen["output.ModuleJsonMemory.time_run"] == (None, FULL_REPEAT)  # below ModuleJson
    rule = {"history": HISTORY_REPEAT, "scale": SCALE_REPEAT}
    wrong = {name: v for name, v in seen.items() if v[1] != rule.get(v[0], FULL_REPEAT)}
    assert not wrong and len(seen) > 20, wrong


def test_measured_where_skips_rows_before_setup():
    """asv skips the rows ``measured_where`` leaves out without calling ``setup`` (n/a, no cost),
    and runs the others as the method it wraps."""
    from asv_runner.discovery import disc_benchmarks

    benches = {b.name: b for b in disc_benchmarks(str(BENCHMARKS))}
    mem = benches["output.ItemFiles.track_mem_mb"]
    rows = list(itertools.product(*mem._params))
    n = rows[0][0]
    calls = []
    mem._setups = [lambda *args: calls.append(args)]
    skipped = {}
    for i, row in enumerate(rows):
        mem.set_param_idx(i)
        skipped[row] = mem.do_setup()
    assert skipped[(n, "ceiling_write", 1, False)] and skipped[(n, "loop", 1, True)]
    assert not skipped[(n, "loop", 1, False)] and not skipped[(n, "threads", 5, False)]
    assert len(calls) == sum(not s for s in skipped.values())  # setup ran on the measured rows only
    assert mem.unit == "MB" and benches["output.Control.track_mem_mb"]._skip_tuples == mem._skip_tuples
    search = benches["api_ingest.Search.track_mem_mb"]
    want = {row for row in itertools.product(*search._params) if row[3] != 0 or row[1].startswith("ceiling_")}
    assert set(search._skip_tuples) == want and (n, "ceiling_fetch", 5, 0) in want
    assert "api_ingest.Faults.track_mem_mb" not in benches and "file_ingest.Malformed.track_mem_mb" not in benches
    assert "api_ingest.FaultsModule.track_mem_mb" in benches

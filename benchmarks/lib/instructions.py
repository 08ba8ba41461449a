"""Instruction counts of benchmark rows under callgrind: a number a 5 % change shows in.

Wall time on the suite's 2-core VMs moves 1.3-1.8x between runs; the instructions one run
executes do not.  ``count_rows`` runs many rows in ONE valgrind process (stac-manager's
import, about 9 s under valgrind, is paid once): after the import, each row runs in a process
forked from it (so a row's count does not depend on the rows before it), as ``time_run`` runs it:

1. ``setup_cache`` (if the class has one), the class instantiated and ``setup`` called, outside
   the count;
2. ``run()`` once more, outside the count (the warm-up: lazy imports, per-process caches,
   the schema validation of each distinct document);
3. ``gc.collect()``, then the count: ``bench_start()`` -> ``run()`` -> ``bench_stop(name)``
   (``callgrind_client.c``), ``repeats`` times;
4. ``teardown``.

What is counted is exactly ``run()``: stac-manager's work *and* the suite's check of every
item (the check is inside ``run`` in this suite).  Both are deterministic, so a change of the
count is stac-manager's or the suite's; the suite's code is part of the cache key of any
stored count for that reason.  Only the benchmark process is counted: a row that spawns
processes (a ``processes`` pool, the STAC API server and its proxy) counts what the benchmark
process does, not its children (valgrind runs them natively: no ``--trace-children``).

Sources of run-to-run variation fixed here: the hash seed (``PYTHONHASHSEED=0``: set and
dict order, string hashing), the address layout (``setarch -R``: addresses feed
``id()``-keyed sets and dicts and the allocators' paths), garbage collection (a full
``gc.collect()`` before each count: the collector's thresholds count allocations, so the
counted run starts from the same state every time), the rows before a row (a fork each),
helper threads started at import, Arrow's SIMD level, malloc arenas and jemalloc's clock-driven
purging (``CHILD_ENV``), the threads a run starts (one executor thread), thread scheduling (one CPU per valgrind
process, ``--fair-sched``, a long GIL switch interval), and the preload (``STAC_BENCH_PRELOAD=0``).
stac-manager's ``asyncio.to_thread`` started 1 to 6 pool threads per run depending on a race
between a worker going idle and the next submit (about 50-100 k instructions a thread): every
event loop of the child gets a default executor of one thread (``callgrind_child``).  Left: a
row whose client waits on the network (the API suite's aiohttp ``Control``) counts the event
loop's wake-ups, which follow how the server's bytes arrive: its count moved 15 % between a
quiet and a loaded machine; stac-manager's API row (blocking reads in a thread) moved 0.1 %.

``instructions.unavailable()`` says in one line why counts cannot be taken here (no
valgrind, no C compiler, no ``valgrind/callgrind.h``, no ``setarch``), or None.  Standard
library and ``settings`` only: the suites are imported by name, in the child process.
"""

import collections
import ctypes
import dataclasses
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .settings import cache_dir

#: The client requests' source, built per machine into ``helper_dir()``.
SOURCE = Path(__file__).with_name("callgrind_client.c")
#: The header the source includes (valgrind's development header, Debian's ``valgrind`` package).
HEADER = "valgrind/callgrind.h"
#: The project root: the child runs ``python -m benchmarks.lib.callgrind_child`` from it.
ROOT = Path(__file__).resolve().parents[2]
#: valgrind's options.  ``--instr-atstart=no``: nothing is counted (and the import runs about
#: 4x faster) until the first ``bench_start()``; ``--fair-sched=yes``: threads take valgrind's
#: lock in turn (a ticket lock), not as the kernel wakes them.
VALGRIND_OPTIONS = ("--tool=callgrind", "--instr-atstart=no", "--fair-sched=yes")
#: The child's GIL switch interval (s): a thread that waits this long for the GIL forces a switch,
#: a wall-time event.  Python's 5 ms is about 0.1 ms of native work under valgrind, so forced
#: switches (and the count) depended on the machine's load; at 1 s a switch happens where a thread
#: blocks (a read, a lock, the event loop's wait), the same places every run.
SWITCH_INTERVAL = 1.0
#: Fixed in the child's environment: the hash seed (set and dict order, string hashes) and no
#: helper threads started at import (OpenBLAS's pool, jemalloc's background purger in pyarrow,
#: arrow's CPU pool at one thread).  A thread doing wall-time-driven work before the rows fork
#: leaves a different heap behind each run: every row's count moved by up to 0.4 %.  Arrow picks
#: its SIMD kernels from /proc/cpuinfo, not from the (valgrind-emulated) CPUID: on an AVX-512
#: machine it ran AVX-512 code that valgrind 3.19 cannot decode (SIGILL in the Parquet reader);
#: AVX2 at most, the same kernels on every x86-64 machine that has AVX2.  One malloc arena: each
#: new thread (a run's executor thread, Arrow's pool) got another arena of glibc's, and how much
#: the heap then consolidated moved the Parquet rows by up to 1 % (0.2 % with one arena).  No
#: time-based purging in Arrow's jemalloc (its decay runs by the clock).
CHILD_ENV = {"PYTHONHASHSEED": "0", "STAC_BENCH_PRELOAD": "0", "OPENBLAS_NUM_THREADS": "1",
             "OMP_NUM_THREADS": "1", "ARROW_USER_SIMD_LEVEL": "AVX2", "MALLOC_ARENA_MAX": "1",
             "JE_ARROW_MALLOC_CONF": "background_thread:false,dirty_decay_ms:-1,muzzy_decay_ms:-1"}
#: stac-manager's modules the child imports before the first row, timed as "import".
PREIMPORT = ("stac_manager.modules.ingest", "stac_manager.modules.output", "stac_manager.modules.update",
             "stac_manager.core.context", "stac_manager.core.checkpoints", "stac_manager.core.failures")


# --- the helper: built once per machine, loaded with ctypes ----------------------------------

def helper_dir():
    """Where built helpers live: ``callgrind`` in the data cache (per machine)."""
    return cache_dir() / "callgrind"


def helper_path():
    """The helper's shared library path, named by the source's digest and this machine's arch."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    return helper_dir() / f"callgrind_client-{platform.machine()}-{digest}.so"


def _compiler():
    for name in (os.environ.get("CC"), "gcc", "cc"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _one_line(text, limit=300):
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    line = lines[-1] if lines else str(text).strip()
    return line if len(line) <= limit else line[:limit - 3] + "..."


def build_helper():
    """Build the helper if it is not built; return ``(path, None)`` or ``(None, reason)``.

    Atomic: compiled to a temporary file beside it, then renamed (processes racing to build it
    each rename a complete library over the same name).
    """
    path = helper_path()
    if path.exists():
        return path, None
    cc = _compiler()
    if cc is None:
        return None, "no C compiler (gcc or cc) on PATH to build the callgrind client"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        return None, f"cannot write the callgrind client under {path.parent}: {exc}"
    try:
        done = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", tmp, str(SOURCE)],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            if HEADER in done.stderr:
                return None, f"{HEADER} is missing (install valgrind's development header: apt-get install valgrind)"
            return None, f"building the callgrind client failed: {_one_line(done.stderr)}"
        os.replace(tmp, path)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"building the callgrind client failed: {exc}"
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path, None


def setarch_command():
    """``setarch <arch> -R``: the same address layout every run (no ASLR), or None."""
    setarch = shutil.which("setarch")
    return [setarch, platform.machine(), "-R"] if setarch else None


def unavailable():
    """Why instruction counts cannot be taken on this machine (one line), or None."""
    if sys.platform != "linux":
        return f"instruction counts need Linux (valgrind, setarch): this is {sys.platform}"
    if shutil.which("valgrind") is None:
        return "valgrind is not on PATH (apt-get install valgrind)"
    if setarch_command() is None:
        return "setarch (util-linux) is not on PATH: the address layout cannot be fixed"
    _, reason = build_helper()
    return reason


def load_client(path=None):
    """The helper loaded with ctypes: ``bench_start()``, ``bench_stop(name)``, ``bench_running()``."""
    lib = ctypes.CDLL(str(path or helper_path()))
    lib.bench_start.restype = None
    lib.bench_start.argtypes = []
    lib.bench_stop.restype = None
    lib.bench_stop.argtypes = [ctypes.c_char_p]
    lib.bench_running.restype = ctypes.c_int
    lib.bench_running.argtypes = []
    return lib


# --- rows and their counts -------------------------------------------------------------------

def row_spec(key, module, cls, params, n):
    """A row as ``count_rows`` takes it (JSON-able): ``n`` is the items one run handles."""
    return {"key": key, "module": module, "class": cls, "params": list(params), "n": int(n)}


@dataclasses.dataclass
class RowCount:
    """One row's counts: ``counts`` holds one instruction total per counted run (every repeat of
    every process); ``skipped`` (n/a, the reason) or ``error`` (the run failed, the text) when
    there is no count."""

    key: str
    n: int
    counts: list = dataclasses.field(default_factory=list)
    skipped: str = None
    error: str = None
    #: Seconds the child spent on this row, by phase (setup, warmup, counted), per process.
    seconds: list = dataclasses.field(default_factory=list)

    @property
    def per_item(self):
        """Median instructions of one counted run over ``n``; None without a count."""
        return statistics.median(self.counts) / self.n if self.counts and not self.error else None

    @property
    def spread(self):
        """``max / min - 1`` of the counts (0.0 for one count); None without a count."""
        if not self.counts or self.error:
            return None
        return max(self.counts) / min(self.counts) - 1 if min(self.counts) > 0 else float("inf")


@dataclasses.dataclass
class Process:
    """One valgrind process: its rows' ``n``, wall seconds, and the child's import seconds."""

    n: int
    wall: float
    import_seconds: float = None
    returncode: int = None
    error: str = None


def count_rows(rows, repeats=1, processes=1, jobs=1, python=None, paths=None, preimport=PREIMPORT,
               timeout=3600, keep=None, options=(), switchinterval=SWITCH_INTERVAL, pin=True, one_thread=True):
    """Count the instructions of one ``run()`` of each row: ``({key: RowCount}, [Process])``.

    Rows are grouped by ``n`` (``STAC_BENCH_SCALE`` of their process: the suites read it at
    import); each group runs in ``processes`` valgrind processes of ``repeats`` counted runs a
    row, ``jobs`` processes at a time (counts do not depend on the machine's load).
    ``python``: the interpreter (default this one); ``paths``: ``sys.path`` entries the child
    puts first (default: this process's, so a stac-manager found here is found there).
    ``keep``: a folder to keep each process's dumps and valgrind's log in (``callgrind_annotate``
    reads them: where a row's instructions go, what differs between two runs).  ``one_thread``:
    every event loop's default executor has one thread (False: Python's own, for measuring how
    much threads move a count).
    Never raises for a row: n/a rows carry ``skipped``, failed ones ``error``; without valgrind
    every row is n/a with ``unavailable()``'s reason.
    """
    rows = [dict(r) for r in rows]
    keys = [r["key"] for r in rows]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate row keys: {sorted({k for k in keys if keys.count(k) > 1})}")
    result = {r["key"]: RowCount(r["key"], r["n"]) for r in rows}
    reason = unavailable()
    if reason is not None:
        for count in result.values():
            count.skipped = reason
        return result, []
    groups = {}
    for row in rows:
        groups.setdefault(row["n"], []).append(row)
    tasks = [(n, group) for n, group in sorted(groups.items()) for _ in range(processes)]
    paths = [p for p in (sys.path if paths is None else paths) if p]
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        done = list(pool.map(lambda task: _one_process(task[1], task[0], repeats, python or sys.executable,
                                                       paths, preimport, timeout, keep, options,
                                                       (switchinterval, one_thread), pin), tasks))
    procs = []
    for proc, found in done:
        procs.append(proc)
        for key, got in found.items():
            count = result[key]
            if got.get("skipped"):
                count.skipped = got["skipped"]
            elif got.get("error"):
                count.error = count.error or got["error"]
            else:
                count.counts.extend(got["counts"])
            if got.get("seconds"):
                count.seconds.append(got["seconds"])
    return result, procs


def child_env(n, base=None):
    """The child's environment: this one, with the count's fixed knobs and ``n`` items."""
    env = dict(os.environ if base is None else base)
    env.update(CHILD_ENV, STAC_BENCH_SCALE=str(n))
    return env


#: Valgrind processes of this process running on each CPU (``_one_process`` pins each to the
#: least used one).
_ON_CPU = collections.Counter()
_ON_CPU_LOCK = threading.Lock()


def _take_cpu():
    with _ON_CPU_LOCK:
        cpu = min(sorted(os.sched_getaffinity(0)), key=lambda c: _ON_CPU[c])
        _ON_CPU[cpu] += 1
        return cpu


def _give_cpu(cpu):
    with _ON_CPU_LOCK:
        _ON_CPU[cpu] -= 1


def _one_process(rows, n, repeats, python, paths, preimport, timeout, keep, options, threads, pin):
    """One valgrind process over ``rows``: ``(Process, {key: what the child found})``.  ``threads``:
    ``(switch interval, one executor thread)``."""
    cpu = _take_cpu() if pin else None
    try:
        return _counted_process(rows, n, repeats, python, paths, preimport, timeout, keep, options, threads, cpu)
    finally:
        if cpu is not None:
            _give_cpu(cpu)


def _counted_process(rows, n, repeats, python, paths, preimport, timeout, keep, options, threads, cpu):
    helper, _ = build_helper()
    switchinterval, one_thread = threads
    with tempfile.TemporaryDirectory(prefix="callgrind-") as tmp:
        tmp = Path(tmp)
        spec, out = tmp / "spec.json", tmp / "out.json"
        spec.write_text(json.dumps({"rows": rows, "repeats": repeats, "paths": paths, "helper": str(helper),
                                    "preimport": list(preimport), "switchinterval": switchinterval,
                                    "cpu": cpu, "one_thread": one_thread}))
        command = [*setarch_command(), "valgrind", *VALGRIND_OPTIONS, *options, f"--callgrind-out-file={tmp}/cg.%p",
                   python, "-m", "benchmarks.lib.callgrind_child", str(spec), str(out)]
        start = time.monotonic()
        try:
            done = subprocess.run(command, cwd=ROOT, env=child_env(n), capture_output=True, text=True,
                                  timeout=timeout)
            returncode, stderr = done.returncode, done.stderr
        except subprocess.TimeoutExpired as exc:
            returncode, stderr = None, f"valgrind did not finish in {timeout} s: {exc}"
        wall = time.monotonic() - start
        found = json.loads(out.read_text()) if out.exists() else {"rows": {}}
        dumps = read_dumps(tmp)
        if keep is not None:
            (tmp / "valgrind.log").write_text(stderr or "")
            shutil.copytree(tmp, Path(keep) / f"n{n}-{tmp.name}", ignore=shutil.ignore_patterns("*.tmp"))
    proc = Process(n, wall, found.get("import_seconds"), returncode)
    if returncode != 0:
        proc.error = f"valgrind exited {returncode}: {_one_line(_python_error(stderr))}"
    results = {}
    for index, row in enumerate(rows):
        got = dict(found["rows"].get(row["key"], {}))
        if not got.get("skipped") and not got.get("error"):
            names = [f"row{index}.{rep}" for rep in range(repeats)]
            missing = [name for name in names if name not in dumps]
            if missing:
                got["error"] = proc.error or f"no callgrind dump {missing[0]} for {row['key']}"
            else:
                got["counts"] = [dumps[name] for name in names]
        results[row["key"]] = got
    return proc, results


def _python_error(stderr):
    """The Python error in valgrind's stderr (its own lines start with ``==pid==``)."""
    lines = [line for line in (stderr or "").splitlines() if not re.match(r"==\d+==", line)]
    return "\n".join(lines) or stderr or ""


DUMP_NAME = re.compile(r"^desc: Trigger: Client Request: (.+)$", re.M)
DUMP_TOTALS = re.compile(r"^totals: (\d+)", re.M)


def read_dumps(folder):
    """``{dump name: instructions}`` of the callgrind dumps ``cg.<pid>.<k>`` in ``folder``."""
    found = {}
    for path in Path(folder).glob("cg.*.*"):
        text = path.read_text(errors="replace")
        name, totals = DUMP_NAME.search(text), DUMP_TOTALS.search(text)
        if name and totals:
            found[name.group(1).strip()] = int(totals.group(1))
    return found

"""The process ``instructions.count_rows`` runs under valgrind (and ``allocations.peak_rows``
runs natively): ``python -m benchmarks.lib.callgrind_child SPEC OUT``.

It imports stac-manager and the suites once, then runs each row in a process forked from that
state: ``setup_cache`` and ``setup`` (outside the measurement), ``run()`` once as the warm-up
(outside), ``gc.collect()``, then per repeat the measured ``run()``, then ``teardown``:

- ``mode: "instructions"``: ``bench_start()`` -> ``run()`` -> ``bench_stop(name)``; the counts are
  callgrind's dumps, named ``row<index>.<repeat>``;
- ``mode: "allocations"``: ``run()`` under ``tracemalloc``; the peak of the Python allocations
  above what was allocated before the run (bytes) goes to ``OUT`` as ``peaks``.

What each row found (n/a, an error, the seconds of each phase) goes to ``OUT``.  Every event loop
the rows start gets a default executor of one thread (``OneThreadExecutors``): with Python's own
(up to 6 threads for stac-manager's ``asyncio.to_thread``), how many threads one run started
depended on a race, and each costs about 50-100 k instructions and its stack.
"""

import asyncio
import gc
import importlib
import json
import os
import sys
import time
import traceback
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .instructions import load_client


def _child(spec_path, out_path):
    """Import once, then each row in a process forked from this one (its state after the import)."""
    spec = json.loads(Path(spec_path).read_text())
    for entry in reversed(spec["paths"]):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    if spec.get("switchinterval"):
        sys.setswitchinterval(spec["switchinterval"])
    if spec.get("cpu") is not None:
        os.sched_setaffinity(0, {spec["cpu"]})  # before any thread starts: every thread inherits it
    if spec.get("one_thread", True):
        asyncio.set_event_loop_policy(OneThreadExecutors())
    client = load_client(spec["helper"]) if spec.get("mode", "instructions") == "instructions" else None
    out = {"rows": {}, "running_on_valgrind": bool(client and client.bench_running())}
    start = time.monotonic()
    for name in spec["preimport"]:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S110 - a commit without it says n/a in setup
            pass
    for module in dict.fromkeys(row["module"] for row in spec["rows"]):
        importlib.import_module(module)
    out["import_seconds"] = time.monotonic() - start
    statuses = []
    gc.collect()
    for index, row in enumerate(spec["rows"]):  # nothing the rows return is read until the last one ran
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                found = _child_row(client, index, row, spec["repeats"])
            except BaseException as exc:  # noqa: BLE001 - reported as the row's error
                found, code = {"error": f"the row's process failed: {_describe(exc)}"}, 1
            try:
                _write_json(f"{out_path}.{index}", found)
            finally:
                os._exit(code)
        statuses.append(os.waitpid(pid, 0)[1])
    for index, row in enumerate(spec["rows"]):
        path = Path(f"{out_path}.{index}")
        if path.exists():
            out["rows"][row["key"]] = json.loads(path.read_text())
        else:
            out["rows"][row["key"]] = {"error": f"the row's process died (wait status {statuses[index]})"}
    _write_json(out_path, out)


def _child_row(client, index, row, repeats):
    """One row, in its own forked process: setup_cache, setup, warm-up, the counted runs, teardown."""
    cls = getattr(importlib.import_module(row["module"]), row["class"])
    seconds = {}
    args = list(row["params"])
    clock = time.monotonic()
    if hasattr(cls, "setup_cache"):
        try:
            args.insert(0, cls().setup_cache())
        except NotImplementedError as exc:
            return {"skipped": f"setup_cache: {exc}"}
        except Exception as exc:  # noqa: BLE001 - reported, the caller fails loudly
            return {"error": f"setup_cache raised {_describe(exc)}"}
    bench = cls()
    try:
        bench.setup(*args)
    except NotImplementedError as exc:
        return {"skipped": str(exc) or type(exc).__name__}
    except Exception as exc:  # noqa: BLE001
        return {"error": f"setup raised {_describe(exc)}"}
    seconds["setup"] = time.monotonic() - clock
    try:
        clock = time.monotonic()
        try:
            bench.run()  # the warm-up, outside the count
        except NotImplementedError as exc:
            return {"skipped": str(exc) or type(exc).__name__}
        seconds["warmup"] = time.monotonic() - clock
        clock = time.monotonic()
        peaks = [_measure(client, bench.run, f"row{index}.{rep}") for rep in range(repeats)]
        seconds["counted"] = time.monotonic() - clock
    except Exception as exc:  # noqa: BLE001
        return {"error": f"run raised {_describe(exc)}"}
    finally:
        try:
            bench.teardown(*args)
        except Exception:  # noqa: BLE001, S110 - the count is taken; a teardown error is asv's to see
            pass
    return {"seconds": seconds} if client else {"seconds": seconds, "peaks": peaks}


class OneThreadExecutors(asyncio.DefaultEventLoopPolicy):
    """New event loops (``asyncio.run``'s) get a default executor of one thread."""

    def new_event_loop(self):
        loop = super().new_event_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
        return loop


def _measure(client, run, name):
    """One measured ``run()``: counted by callgrind (``client``), else its Python allocations' peak
    above the start (bytes)."""
    gc.collect()
    if client is not None:
        client.bench_start()
        try:
            run()
        finally:
            client.bench_stop(name.encode())
        return None
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        run()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def _describe(exc):
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    at = f" (at {Path(where.filename).name}:{where.lineno})" if where else ""
    return f"{type(exc).__name__}: {exc}{at}"


def _write_json(path, data):
    tmp = f"{path}.tmp"
    Path(tmp).write_text(json.dumps(data))
    os.replace(tmp, path)


if __name__ == "__main__" and len(sys.argv) == 3:
    _child(sys.argv[1], sys.argv[2])

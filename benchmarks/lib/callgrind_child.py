"""The process ``instructions.count_rows`` runs under valgrind: ``python -m benchmarks.lib.callgrind_child
SPEC OUT``.

It imports stac-manager and the suites once, then runs each row in a process forked from that
state: ``setup_cache`` and ``setup`` (outside the count), ``run()`` once as the warm-up (outside),
``gc.collect()``, then ``bench_start()`` -> ``run()`` -> ``bench_stop(name)`` per repeat, then
``teardown``.  What each row found (n/a, an error, the seconds of each phase) goes to ``OUT``;
the counts themselves are callgrind's dumps, named ``row<index>.<repeat>``.
"""

import gc
import importlib
import json
import os
import sys
import time
import traceback
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
    client = load_client(spec["helper"])
    out = {"rows": {}, "running_on_valgrind": client.bench_running()}
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
        for rep in range(repeats):
            gc.collect()
            client.bench_start()
            try:
                bench.run()
            finally:
                client.bench_stop(f"row{index}.{rep}".encode())
        seconds["counted"] = time.monotonic() - clock
    except Exception as exc:  # noqa: BLE001
        return {"error": f"run raised {_describe(exc)}"}
    finally:
        try:
            bench.teardown(*args)
        except Exception:  # noqa: BLE001, S110 - the count is taken; a teardown error is asv's to see
            pass
    return {"seconds": seconds}


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

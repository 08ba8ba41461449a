"""The peak of a row's Python allocations in one run: a memory number that repeats.

``track_mem_mb`` (RSS, sampled) moves without cause between runs of the same code: what the
process inherited from asv's forkserver, the allocator's free lists and arenas, and a 5 ms
sampler decide what one run adds (``docs/gate.md``).  ``peak_rows`` runs rows natively, in ONE
process (``callgrind_child`` with ``mode: "allocations"``, a fork per row, the same fixed
environment as the instruction counts), and takes ``tracemalloc``'s peak of the Python
allocations of one ``run()`` above its start, after a warm-up run.

What it sees: every object and buffer Python's allocators hand out (items, dicts, strings,
bytes read, lists a strategy holds).  What it cannot see: memory of C libraries that allocate
with their own allocator (Arrow's buffers, which the Parquet rows hold; orjson's output is a
``bytes`` object and is seen), thread stacks, and freed memory the process keeps.
"""

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .instructions import PREIMPORT, ROOT, Process, RowCount, child_env


class RowPeak(RowCount):
    """One row's peaks (``counts``: bytes, one per measured run), or why there is none."""

    @property
    def mb(self):
        """Median peak, MB; None without one."""
        return statistics.median(self.counts) / 1e6 if self.counts and not self.error else None


def peak_rows(rows, repeats=1, python=None, paths=None, preimport=PREIMPORT, timeout=3600):
    """Measure each row's allocation peak: ``({key: RowPeak}, [Process])``, one process per ``n``.

    ``rows`` as ``instructions.row_spec`` makes them (``n``: the items one run handles).  Never
    raises for a row: n/a rows carry ``skipped``, failed ones ``error``.
    """
    result = {r["key"]: RowPeak(r["key"], r["n"]) for r in rows}
    groups = {}
    for row in rows:
        groups.setdefault(row["n"], []).append(dict(row))
    paths = [p for p in (sys.path if paths is None else paths) if p]
    procs = []
    for n, group in sorted(groups.items()):
        proc, found = _one_process(group, n, repeats, python or sys.executable, paths, preimport, timeout)
        procs.append(proc)
        for key, got in found.items():
            peak = result[key]
            peak.skipped, peak.error = got.get("skipped"), got.get("error")
            peak.counts = list(got.get("peaks") or [])
            peak.seconds = [got["seconds"]] if got.get("seconds") else []
    return result, procs


def _one_process(rows, n, repeats, python, paths, preimport, timeout):
    with tempfile.TemporaryDirectory(prefix="allocations-") as tmp:
        spec, out = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec.write_text(json.dumps({"rows": rows, "repeats": repeats, "paths": paths, "mode": "allocations",
                                    "preimport": list(preimport)}))
        start = time.monotonic()
        try:
            done = subprocess.run([python, "-m", "benchmarks.lib.callgrind_child", str(spec), str(out)], cwd=ROOT,
                                  env=child_env(n), capture_output=True, text=True, timeout=timeout)
            returncode, stderr = done.returncode, done.stderr
        except subprocess.TimeoutExpired as exc:
            returncode, stderr = None, f"the allocations process did not finish in {timeout} s: {exc}"
        found = json.loads(out.read_text()) if out.exists() else {"rows": {}}
    proc = Process(n, time.monotonic() - start, found.get("import_seconds"), returncode)
    if returncode != 0:
        lines = [line for line in (stderr or "").splitlines() if line.strip()]
        proc.error = f"the allocations process exited {returncode}: {lines[-1] if lines else ''}"
    return proc, {row["key"]: found["rows"].get(row["key"]) or {"error": proc.error or "no result"} for row in rows}

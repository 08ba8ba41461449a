"""``track_instructions`` (the instructions one item costs, counted by callgrind) and
``track_alloc_mb`` (the peak of one run's Python allocations): the history rows' numbers that repeat.

Wall time on the suite's 2-core VMs moves 1.3-1.8x between runs of the same code; instruction
counts repeat to 0.5 % (``instructions``), so a 5 % change of stac-manager's per-item work shows.
A history class gets both by inheriting ``Counted`` (same params as its ``time_run`` and
``track_mem_mb``, so the report and the gate pair them by name).  RSS (``track_mem_mb``) moves
without cause between runs; the allocation peak (``allocations``) repeats.

Counting pays stac-manager's import under valgrind (about 10 s) once per commit, not per row:
the first ``track_instructions`` of a commit counts every counted row of every suite imported
in its process (one valgrind process, a fork per row) at ``COUNT_ITEMS`` items, under a lock,
and beside it, natively, the allocation peak of every row at ``COUNT_ITEMS`` items too (one
process, on the other CPU: about 10 s), and keeps both in ``<cache_dir>/instructions/<key>.json``; the other rows
read them.  The
key is a digest of the installed stac-manager's files, the suite's code and ``COUNT_ITEMS``:
another commit, or another suite, is another file.

Counted rows: the history params (``history_params``) at one worker; a class whose count follows
the machine says why in ``instructions_na`` (its allocation peaks are still taken).  With threads the count
follows the scheduler (n/a, with the reason); a row that is n/a or fails in the counting process
is n/a or fails here, with the child's reason.  Without valgrind (macOS, Windows, no compiler or
header) every instruction row is n/a with ``instructions.unavailable()``'s one line; the
allocation peaks need only Python.
"""

import abc
import fcntl
import functools
import hashlib
import importlib.util
import itertools
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import allocations, instructions
from .scenario import SkipNotImplemented, measured_where
from .settings import COUNT_ITEMS, COUNTS, cache_dir

# COUNT_ITEMS (30): per-item counts are linear in n (every file-ingest, output and pipeline row at
# 100 and 200 items within 1 %; at 30 items a run's fixed cost adds 1-3 % per item), and at 30 items
# real stac-manager's rows repeat within 0.35 % while one valgrind process costs 55 s, not 110.
#: Where the counts of each commit are kept.
FOLDER = "instructions"
SUITE = Path(__file__).resolve().parents[1]
#: The history classes of every suite imported in this process, in import order.
COUNTED = []


def _digest_files(h, root, pattern):
    for path in sorted(Path(root).rglob(pattern)):
        if "__pycache__" not in path.parts:
            h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")


def commit_key():
    """A digest of the installed stac-manager's files, the suite's code, ``COUNT_ITEMS``, the
    environment (asv's env folder names its Python and matrix) and the commit asv installed
    (``ASV_COMMIT``): a pre-merge run's twin of a commit (the same tree) is counted anew, not read."""
    h = hashlib.sha256(f"n={COUNT_ITEMS}\0{sys.prefix}\0{sys.version}\0{os.environ.get('ASV_COMMIT', '')}\0"
                       .encode())
    spec = importlib.util.find_spec("stac_manager")
    for location in (spec.submodule_search_locations or []) if spec else []:
        _digest_files(h, location, "*.py")
    _digest_files(h, SUITE, "*.py")
    _digest_files(h, SUITE, "*.c")
    return h.hexdigest()[:24]


def row_key(cls, params):
    """``module.Class(strategy, ...)``: a row without its ``n_items`` (counts are per item)."""
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}({', '.join(map(repr, params[1:]))})"


def is_counted(cls, **row):
    """A row of ``cls`` is counted at one worker, at its ``history_params``."""
    chosen = getattr(cls, "history_params", None) or {}
    return row.get("concurrency", 1) == 1 and all(row.get(k) == v for k, v in chosen.items())


def counted_rows(cls):
    """The params rows of ``cls`` that are counted, with ``COUNT_ITEMS`` as their ``n_items``."""
    names = list(cls.param_names)
    assert names[0] == "n_items", f"{cls.__name__}: n_items must be the first parameter"
    return [(COUNT_ITEMS, *row[1:]) for row in itertools.product(*cls.params)
            if is_counted(cls, **dict(zip(names, row, strict=True)))]


def specs(classes):
    return [instructions.row_spec(row_key(cls, row), cls.__module__, cls.__name__, row, COUNT_ITEMS)
            for cls in classes for row in counted_rows(cls)]


def _entry(value, skipped, error):
    return {"value": value, "skipped": skipped, "error": error}


def uncounted(cls):
    """Why ``cls``'s instructions are not counted (its ``instructions_na``), or None."""
    return getattr(cls, "instructions_na", None)


def count_commit(classes, path, found):
    """Count every row of ``classes`` (instructions under valgrind, allocations natively, side by
    side), merge them into ``found`` (what ``path`` holds) and keep the whole in ``path``; return it."""
    with ThreadPoolExecutor(2) as pool:
        counting = pool.submit(instructions.count_rows, specs([c for c in classes if not uncounted(c)]))
        peaking = pool.submit(allocations.peak_rows, specs(classes))
        counted, peaks = counting.result()[0], peaking.result()[0]
    for cls in classes:
        for row in counted_rows(cls):
            key = row_key(cls, row)
            count, peak = counted.get(key), peaks.get(key) or allocations.RowPeak(key, 0, error="not measured")
            found[key] = {"instructions": _entry(count.per_item, count.skipped, count.error) if count
                          else _entry(None, uncounted(cls), None),
                          "allocations": _entry(peak.mb, peak.skipped, peak.error)}
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(found, indent=1, sort_keys=True))
    os.replace(tmp, path)
    return found


NOT_COUNTED = ("measured at one worker (with threads the count follows the scheduler), at the "
               "history params")


def measured(cls, params, kind):
    """``kind`` ("instructions": per item; "allocations": MB) of ``cls``'s row ``params`` at this
    commit; n/a or a failure as the measuring process saw it."""
    reason = "counts are off (STAC_BENCH_COUNTS=0)" if not COUNTS else None
    if kind == "instructions" and reason is None:
        reason = uncounted(cls) or instructions.unavailable()
    if reason is not None:
        raise SkipNotImplemented(reason)
    if not is_counted(cls, **dict(zip(cls.param_names, params, strict=True))):
        raise SkipNotImplemented(NOT_COUNTED)
    key = row_key(cls, params)
    folder = cache_dir() / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{commit_key()}.json"
    with open(folder / ".lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = json.loads(path.read_text()) if path.exists() else {}
        if key not in found:
            found = count_commit(COUNTED, path, found)
    row = (found.get(key) or {}).get(kind)
    if row is None:
        raise SkipNotImplemented(f"{key} is not a counted row of this process's suites")
    if row["error"]:
        raise RuntimeError(f"{key} failed in the {kind} process: {row['error']}")
    if row["value"] is None:
        raise SkipNotImplemented(row["skipped"] or f"no {kind}")
    return row["value"]


class Counted(abc.ABC):
    """Mixin of the history classes: ``track_instructions`` beside ``time_run``.  Abstract
    (``setup``), so that asv collects it only through the scenario classes."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if getattr(cls, "profile", None) == "history" and not cls.__name__.startswith("_") and cls not in COUNTED:
            COUNTED.append(cls)
            # the rows not counted are n/a before their setup runs (asv's skip_params)
            where = functools.partial(is_counted, cls)
            nowhere = (lambda **row: False) if uncounted(cls) else where
            cls.track_instructions = measured_where(Counted.track_instructions, cls.params, cls.param_names, nowhere)
            cls.track_alloc_mb = measured_where(Counted.track_alloc_mb, cls.params, cls.param_names, where)

    @abc.abstractmethod
    def setup(self, *args):
        """The scenario's setup (``scenario.Scenario``)."""

    def track_instructions(self, *args):
        """Instructions one item costs (callgrind, one run at ``COUNT_ITEMS`` items)."""
        cls = type(self)
        return measured(cls, args[-len(cls.param_names):], "instructions")  # after setup_cache's result

    track_instructions.unit = "instructions/item"
    #: The first row of a commit counts them all (one valgrind process, under a minute).
    track_instructions.timeout = 1800

    def track_alloc_mb(self, *args):
        """Peak of the Python allocations of one run of ``COUNT_ITEMS`` items (tracemalloc), MB: the
        run's own, not the row's ``n_items`` (at 1,000 items tracemalloc made the pipeline's run 9 s)."""
        cls = type(self)
        return measured(cls, args[-len(cls.param_names):], "allocations")

    track_alloc_mb.unit = f"MB ({COUNT_ITEMS} items)"
    track_alloc_mb.timeout = 1800

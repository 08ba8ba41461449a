"""The suite's run-time knobs, read from the environment at import (standard library only).

``STAC_BENCH_SCALE``
    ``default`` (1,000 items), ``prd`` (10,000 items, the Phase 1 PRD tables),
    ``tiny`` (60 items, the test-suite) or a whole number.  The scale is the
    ``n_items`` parameter of every benchmark, so series of different scales
    never mix.
``STAC_BENCH_SCALES``
    Comma-separated ``n_items`` of the ``scale`` selection (``benchmarks/scale.py``), default
    ``1000,10000,100000`` (its own parameter: the other suites keep ``STAC_BENCH_SCALE``).
``STAC_BENCH_PRELOAD_SCALES``
    ``1`` (set by ``tools.bench scale``): asv's forkserver prepares the checks of every scale
    once per commit, not each benchmark process (about 17 s a kind at 100,000 items).
``STAC_BENCH_CONCURRENCY``
    Comma-separated worker counts, default ``1,5,10,20,50``.
``STAC_BENCH_LATENCY``
    Comma-separated added latencies (ms) for the API suite, default ``0,50``.
``STAC_BENCH_DATA_DIR``
    Where generated datasets are cached (default ``~/.cache/stac-manager-benchmarks``).
``STAC_BENCH_OUT_DIR``
    Where output benchmarks write (default: ``out`` beside the datasets, a real disk).
``STAC_BENCH_MEMORY_DIR``
    A memory filesystem (tmpfs) for the output suite's in-memory rows (default ``/dev/shm``).
``STAC_BENCH_PRELOAD``
    ``0`` turns off the once-per-commit preload of asv's forkserver (``subject.preloading``).
``STAC_BENCH_COUNTS`` / ``STAC_BENCH_COUNT_ITEMS``
    ``0`` makes every ``track_instructions`` n/a (no valgrind run); the items a counted run
    handles (default 30; ``counts``).
"""

import os
from pathlib import Path

SCALES = {"tiny": 60, "default": 1000, "prd": 10000}


def scale_name():
    """``STAC_BENCH_SCALE`` as given (``default`` when unset)."""
    return os.environ.get("STAC_BENCH_SCALE", "default").strip()


def scale():
    """The ``n_items`` of this run, from ``STAC_BENCH_SCALE``."""
    raw = scale_name()
    if raw in SCALES:
        return SCALES[raw]
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    raise ValueError(f"STAC_BENCH_SCALE={raw!r}: expected one of {sorted(SCALES)} or a positive integer")


def levels(var, default, minimum):
    """Sorted distinct integers ``>= minimum`` from a comma-separated environment variable."""
    raw = os.environ.get(var, default)
    found = sorted({int(x) for x in raw.split(",") if x.strip()})
    if not found or found[0] < minimum:
        raise ValueError(f"{var}={raw!r}: expected comma-separated integers >= {minimum}")
    return found


#: The ``n_items`` parameter (one value per run).
N_ITEMS = [scale()]
#: The ``n_items`` parameter of the scale selection (several values in one run).
SCALE_SIZES = levels("STAC_BENCH_SCALES", "1000,10000,100000", 1)
#: The ``concurrency`` parameter.
CONCURRENCY = levels("STAC_BENCH_CONCURRENCY", "1,5,10,20,50", 1)
#: The ``latency_ms`` parameter of the API suite: latency the proxy adds per request.
LATENCY = levels("STAC_BENCH_LATENCY", "0,50", 0)
#: The worker counts at which the full profile also runs a suite's conditions (faults, malformed
#: files, fsync, checkpoints): sequential, and a pool.  Every level runs the plain case.
CONDITION_LEVELS = [1, 10]
#: Items of the probe dataset every suite runs a commit on before timing it.
PROBE_ITEMS = 3


def cache_dir():
    """The folder of the dataset cache and the output root: ``STAC_BENCH_DATA_DIR`` or the default."""
    return Path(os.environ.get("STAC_BENCH_DATA_DIR", Path.home() / ".cache" / "stac-manager-benchmarks"))


def out_dir():
    """Where output runs write: ``STAC_BENCH_OUT_DIR``, else ``out`` in ``cache_dir()`` (created)."""
    root = Path(os.environ.get("STAC_BENCH_OUT_DIR") or cache_dir() / "out")
    root.mkdir(parents=True, exist_ok=True)
    return root


def memory_base():
    """Where the in-memory output rows write: ``STAC_BENCH_MEMORY_DIR``, else ``/dev/shm``."""
    return Path(os.environ.get("STAC_BENCH_MEMORY_DIR") or "/dev/shm")


#: Instruction counts on (``track_instructions``), and the items of a counted run.
COUNTS = os.environ.get("STAC_BENCH_COUNTS", "1") != "0"
COUNT_ITEMS = levels("STAC_BENCH_COUNT_ITEMS", "30", 1)[0]


def preload_scales():
    """``STAC_BENCH_PRELOAD_SCALES`` is ``1``: the scale selection is what runs."""
    return os.environ.get("STAC_BENCH_PRELOAD_SCALES", "0") == "1"


def scale_selected():
    """The scale selection was asked for: ``tools.bench scale`` (which sets ``STAC_BENCH_PRELOAD_SCALES``)
    or ``STAC_BENCH_SCALES`` set.  A bare ``asv run`` does neither: its 100,000 items are not run."""
    return preload_scales() or bool(os.environ.get("STAC_BENCH_SCALES"))


def preload_enabled():
    """``STAC_BENCH_PRELOAD`` is not ``0``."""
    return os.environ.get("STAC_BENCH_PRELOAD", "1") != "0"

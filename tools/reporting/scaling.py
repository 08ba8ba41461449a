"""The scale selection's tables: per-item cost and memory of each row against ``n_items``, and a verdict.

The scale selection (``benchmarks/scale.py``) runs each of stac-manager's sequential rows at
several ``n_items`` in one run.  Per row (a class, at its other parameters), each size gives
microseconds per item (``time_run`` / n) and MB of peak memory per 1,000 items
(``track_mem_mb`` / n × 1,000).  The verdicts compare the smallest and the largest size that
have a number (``docs/scale.md``):

* time: ``linear`` while the per-item cost at the largest n is at most ``GROWTH_FACTOR`` (1.5)
  times the smallest's (on the suite's 2-core VMs two runs of the same code differ by up to
  1.5x; an n log n cost grows 1.67x from 1K to 100K, a quadratic one 100x); beyond it,
  ``per-item cost grows x.xx from 1K to 100K``.
* memory: the peak's growth from the smallest to the largest n, per item added (KB an item).
  Under ``MEMORY_FLOOR_MB`` (5 MB) of growth in all: ``memory bounded: streams`` (RSS moves by a
  few MB between runs).  At least ``ITEM_KB`` (4.5 KB, a generated item's JSON; as Python dicts
  an item takes 20-35 KB): ``memory grows with n: holds the items (x KB an item)``.  Between the
  two: ``memory grows with n: x KB an item, less than an item (per-item bookkeeping)``: a path
  or an id kept per item, not the item.

A size that failed or is n/a is shown as such and left out of the verdict; a row with fewer than
two sizes measured has no verdict.
"""

from __future__ import annotations

import math

from .metrics import cell_status, param_value, split_name

#: The suite module of the scale selection.
MODULE = "scale"
#: The suite of a row, from its class name's prefix (``scale.FileDirectory``: file ingest).
SUITES = (("File", "file ingest"), ("Api", "API search"), ("Output", "output"), ("Pipeline", "pipeline"))
#: "linear" while the per-item cost grows at most this much from the smallest to the largest n.
GROWTH_FACTOR = 1.5
#: "holds the items" when the peak grows by at least this much per item (KB): a generated item's JSON.
ITEM_KB = 4.5
#: Growth below this (MB, smallest to largest n) is noise: RSS increments move by a few MB.
MEMORY_FLOOR_MB = 5.0
TIME, MEMORY = "time_run", "track_mem_mb"
#: The history row each scale row is built on (``benchmarks/scale.py``): its ``track_instructions``
#: (instructions an item costs, counted at 30 items whatever ``n``) stands beside the row's wall time.
COUNTED_BASE = {"FileDirectory": "file_ingest.DirectoryModule",
                "FileFeatureCollection": "file_ingest.FeatureCollectionModule",
                "FileNdjson": "file_ingest.NdjsonModule", "FileParquet": "file_ingest.ParquetModule",
                "FileCollection": "file_ingest.CollectionRootModule", "OutputJson": "output.ModuleJson",
                "OutputParquet": "output.ModuleParquet", "Pipeline": "pipeline.PipelineModule",
                "ApiSearch": "api_ingest.SearchModule"}
COUNT = "track_instructions"


def n_label(n: int) -> str:
    """1000 -> '1K', 100000 -> '100K', 240 -> '240'."""
    return f"{n // 1000}K" if n >= 1000 and n % 1000 == 0 else str(n)


def suite_of(cls: str) -> str:
    name = cls.rsplit(".", 1)[-1]
    return next((suite for prefix, suite in SUITES if name.startswith(prefix)), "other")


def time_verdict(points: dict) -> str | None:
    """``points``: {n: µs per item} of the sizes with a number."""
    if len(points) < 2:
        return None
    small, large = min(points), max(points)
    growth = points[large] / points[small] if points[small] > 0 else math.inf
    if growth <= GROWTH_FACTOR:
        return "linear"
    return f"per-item cost grows {growth:.2f}x from {n_label(small)} to {n_label(large)}"


def memory_verdict(peaks: dict) -> str | None:
    """``peaks``: {n: peak MB} of the sizes with a number."""
    if len(peaks) < 2:
        return None
    small, large = min(peaks), max(peaks)
    growth = peaks[large] - peaks[small]
    if growth < MEMORY_FLOOR_MB:
        return "memory bounded: streams"
    kb = growth * 1000 / (large - small)
    if kb >= ITEM_KB:
        return f"memory grows with n: holds the items ({kb:.1f} KB an item)"
    return f"memory grows with n: {kb:.2f} KB an item, less than an item (per-item bookkeeping)"


def _cells(row, pnames: list) -> dict:
    """{(other params), n: (status, value)} of one benchmark row."""
    out = {}
    for combo, v in zip(row.combos(), row.values, strict=False):
        named = dict(zip(pnames, combo, strict=False))
        n = param_value(named.pop("n_items", "None"))
        if isinstance(n, int):
            others = tuple((k, str(param_value(p))) for k, p in named.items())
            out[others, n] = (cell_status(v), v)
    return out


def _row(cls: str, others: tuple, sizes: list, times: dict, mems: dict) -> dict:
    per_item, per_1k, cells = {}, {}, {}
    for n in sizes:
        t_status, t = times.get((others, n), ("missing", None))
        m_status, m = mems.get((others, n), ("missing", None))
        cells[n] = {"time_s": t if t_status == "ok" else None, "time_status": t_status,
                    "mem_mb": m if m_status == "ok" else None, "mem_status": m_status}
        if t_status == "ok":
            per_item[n] = t * 1e6 / n
        if m_status == "ok":
            per_1k[n] = m * 1000 / n
        cells[n]["us_per_item"], cells[n]["mb_per_1k"] = per_item.get(n), per_1k.get(n)
    peaks = {n: cells[n]["mem_mb"] for n in sizes if cells[n]["mem_mb"] is not None}
    return {"row": cls.split(".", 1)[1], "params": dict(others), "cells": cells,
            "time_verdict": time_verdict(per_item), "memory_verdict": memory_verdict(peaks)}


def instructions_per_item(cls: str, others: tuple, rows: dict, benchmarks: dict) -> float | None:
    """The instructions an item costs in the history row ``cls`` is built on, at the same other
    parameters (any ``n_items``: it is counted at 30 items), where this commit has a count."""
    name = f"{COUNTED_BASE.get(cls.split('.', 1)[1], '')}.{COUNT}"
    if name not in rows:
        return None
    cells = _cells(rows[name], (benchmarks.get(name) or {}).get("param_names") or [])
    return next((v for (o, _), (status, v) in cells.items() if o == others and status == "ok"), None)


def build_scaling(rows: dict, benchmarks: dict, counted: dict | None = None) -> list:
    """[{suite, sizes, rows: [...]}] of the scale selection's results in ``rows`` (name -> Row);
    ``counted``: the commit's other rows, whose instruction counts go beside the scale rows'."""
    by_class: dict = {}
    for name, row in rows.items():
        cls, method = split_name(name)
        if cls.startswith(MODULE + ".") and method in (TIME, MEMORY):
            pnames = (benchmarks.get(name) or {}).get("param_names") or []
            by_class.setdefault(cls, {})[method] = _cells(row, pnames)
    suites: dict = {}
    for cls in sorted(by_class):
        times, mems = by_class[cls].get(TIME, {}), by_class[cls].get(MEMORY, {})
        sizes = sorted({n for _, n in (*times, *mems)})
        for others in sorted({o for o, _ in (*times, *mems)}):
            row = _row(cls, others, sizes, times, mems)
            row["instructions_per_item"] = instructions_per_item(cls, others, counted or {}, benchmarks)
            suites.setdefault(suite_of(cls), []).append(row)
    order = [s for _, s in SUITES] + ["other"]
    return [{"suite": s, "sizes": sorted({n for r in suites[s] for n in r["cells"]}), "rows": suites[s]}
            for s in order if s in suites]

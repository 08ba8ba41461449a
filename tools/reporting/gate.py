"""The pre-merge gate: two results files compared benchmark by benchmark and
parameter by parameter, each pair put in one category."""

from __future__ import annotations

import math
import os

from reporting.errors import ReportError
from reporting.results import ResultFile, param_names
from reporting.values import (better_direction, cell_status, default_unit, json_num, metric_kind,
                              opt_num, param_display, split_name)

CATEGORIES = [
    ("regressed", "Regressed (got worse beyond the factor)"),
    ("failed", "Failed / became n/a"),
    ("improved", "Improved"),
    ("fixed", "Now measured (was failed / n/a)"),
    ("unchanged", "Unchanged"),
    ("untracked", "Changed, direction unknown (other track_*)"),
    ("not_measured", "Not measured in either (failed / n/a)"),
    ("incomparable", "Not comparable (benchmark version changed)"),
    ("added", "Added"),
    ("removed", "Removed"),
]

#: Memory changes smaller than this (MB) never count as a regression or an improvement.
MEMORY_FLOOR_MB = 1.0


def _memory_noise(name: str, before: float, after: float) -> bool:
    """A memory result (track_mem in MB, peakmem in bytes) that moved by less than the floor."""
    kind = metric_kind(split_name(name)[1])
    scale = {"memory": 1.0, "peakmem": 1e6}.get(kind)
    return scale is not None and abs(after - before) < MEMORY_FLOOR_MB * scale


def _unroll(rf: ResultFile, benchmarks: dict | None) -> dict:
    """{(name, combo): {value, version, params label}} of one results file."""
    out = {}
    for name, row in rf.rows.items():
        pnames = param_names(row, benchmarks or {})
        for combo, v in zip(row.combos(), row.values):
            label = ", ".join(f"{k}={param_display(p)}" for k, p in zip(pnames, combo))
            out[(name, combo)] = {"value": v, "version": row.version, "params": label}
    return out


def _ratio_category(name: str, vb: float, vh: float, factor: float) -> tuple[str, float]:
    """Both sides measured: regressed / improved / unchanged / untracked, and head/base."""
    ratio = vh / vb if vb != 0 else (1.0 if vh == 0 else math.inf)
    direction = better_direction(name)
    if _memory_noise(name, vb, vh):
        return "unchanged", ratio  # a few hundred KB of RSS is noise, whatever the ratio
    if direction is None:
        return ("untracked" if (ratio > factor or ratio < 1 / factor) else "unchanged"), ratio
    worse = ratio > factor if direction == "lower" else ratio < 1 / factor
    better = ratio < 1 / factor if direction == "lower" else ratio > factor
    return ("regressed" if worse else "improved" if better else "unchanged"), ratio


def _category(name: str, eb, eh, factor: float, allow_na: bool) -> tuple[str, float | None]:
    if eb is None:
        return "added", None
    if eh is None:
        return "removed", None
    if eb["version"] is not None and eh["version"] is not None and eb["version"] != eh["version"]:
        return "incomparable", None
    sb, sh = cell_status(eb["value"]), cell_status(eh["value"])
    if sb == "ok" and sh != "ok":
        return ("failed" if (sh == "failed" or not allow_na) else "not_measured"), None
    if sb != "ok" and sh == "ok":
        return "fixed", None
    if sb != "ok" and sh != "ok":
        return "not_measured", None
    return _ratio_category(name, eb["value"], eh["value"], factor)


def _entry(name: str, eb, eh, cat: str, ratio, benchmarks) -> dict:
    vb = eb["value"] if eb else None
    vh = eh["value"] if eh else None
    sb = cell_status(vb) if eb else "missing"
    sh = cell_status(vh) if eh else "missing"
    return {
        "benchmark": name, "params": (eb or eh)["params"], "category": cat,
        "unit": default_unit(name, benchmarks),
        "before": json_num(vb) if sb == "ok" else None, "before_status": sb,
        "after": json_num(vh) if sh == "ok" else None, "after_status": sh,
        "ratio": opt_num(ratio),
        "better": better_direction(name),
    }


def _side_json(rf: ResultFile) -> dict:
    return {"commit": rf.commit_hash, "env": rf.env_name, "machine": rf.machine, "file": rf.path}


def check_factor(factor) -> float:
    """The factor must be a finite number > 1 (NaN would compare false and pass anything)."""
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) \
            or factor <= 1:
        raise ReportError(f"--factor must be a finite number > 1 (got {factor!r})")
    return float(factor)


def same_results(base: ResultFile, head: ResultFile) -> bool:
    """One results file twice, or two specs that resolved to the same commit and environment."""
    if os.path.realpath(base.path) == os.path.realpath(head.path):
        return True
    return (base.machine, base.commit_hash, base.env_name) == (head.machine, head.commit_hash, head.env_name)


def compare_results(base: ResultFile, head: ResultFile, factor: float, benchmarks: dict | None,
                    allow_na: bool = False, allow_removed: bool = False) -> dict:
    factor = check_factor(factor)
    if same_results(base, head):
        raise ReportError(f"base and head are the same results ({head.path}, commit {head.short}, "
                          f"environment {head.env_name}): nothing was compared")
    b, h = _unroll(base, benchmarks), _unroll(head, benchmarks)
    entries = []
    for key in sorted(set(b) | set(h), key=lambda k: (k[0], k[1])):
        name = key[0]
        cat, ratio = _category(name, b.get(key), h.get(key), factor, allow_na)
        entries.append(_entry(name, b.get(key), h.get(key), cat, ratio, benchmarks))
    counts = {c: sum(e["category"] == c for e in entries) for c, _ in CATEGORIES}
    return {
        "base": _side_json(base),
        "head": _side_json(head),
        "factor": factor,
        "counts": counts,
        "entries": entries,
        "allow_removed": allow_removed,
        "gate_failed": counts["regressed"] > 0 or counts["failed"] > 0 or (counts["removed"] > 0 and not allow_removed),
    }

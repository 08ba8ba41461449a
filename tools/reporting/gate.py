"""The pre-merge gate: two results files compared benchmark by benchmark and
parameter by parameter, each pair put in one category.

On a noisy 2-core VM ratios between 0.66 and 1.5 are noise.  Harness and ceiling
strategies (and ``*.Control`` classes) do not run stac-manager, so what they moved
between base and head is the machine: their *drift* widens the band a stac-manager
(subject) row must leave to count as a regression (see DRIFT_RULE).
"""

from __future__ import annotations

import math
import os

from reporting.analyse import CONTROL_KINDS, strategy_kind
from reporting.errors import ReportError
from reporting.results import ResultFile, param_names
from reporting.values import (better_direction, cell_status, default_unit, json_num, metric_kind,
                              opt_num, param_display, split_name)

CATEGORIES = [
    ("regressed", "Regressed (got worse beyond the factor and the control drift)"),
    ("failed", "Failed / became n/a"),
    ("improved", "Improved"),
    ("control", "Control rows that moved (the machine; never a regression)"),
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


#: Drift kinds: what the controls' drift is computed over, by metric kind.
DRIFT_KINDS = {"time": "time", "throughput": "throughput", "memory": "memory", "peakmem": "memory"}
#: The drift of a kind is this percentile (nearest rank) of max(r, 1/r) over its control rows.
DRIFT_PERCENTILE = 0.90
DRIFT_RULE = (
    "control rows (harness and ceiling strategies, *.Control classes) do not run stac-manager: "
    f"their drift per kind (time / throughput / memory) is the {DRIFT_PERCENTILE * 100:.0f}th percentile "
    "(nearest rank) of max(r, 1/r) over their rows, r = head/base oriented so that > 1 is worse; "
    "a subject row is a regression or an improvement only beyond max(factor, drift of its kind); "
    "control rows are never regressions"
)
EPS = 1e-9  # ratios equal up to rounding are not beyond a threshold


def row_role(name: str, combo: tuple, pnames: list) -> str:
    """'control' (harness / ceiling strategy, or a *.Control class) or 'subject'."""
    if split_name(name)[0].rpartition(".")[2] == "Control":
        return "control"
    if "strategy" in pnames:
        strategy = param_display(combo[pnames.index("strategy")])
        if strategy_kind(strategy) in CONTROL_KINDS:
            return "control"
    return "subject"


def _unroll(rf: ResultFile, benchmarks: dict | None) -> dict:
    """{(name, combo): {value, version, params label, role}} of one results file."""
    out = {}
    for name, row in rf.rows.items():
        pnames = param_names(row, benchmarks or {})
        for combo, v in zip(row.combos(), row.values):
            label = ", ".join(f"{k}={param_display(p)}" for k, p in zip(pnames, combo))
            out[(name, combo)] = {"value": v, "version": row.version, "params": label,
                                  "role": row_role(name, combo, pnames)}
    return out


def _comparable(eb, eh) -> bool:
    """Both sides measured, same benchmark version."""
    if eb is None or eh is None or cell_status(eb["value"]) != "ok" or cell_status(eh["value"]) != "ok":
        return False
    return eb["version"] is None or eh["version"] is None or eb["version"] == eh["version"]


def _worse_ratio(name: str, vb: float, vh: float) -> float | None:
    """head/base oriented so that > 1 is worse (throughput: base/head); None if undefined."""
    direction = better_direction(name)
    if direction is None or vb <= 0 or vh <= 0:
        return None
    return vh / vb if direction == "lower" else vb / vh


def percentile(values: list, q: float) -> float:
    """Nearest-rank percentile ``q`` (0..1] of ``values``."""
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def control_drift(b: dict, h: dict, factor: float) -> dict:
    """{drift kind: {rows, drift, threshold, worst}} from the control rows of both sides."""
    samples: dict = {}
    for key, eb in b.items():
        eh = h.get(key)
        kind = DRIFT_KINDS.get(metric_kind(split_name(key[0])[1]))
        if eb["role"] != "control" or kind is None or not _comparable(eb, eh):
            continue
        r = 1.0 if _memory_noise(key[0], eb["value"], eh["value"]) else _worse_ratio(key[0], eb["value"], eh["value"])
        if r is not None and math.isfinite(r):
            samples.setdefault(kind, []).append((max(r, 1 / r), r, key, eb["params"]))
    drift = {}
    for kind in sorted(samples, key=list(DRIFT_KINDS.values()).index):
        rows = samples[kind]
        d = percentile([s for s, *_ in rows], DRIFT_PERCENTILE)
        _, r, key, label = max(rows, key=lambda x: x[0])
        drift[kind] = {"rows": len(rows), "drift": d, "threshold": max(factor, d),
                       "worst": {"benchmark": key[0], "params": label, "ratio": r}}
    return drift


def _ratio_category(name: str, vb: float, vh: float, threshold: float, role: str) -> tuple[str, float]:
    """Both sides measured: regressed / improved / unchanged / untracked / control, and head/base."""
    ratio = vh / vb if vb != 0 else (1.0 if vh == 0 else math.inf)
    direction = better_direction(name)
    if _memory_noise(name, vb, vh):
        return "unchanged", ratio  # a few hundred KB of RSS is noise, whatever the ratio
    up, down = ratio > threshold * (1 + EPS), ratio < (1 - EPS) / threshold
    if direction is None:
        return ("untracked" if up or down else "unchanged"), ratio
    if role == "control":
        return ("control" if up or down else "unchanged"), ratio  # the machine, never a regression
    worse, better = (up, down) if direction == "lower" else (down, up)
    return ("regressed" if worse else "improved" if better else "unchanged"), ratio


def _category(name: str, eb, eh, threshold: float, allow_na: bool) -> tuple[str, float | None]:
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
    return _ratio_category(name, eb["value"], eh["value"], threshold, eb["role"])


def _threshold(name: str, role: str, factor: float, drift: dict) -> float:
    """Subject rows: beyond the factor and the drift of their kind; controls: the factor."""
    kind = DRIFT_KINDS.get(metric_kind(split_name(name)[1]))
    if role == "control" or kind not in drift:
        return factor
    return drift[kind]["threshold"]


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
        "role": (eb or eh)["role"],
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
    drift = control_drift(b, h, factor)
    entries = []
    for key in sorted(set(b) | set(h), key=lambda k: (k[0], k[1])):
        name, role = key[0], (b.get(key) or h.get(key))["role"]
        cat, ratio = _category(name, b.get(key), h.get(key), _threshold(name, role, factor, drift), allow_na)
        entries.append(_entry(name, b.get(key), h.get(key), cat, ratio, benchmarks))
    counts = {c: sum(e["category"] == c for e in entries) for c, _ in CATEGORIES}
    return {
        "base": _side_json(base),
        "head": _side_json(head),
        "factor": factor,
        "drift": drift,
        "drift_rule": DRIFT_RULE,
        "counts": counts,
        "entries": entries,
        "allow_removed": allow_removed,
        "gate_failed": counts["regressed"] > 0 or counts["failed"] > 0 or (counts["removed"] > 0 and not allow_removed),
    }

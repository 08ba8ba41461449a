"""The pre-merge gate: two results files compared benchmark by benchmark and
parameter by parameter, each pair put in one category.

On a noisy 2-core VM ratios between 0.66 and 1.5 are noise.  Harness and ceiling
strategies (and ``*.Control`` classes) do not run stac-manager, so what they moved
between base and head is the machine: their *drift* widens the band a stac-manager
(subject) row must leave to count as a regression (see DRIFT_RULE).

Beyond that band a 5 ms timing can still move 2x on a loaded VM: where both sides carry
asv's statistics (several samples), a subject row counts only if they differ as ``asv
compare`` judges it; otherwise it is "noise", moved within its intervals (see NOISE_RULE).
"""

from __future__ import annotations

import math
import os

from .errors import ReportError
from .inputs import check_factor
from .metrics import (
    better_direction,
    cell_status,
    default_unit,
    is_num,
    json_num,
    metric_kind,
    opt_num,
    param_display,
    split_name,
)
from .results import ResultFile, param_names
from .rules import CONTROL_KINDS, strategy_kind

CATEGORIES = [
    ("regressed", "Regressed (got worse beyond the factor and the control drift)"),
    ("failed", "Failed / became n/a"),
    ("improved", "Improved"),
    ("noise", "Moved, within noise (intervals overlap)"),
    ("control", "Control rows that moved (the machine; never a regression)"),
    ("fixed", "Now measured (was failed / n/a)"),
    ("unchanged", "Unchanged"),
    ("untracked", "Changed, direction unknown (other track_*)"),
    ("not_measured", "Not measured in either (failed / n/a)"),
    ("incomparable", "Not comparable (benchmark version changed)"),
    ("added", "Added"),
    ("removed", "Removed"),
]

#: The factor of instruction counts (callgrind): they repeat to 0.5 %, so 3 % is a change of the code,
#: judged alone (no control drift: the machine's speed does not move them).
INSTRUCTIONS_FACTOR = 1.03
#: The factor of allocation peaks (tracemalloc, ``track_alloc_mb``): they repeat to 1 %, and are
#: judged alone too.  RSS (``track_mem_mb``) keeps the factor, the drift and the 1 MB floor.
ALLOC_FACTOR = 1.05
#: The rows that repeat, judged on their own factor, and the row each is shown beside.
DETERMINISTIC = {"instructions": "time_run", "allocations": "track_mem_mb"}
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
        n = len(row.values)
        for combo, v, stats, samples in zip(row.combos(), row.values, row.stats or [None] * n,
                                            row.samples or [None] * n, strict=False):
            label = ", ".join(f"{k}={param_display(p)}" for k, p in zip(pnames, combo, strict=False))
            out[(name, combo)] = {"value": v, "version": row.version, "params": label,
                                  "role": row_role(name, combo, pnames), "stats": stats, "samples": samples}
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
    """Nearest-rank percentile ``q`` (0..1] of ``metrics``."""
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


def _threshold(name: str, role: str, factor: float, drift: dict, own: dict) -> float:
    """Instruction counts and allocation peaks: their own factor (``own``, by kind).  Subject rows:
    beyond the factor and the drift of their kind; controls: the factor."""
    if metric_kind(split_name(name)[1]) in own:
        return own[metric_kind(split_name(name)[1])]
    kind = DRIFT_KINDS.get(metric_kind(split_name(name)[1]))
    if role == "control" or kind not in drift:
        return factor
    return drift[kind]["threshold"]


NOISE_RULE = (
    "a subject row that moved beyond max(factor, drift) while base and head both carry asv's statistics "
    "(timing benchmarks with several samples) counts only if the two differ as `asv compare` judges it "
    "(asv.commands.compare._is_result_better: a Mann-Whitney U test on the raw samples when both were "
    "recorded, else the 99% confidence intervals must not overlap); if asv's helper cannot be called, the "
    "99% confidence intervals must not overlap, else the interquartile ranges; otherwise the row is "
    "'moved, within noise', never a regression nor an improvement. Rows where either side has no statistics "
    "(track_*, peakmem_*, a single sample) keep the factor and drift rule alone"
)


def _several(stats) -> bool:
    """asv's own rule (_is_result_better): the statistics of a single sample (repeat 1) say nothing."""
    return bool(stats) and stats.get("repeat", 0) != 1


def _interval(stats: dict, lo: str, hi: str) -> list | None:
    """[stats[lo], stats[hi]] when both are numbers (not NaN), else None."""
    a, b = stats.get(lo), stats.get(hi)
    return [a, b] if is_num(a) and is_num(b) else None


def _overlap(a: list, b: list) -> bool:
    """asv._stats.is_different's interval test, bounds included."""
    return a[1] >= b[0] and a[0] <= b[1]


def _asv_different(eb: dict, eh: dict, threshold: float) -> bool | None:
    """``asv compare``'s own verdict on the move, or None when its helper cannot be called."""
    try:
        from asv.commands.compare import _is_result_better
    except ImportError:
        return None
    # _is_result_better(a, b, a_ss, b_ss, factor): a < b / factor, unless the statistics say the
    # two do not differ; a_ss = (stats, samples) as asv's Results hold them
    lo, hi = (eb, eh) if eb["value"] < eh["value"] else (eh, eb)
    try:
        return bool(_is_result_better(lo["value"], hi["value"], (lo["stats"], lo["samples"]),
                                      (hi["stats"], hi["samples"]), threshold))
    except (AttributeError, KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


GUARD_METHODS = (("asv", "ci_99_a", "ci_99_b"), ("ci_99", "ci_99_a", "ci_99_b"), ("iqr", "q_25", "q_75"))


def noise_guard(eb: dict, eh: dict, threshold: float) -> dict:
    """Did a row that moved beyond ``threshold`` leave its noise?  {method, different, base, head}:
    method asv / ci_99 / iqr (the first that both sides allow, see NOISE_RULE) with the two intervals,
    or None (no statistics on one side: different is None, today's rule decides)."""
    if _several(eb["stats"]) and _several(eh["stats"]):
        for method, lo, hi in GUARD_METHODS:
            ib, ih = _interval(eb["stats"], lo, hi), _interval(eh["stats"], lo, hi)
            if ib is None or ih is None:
                continue
            different = _asv_different(eb, eh, threshold) if method == "asv" else not _overlap(ib, ih)
            if different is not None:
                return {"method": method, "different": different,
                        "base": [json_num(x) for x in ib], "head": [json_num(x) for x in ih]}
    return {"method": None, "different": None, "base": None, "head": None}


def _entry(name: str, eb, eh, cat: str, ratio, benchmarks, guard: dict | None) -> dict:
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
        **({"guard": guard} if guard is not None else {}),
    }


def _judge(name: str, eb, eh, factor: float, drift: dict, allow_na: bool, benchmarks, own: dict) -> dict:
    """One row's entry: its category by the factor and the drift, then, for a subject row that
    moved beyond them, by its statistics (noise_guard): overlapping intervals are "noise"."""
    threshold = _threshold(name, (eb or eh)["role"], factor, drift, own)
    cat, ratio = _category(name, eb, eh, threshold, allow_na)
    guard = None
    if cat in ("regressed", "improved"):  # only subject rows get here
        guard = noise_guard(eb, eh, threshold)
        if guard["different"] is False:
            cat = "noise"
    return _entry(name, eb, eh, cat, ratio, benchmarks, guard)


def _side_json(rf: ResultFile) -> dict:
    return {"commit": rf.commit_hash, "env": rf.env_name, "machine": rf.machine, "file": rf.path}


def same_results(base: ResultFile, head: ResultFile) -> bool:
    """One results file twice, or two specs that resolved to the same commit and environment."""
    if os.path.realpath(base.path) == os.path.realpath(head.path):
        return True
    return (base.machine, base.commit_hash, base.env_name) == (head.machine, head.commit_hash, head.env_name)


def _companions(entries: list) -> None:
    """Each instruction row gets its wall-time row (``time_run``), each allocation row its RSS row
    (``track_mem_mb``), same class and params, beside it."""
    by_key = {(e["benchmark"], e["params"]): e for e in entries}
    for e in entries:
        cls, method = split_name(e["benchmark"])
        if metric_kind(method) in DETERMINISTIC:
            other = by_key.get((f"{cls}.{DETERMINISTIC[metric_kind(method)]}", e["params"]))
            e["companion"] = other and {"benchmark": other["benchmark"], "ratio": other["ratio"],
                                        "category": other["category"]}


def compare_results(base: ResultFile, head: ResultFile, factor: float, benchmarks: dict | None,
                    allow_na: bool = False, allow_removed: bool = False,
                    instructions_factor: float = INSTRUCTIONS_FACTOR, alloc_factor: float = ALLOC_FACTOR) -> dict:
    factor, instructions_factor = check_factor(factor), check_factor(instructions_factor)
    own = {"instructions": instructions_factor, "allocations": check_factor(alloc_factor)}
    if same_results(base, head):
        raise ReportError(f"base and head are the same results ({head.path}, commit {head.short}, "
                          f"environment {head.env_name}): nothing was compared")
    b, h = _unroll(base, benchmarks), _unroll(head, benchmarks)
    drift = control_drift(b, h, factor)
    entries = [_judge(key[0], b.get(key), h.get(key), factor, drift, allow_na, benchmarks, own)
               for key in sorted(set(b) | set(h), key=lambda k: (k[0], k[1]))]
    _companions(entries)
    counts = {c: sum(e["category"] == c for e in entries) for c, _ in CATEGORIES}
    return {
        "base": _side_json(base),
        "head": _side_json(head),
        "factor": factor,
        "instructions_factor": instructions_factor,
        "alloc_factor": own["allocations"],
        "drift": drift,
        "drift_rule": DRIFT_RULE,
        "noise_rule": NOISE_RULE,
        "counts": counts,
        "entries": entries,
        "allow_removed": allow_removed,
        "gate_failed": counts["regressed"] > 0 or counts["failed"] > 0 or (counts["removed"] > 0 and not allow_removed),
    }

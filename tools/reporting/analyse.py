"""One commit's scenarios: group rows into scenario tables, then baseline, speedups,
ceiling, best row, verdict and recommended workers, each a small named step.

A *scenario* is a benchmark class plus its parameters other than ``strategy`` and
``concurrency``; its rows are (strategy, concurrency) pairs.  Every question about a
strategy *name* goes through ``rules.strategy_info``.
"""

from __future__ import annotations

from .columns import cell, make_row, primary_metrics
from .diskmem import build_disk_memory
from .findings import core_findings
from .findings_phase2 import faults, phase1_method, phase2
from .metrics import (
    cell_status,
    default_unit,
    json_num,
    metric_kind,
    number_or_str,
    opt_num,
    param_display,
    param_value,
    sort_key_value,
    split_name,
)
from .results import ResultFile, Row, param_names
from .rules import DIMINISHING_RETURNS, RULES, VERDICT_BANDS, is_ceiling, strategy_info, strategy_kind
from .scaling import MODULE as SCALE_MODULE
from .scaling import build_scaling


def scenario_class(prefix: str) -> str:
    """The scenario a benchmark class reports under: ``mod.XModule`` (stac-manager's rows)
    joins ``mod.X`` (the harness rows, same parameters); any other class is its own."""
    mod, _, cls = prefix.rpartition(".")
    if cls.endswith("Module") and len(cls) > len("Module"):
        return f"{mod}.{cls[:-len('Module')]}" if mod else cls[:-len("Module")]
    return prefix


# --------------------------------------------------------------------------------------
# Grouping rows into scenarios
# --------------------------------------------------------------------------------------

def current_rows(rf: ResultFile, benchmarks: dict) -> tuple[dict, list, list]:
    """Rows whose version matches benchmarks.json, and the names of the ignored rest: the stale
    ones (their version differs) and the ones no longer in benchmarks.json (removed)."""
    keep, stale, removed = {}, [], []
    for name, row in rf.rows.items():
        meta = benchmarks.get(name)
        if meta is None:
            removed.append(name)
        elif row.version is not None and row.version != meta.get("version"):
            stale.append(name)
        else:
            keep[name] = row
    return keep, sorted(stale), sorted(removed)


def _other_entries(name: str, row: Row, pnames: list, unit: str) -> list:
    """A benchmark without a 'strategy' parameter: one entry per combination."""
    return [{
        "benchmark": name,
        "params": {k: param_display(p) for k, p in zip(pnames, combo, strict=False)},
        "value": json_num(v) if cell_status(v) == "ok" else None,
        "status": cell_status(v),
        "unit": unit,
    } for combo, v in zip(row.combos(), row.values, strict=False)]


def _add_scenario_cells(scen: dict, name: str, row: Row, pnames: list):
    prefix, method = split_name(name)
    prefix, kind = scenario_class(prefix), metric_kind(method)
    for combo, v in zip(row.combos(), row.values, strict=False):
        named = dict(zip(pnames, combo, strict=False))
        strategy = param_display(named.pop("strategy"))
        conc = param_value(named.pop("concurrency")) if "concurrency" in named else 1
        other = tuple((k, param_display(p)) for k, p in named.items())
        s = scen.setdefault((prefix, other), {"metrics": {}, "order": []})
        key = (strategy, conc)
        if key not in s["order"]:
            s["order"].append(key)
        s["metrics"].setdefault((kind, method), {})[key] = cell(v)


def build_scenarios(rows: dict, benchmarks: dict) -> tuple[list, list]:
    """Group scenario benchmarks (those with a 'strategy' param) into scenario tables."""
    scen: dict = {}
    others = []
    units = {}
    for name in sorted(rows):
        row = rows[name]
        pnames = param_names(row, benchmarks)
        unit = default_unit(name, benchmarks)
        if "strategy" not in pnames:
            others += _other_entries(name, row, pnames, unit)
            continue
        _add_scenario_cells(scen, name, row, pnames)
        method = split_name(name)[1]
        units[(metric_kind(method), method)] = unit
    scenarios = [analyse_scenario(prefix, other, s, units) for (prefix, other), s in scen.items()]
    scenarios.sort(key=lambda s: (s["benchmark_class"], s["_sort"]))
    for s in scenarios:
        del s["_sort"]
    return scenarios, others


# --------------------------------------------------------------------------------------
# One scenario, step by step
# --------------------------------------------------------------------------------------

#: Row order by kind: stac-manager (and hybrids) first, then harness designs, ceilings last.
KIND_ORDER = {"subject": 0, "hybrid": 0, "harness": 1, "ceiling": 2}


def _row_order(order: list) -> list:
    """Kind order, then strategies in params order, concurrency ascending."""
    strat_order = []
    for st, _ in order:
        if st not in strat_order:
            strat_order.append(st)
    return sorted(order, key=lambda k: (KIND_ORDER.get(strategy_kind(k[0]), 1), strat_order.index(k[0]),
                                        sort_key_value(k[1])))


def _has_number(r) -> bool:
    return r["time"].ok or r["throughput"].ok


def _pick_baseline(rows: list):
    """Preferred strategies at concurrency 1 in rank order, else the first row with a number."""
    conc1 = [r for r in rows if r["concurrency"] == 1 and not r["is_ceiling"]
             and r["time"].status != "failed" and r["throughput"].status != "failed"]
    ranked = sorted((strategy_info(r["strategy"]).baseline_rank, i) for i, r in enumerate(conc1)
                    if strategy_info(r["strategy"]).baseline_rank is not None and _has_number(r))
    if ranked:
        return conc1[ranked[0][1]]
    return next((r for r in conc1 if _has_number(r)), None)


def _add_speedups(rows: list, baseline):
    for r in rows:
        # a row with any failed measurement is failed: no speedup, never "best"
        r["failed"] = r["time"].status == "failed" or r["throughput"].status == "failed"
        r["is_baseline"] = r is baseline
        r["speedup"] = None
        if baseline is None or r["failed"]:
            continue
        if r["time"].ok and baseline["time"].ok and r["time"].value > 0:
            r["speedup"] = baseline["time"].value / r["time"].value
        elif r["throughput"].ok and baseline["throughput"].ok and baseline["throughput"].value > 0:
            r["speedup"] = r["throughput"].value / baseline["throughput"].value


def _add_ceiling(rows: list):
    """The best ceiling row (by throughput, else time) and every row's % of it."""
    ceil_rows = [r for r in rows if r["is_ceiling"]]
    ceil_tp = [r for r in ceil_rows if r["throughput"].ok]
    ceil_t = [r for r in ceil_rows if r["time"].ok and r["time"].value > 0]
    ceiling = None
    if ceil_tp:
        ceiling = max(ceil_tp, key=lambda r: r["throughput"].value)
    elif ceil_t:
        ceiling = min(ceil_t, key=lambda r: r["time"].value)
    for r in rows:
        r["pct_of_ceiling"] = None
        if ceiling is None or r["is_ceiling"] or r["failed"]:
            continue
        if ceil_tp and r["throughput"].ok and ceiling["throughput"].value > 0:
            r["pct_of_ceiling"] = 100.0 * r["throughput"].value / ceiling["throughput"].value
        elif not ceil_tp and r["time"].ok and r["time"].value > 0:
            r["pct_of_ceiling"] = 100.0 * ceiling["time"].value / r["time"].value
    return ceiling


def _pick_best(rows: list, cands: list):
    """Never a failed / n/a row, never a ceiling; ties go to fewer workers."""
    if cands:
        return max(cands, key=lambda r: (r["speedup"], -sort_key_value(r["concurrency"])[1]))
    tp_c = [r for r in rows if not r["is_ceiling"] and not r["failed"] and r["throughput"].ok]
    return max(tp_c, key=lambda r: r["throughput"].value) if tp_c else None


def _verdict(cands: list) -> tuple:
    """(best sequential, best concurrent, concurrency gain, verdict band)."""
    seq = [r for r in cands if sort_key_value(r["concurrency"]) <= sort_key_value(1)]
    par = [r for r in cands if r not in seq]
    best_seq = max(seq, key=lambda r: r["speedup"]) if seq else None
    best_par = max(par, key=lambda r: r["speedup"]) if par else None
    gain = best_par["speedup"] / best_seq["speedup"] if best_seq and best_par and best_seq["speedup"] else None
    verdict = next(label for lo, label in VERDICT_BANDS if gain >= lo) if gain is not None else None
    return best_seq, best_par, gain, verdict


def _recommended(best, cands: list):
    """Smallest concurrency within DIMINISHING_RETURNS of the best speedup."""
    if best is None or best["speedup"] is None or len(cands) < 2:
        return None
    thr = best["speedup"] * (1 - DIMINISHING_RETURNS)
    good = [r for r in cands if r["speedup"] >= thr]
    min_c = min(good, key=lambda r: sort_key_value(r["concurrency"]))["concurrency"]
    return max((r for r in good if r["concurrency"] == min_c), key=lambda r: r["speedup"])


def _ref(r):
    if r is None:
        return None
    return {"strategy": r["strategy"], "concurrency": r["concurrency"], "speedup": opt_num(r["speedup"]),
            "throughput": json_num(r["throughput"].value) if r["throughput"].ok else None,
            "time": json_num(r["time"].value) if r["time"].ok else None}


def _row_json(r) -> dict:
    return {
        "strategy": r["strategy"],
        "concurrency": r["concurrency"],
        "time_s": r["time"].to_json(),
        "throughput_items_s": r["throughput"].to_json(),
        "memory_mb": r["memory"].to_json(),
        "speedup": opt_num(r["speedup"]),
        "is_baseline": r["is_baseline"],
        "is_ceiling": r["is_ceiling"],
        "failed": r["failed"],
        "pct_of_ceiling": opt_num(r["pct_of_ceiling"]),
        "extras": r["extras"],
    }


def analyse_scenario(prefix: str, other: tuple, s: dict, units: dict) -> dict:
    metrics = s["metrics"]
    primary, extras = primary_metrics(metrics)
    other_d = dict(other)
    n_items = param_value(other_d["n_items"]) if "n_items" in other_d else None
    rows = [make_row(key, metrics, primary, extras, units, n_items) for key in _row_order(s["order"])]
    for r in rows:
        r["is_ceiling"] = is_ceiling(r["strategy"])
    baseline = _pick_baseline(rows)
    _add_speedups(rows, baseline)
    ceiling = _add_ceiling(rows)
    cands = [r for r in rows if not r["is_ceiling"] and r["speedup"] is not None]
    best = _pick_best(rows, cands)
    best_seq, best_par, gain, verdict = _verdict(cands)
    best_pct = best["pct_of_ceiling"] if best is not None else None
    return {
        "title": prefix + (" — " + ", ".join(f"{k}={v}" for k, v in other) if other else ""),
        "benchmark_class": prefix,
        "params": dict(other),
        "benchmarks": dict(primary),
        "extra_benchmarks": [m for _, m in extras],
        "throughput_derived": "throughput" not in primary and any(r["throughput"].derived for r in rows),
        "rows": [_row_json(r) for r in rows],
        "baseline": _ref(baseline),
        "best": _ref(best),
        "verdict": verdict,
        "concurrency_gain": opt_num(gain),
        "best_sequential": _ref(best_seq),
        "best_concurrent": _ref(best_par),
        "recommended": _ref(_recommended(best, cands)),
        "ceiling": _ref(ceiling),
        "best_pct_of_ceiling": opt_num(best_pct),
        "_sort": tuple(sort_key_value(number_or_str(v)) for _, v in other),
    }


def build_report(db, machine=None, commit=None, env=None, repo=None) -> dict:
    machine = db.pick_machine(machine)
    rf = db.select(machine, commit, env, repo)
    rows, stale, removed = current_rows(rf, db.benchmarks)
    scale_rows = {k: v for k, v in rows.items() if k.startswith(SCALE_MODULE + ".")}  # its own tables
    scenarios, others = build_scenarios({k: v for k, v in rows.items() if k not in scale_rows}, db.benchmarks)
    rep = {
        "commit": rf.commit_hash,
        "date": rf.date,
        "date_utc": rf.date_str,
        "machine": machine,
        "env": rf.env_name,
        "python": rf.python,
        "results_file": rf.path,
        "rules": RULES,
        "scenarios": scenarios,
        "other_benchmarks": others,
        "stale_ignored": stale,
        "removed_ignored": removed,
    }
    rep["findings"] = [*core_findings(rep), phase2(rep), phase1_method(rep), faults(rep)]
    if scale_rows:
        rep["scaling"] = build_scaling(scale_rows, db.benchmarks, counted=rows)
    disk_memory = build_disk_memory(rows, db.benchmarks)
    if disk_memory:
        rep["disk_memory"] = disk_memory
    return rep

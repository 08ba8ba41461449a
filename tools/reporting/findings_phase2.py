"""Findings about stac-manager against the harness: Phase 2 concurrency, the Phase 1 method,
and what each strategy delivered under faults (see ``findings`` for the shape of a finding)."""

from __future__ import annotations

from .findings import (
    NOT_MEASURED,
    SAME,
    conditions,
    extra,
    finding,
    items_s,
    not_measured,
    number,
    row,
    scenarios,
    times,
    tp,
    workers,
)
from .metrics import fmt_value, sort_key_value
from .rules import strategy_kind

# --------------------------------------------------------------------------------------
# Phase 2: stac-manager's own concurrency against the best harness prototype
# --------------------------------------------------------------------------------------

WORKER_STRATEGY = {"module": "semaphore", "module_queue": "queue"}


def _pooled(r) -> bool:
    return sort_key_value(r["concurrency"]) > sort_key_value(1)


def _phase2_level(s: dict, c) -> dict | None:
    """module, module_queue and the best harness row of scenario ``s`` at concurrency ``c``."""
    subject = {st: tp(row(s, st, c)) for st in WORKER_STRATEGY}
    harness = [r for r in s["rows"] if r["concurrency"] == c and strategy_kind(r["strategy"]) == "harness"
               and tp(r) is not None]
    if all(v is None for v in subject.values()):
        return None
    best = max(harness, key=tp) if harness else None
    return {"concurrency": c, **subject, "best_harness": best and {"strategy": best["strategy"],
                                                                   "throughput": tp(best)}}


def _phase2_rows(s: dict, levels: list) -> tuple[list, list]:
    rows, parts = [], []
    for lv in levels:
        mod, queue, best = lv["module"], lv["module_queue"], lv["best_harness"]
        pct = 100.0 * mod / best["throughput"] if mod is not None and best else None
        if mod is not None and queue is not None:
            win = "module_queue" if queue > mod else "module"
            winner = f"`{win}` ({WORKER_STRATEGY[win]}, {max(mod, queue) / min(mod, queue):.2f}x)"
        else:
            winner = "n/a"
        rows.append([s["title"], str(lv["concurrency"]), items_s(mod), items_s(queue),
                     f"`{best['strategy']}` {items_s(best['throughput'])}" if best else "n/a",
                     f"{pct:.0f}%" if pct is not None else "n/a", winner])
        lv["module_pct_of_harness"] = pct
        if pct is not None:
            parts.append((pct, workers(lv["concurrency"])))
    return rows, parts


def _queue_wins(levels: list) -> str:
    pairs = [(lv["module"], lv["module_queue"]) for lv in levels
             if lv["module"] is not None and lv["module_queue"] is not None]
    if not pairs:
        return ""
    wins = sum(q > m for m, q in pairs)
    same = all(max(m, q) / min(m, q) <= SAME for m, q in pairs)
    return (f"; `worker_strategy=queue` (`module_queue`) is faster at {wins} of {len(pairs)} levels"
            + (f" (within {(SAME - 1) * 100:.0f}% of each other everywhere)" if same else ""))


def phase2(rep: dict) -> dict:
    title = "Phase 2 — does stac-manager's own `concurrency` reach the best harness prototype"
    rows, parts, data, without = [], [], [], []
    for s in rep["scenarios"]:
        pooled = [r for r in s["rows"] if strategy_kind(r["strategy"]) == "subject" and _pooled(r)]
        if not pooled:
            continue
        levels = [lv for c in sorted({r["concurrency"] for r in pooled}, key=sort_key_value)
                  if (lv := _phase2_level(s, c)) is not None]
        if not levels:
            without.append(s)
            continue
        more, said = _phase2_rows(s, levels)
        rows += more
        reach = ", ".join(f"{pct:.0f}%" + (" of the best harness prototype" if i == 0 else "") + f" at {w}"
                          for i, (pct, w) in enumerate(said)) or "n/a (no harness row at its levels)"
        parts.append(f"in {s['title']}, `module` reaches {reach}" + _queue_wins(levels))
        data.append({"scenario": s["title"], "levels": levels})
    na = "stac-manager's rows at concurrency > 1 are n/a in " + _grouped(without) + "." if without else ""
    if not data:
        if without:
            return finding("phase2", title, "This commit has no Phase 2 `concurrency`: " + na, measured=False,
                           data={"without_phase2": [s["title"] for s in without]})
        return not_measured("phase2", title, "stac-manager rows at concurrency > 1")
    headers = ["Scenario", "Concurrency", "module (semaphore)", "module_queue (queue)", "Best harness row",
               "module / best harness", "Faster worker_strategy"]
    text = "; ".join(parts) + "." + (f" Elsewhere {na}" if na else "")
    text = text[0].upper() + text[1:]
    return finding("phase2", title, text, {"headers": headers, "rows": rows},
                   {"scenarios": data, "without_phase2": [s["title"] for s in without]})


def _grouped(found: list) -> str:
    """Scenarios by class: ``api_ingest.Search (latency_ms=0; latency_ms=50)``."""
    by_class: dict = {}
    for s in found:
        by_class.setdefault(s["benchmark_class"], []).append(conditions(s))
    return ", ".join(f"`{c}`" + (f" ({'; '.join(v)})" if v != ["—"] else "") for c, v in by_class.items())


# --------------------------------------------------------------------------------------
# The Phase 1 method
# --------------------------------------------------------------------------------------

WHY_PHASE1 = (
    "The PRD's file-mode figure (2,797 items/s) was measured the Phase 1 way: tracemalloc hooks every "
    "allocation while it traces and stac-manager's ingest allocates a tree of dicts per item, so that "
    "number timed the tracer along with the module (the suite times the module untraced and takes "
    "memory from RSS instead).")


def phase1_method(rep: dict) -> dict:
    title = "Phase 1 method — the PRD's file-mode number, reproduced and explained"
    directory = next(iter(scenarios(rep, "file_ingest.Directory")), None)
    suite = tp(row(directory, "module", 1))
    method = {s["params"].get("timing"): tp(row(s, "module", 1)) for s in scenarios(rep, "file_ingest.Phase1Method")}
    traced, plain = method.get("tracemalloc"), method.get("plain")
    if traced is None or suite is None:
        what = "`file_ingest.Phase1Method` (timing=tracemalloc)" if traced is None else \
            "`file_ingest.DirectoryModule` (module × 1)"
        return not_measured("phase1_method", title, what)
    text = (f"The suite's own module throughput (`file_ingest.DirectoryModule`, module × 1) is {items_s(suite)}; "
            f"counting the same module's items inside `tracemalloc`, as the Phase 1 script "
            f"`benchmark_sequential_files` does, gives {items_s(traced)} (the same loop untraced: "
            f"{items_s(plain)}): the Phase 1 method reads {suite / traced:.1f}x slower. " + WHY_PHASE1)
    rows = [["`file_ingest.DirectoryModule` (the suite)", "untraced", items_s(suite), times(suite, traced)],
            ["`file_ingest.Phase1Method`", "untraced (timing=plain)", items_s(plain), times(plain, traced)],
            ["`file_ingest.Phase1Method`", "inside tracemalloc (Phase 1)", items_s(traced), times(traced, traced)]]
    headers = ["Benchmark", "Timed", "Throughput", "vs the Phase 1 method"]
    return finding("phase1_method", title, text, {"headers": headers, "rows": rows},
                   {"suite": suite, "plain": plain, "tracemalloc": traced, "ratio": suite / traced})


# --------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------

def _fault_outcome(time_cell: dict, delivered) -> str:
    if time_cell["status"] == "ok":
        return fmt_value(time_cell["value"], "seconds")
    if time_cell["status"] == "failed":
        return "failed"
    return "gave up" if delivered is not None else "n/a"


def _fault_entries(rep: dict) -> list:
    """One entry per (strategy, concurrency, fault) run that delivered or timed something."""
    entries, order = [], {}
    for s in scenarios(rep, "api_ingest.Faults"):
        fault = s["params"].get("fault", "—")
        for r in s["rows"]:
            order.setdefault(r["strategy"], len(order))
            delivered, time_cell = extra(r, "track_delivered"), r["time_s"]
            if delivered is None and time_cell["status"] not in ("ok", "failed"):
                continue  # n/a: not meaningful at this concurrency
            entries.append({"strategy": r["strategy"], "concurrency": r["concurrency"], "fault": fault,
                            "delivered": delivered, "time_s": number(time_cell),
                            "outcome": _fault_outcome(time_cell, delivered)})
    entries.sort(key=lambda e: (order[e["strategy"]], sort_key_value(e["concurrency"])))
    return entries


def _fault_summary(entries: list) -> str:
    parts = []
    for strategy in dict.fromkeys(e["strategy"] for e in entries):
        mine = [e for e in entries if e["strategy"] == strategy]
        gave_up = [e for e in mine if e["outcome"] == "gave up"]
        who = f"stac-manager (`{strategy}`)" if strategy_kind(strategy) == "subject" else f"`{strategy}`"
        if not gave_up and all(e["delivered"] == 1.0 for e in mine):
            continue
        parts.append(f"{who} gave up after delivering " + ", ".join(
            f"{e['delivered'] * 100:.0f}% ({e['fault']} × {e['concurrency']})" for e in gave_up)
            if gave_up else f"{who}: " + ", ".join(f"{e['fault']} {e['outcome']}" for e in mine))
    complete = [s for s in dict.fromkeys(e["strategy"] for e in entries)
                if all(e["delivered"] == 1.0 and e["time_s"] is not None for e in entries if e["strategy"] == s)]
    return ("; ".join(parts) + (". " if parts else "") + "Every item under every fault: "
            + (", ".join(f"`{s}`" for s in complete) or "none") + ".")


def faults(rep: dict) -> dict:
    title = "Faults — what each strategy delivered"
    entries = _fault_entries(rep)
    if not entries:
        return not_measured("faults", title, "`api_ingest.Faults` / `FaultsModule`")
    rows = [[f"`{e['strategy']}`", str(e["concurrency"]), e["fault"],
             "n/a" if e["delivered"] is None else f"{e['delivered'] * 100:.0f}%", e["outcome"]] for e in entries]
    text = (_fault_summary(entries) + " A run that gives up is n/a in asv (the error is in its log); "
            "`track_delivered` records the fraction it fetched.")
    headers = ["Strategy", "Concurrency", "Fault", "Delivered", "Time, or gave up"]
    return finding("faults", title, text, {"headers": headers, "rows": rows}, {"runs": entries})


__all__ = ["phase2", "phase1_method", "faults", "NOT_MEASURED"]

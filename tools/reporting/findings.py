"""The PRD's questions answered from one commit's scenarios (``analyse.build_report``).

Each finding is a dict: ``key``, ``title``, ``measured`` (False: the rows it needs are not
at this commit), ``text`` (one paragraph, its numbers computed here), ``table`` (``headers`` +
``rows`` of strings, or None) and ``data`` (the numbers, for the JSON).  Q1-Q4 live here;
Phase 2, the Phase 1 method and the fault runs in ``findings_phase2``.  Nothing here is a
constant of the results: a question whose rows are missing says so.
"""

from __future__ import annotations

from .metrics import fmt_num
from .rules import DIMINISHING_RETURNS, strategy_kind

NOT_MEASURED = "not measured at this commit (run the full profile)"
#: Ratios within this factor of 1 are "the same" in the findings' words (a 2-core VM's noise).
SAME = 1.10
STAGES = ("ingest", "transform", "output", "checkpoint")


# --------------------------------------------------------------------------------------
# Reading the scenarios
# --------------------------------------------------------------------------------------

def scenarios(rep: dict, cls: str) -> list:
    return [s for s in rep["scenarios"] if s["benchmark_class"] == cls]


def row(s: dict | None, strategy: str, conc) -> dict | None:
    if s is None:
        return None
    return next((r for r in s["rows"] if r["strategy"] == strategy and r["concurrency"] == conc), None)


def number(cell: dict | None):
    return cell["value"] if cell and cell.get("status") == "ok" else None


def tp(r: dict | None):
    return None if r is None or r["failed"] else number(r["throughput_items_s"])


def mem(r: dict | None):
    return None if r is None else number(r["memory_mb"])


def extra(r: dict | None, method: str):
    return None if r is None else number(r["extras"].get(method))


def best_of(s: dict | None, strategy: str):
    """The row of ``strategy`` with the highest throughput, or None."""
    rows = [r for r in (s or {}).get("rows", []) if r["strategy"] == strategy and tp(r) is not None]
    return max(rows, key=tp) if rows else None


def conditions(s: dict) -> str:
    """The scenario's parameters other than n_items, e.g. ``latency_ms=50``."""
    return ", ".join(f"{k}={v}" for k, v in s["params"].items() if k != "n_items") or "—"


def items_s(v) -> str:
    return "n/a" if v is None else f"{fmt_num(v)} items/s"


def mb(v) -> str:
    return "n/a" if v is None else f"{fmt_num(v)} MB"


def times(a, b) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "n/a"


def workers(n) -> str:
    return f"{n} worker" if n == 1 else f"{n} workers"


def finding(key, title, text, table=None, data=None, measured=True) -> dict:
    return {"key": key, "title": title, "measured": measured, "text": text, "table": table, "data": data or {}}


def not_measured(key, title, what) -> dict:
    return finding(key, title, f"{what}: {NOT_MEASURED}.", measured=False)


# --------------------------------------------------------------------------------------
# Q1: where the end-to-end time goes
# --------------------------------------------------------------------------------------

def q1_time_shares(rep: dict) -> dict:
    title = "Q1 — where the end-to-end time goes"
    measured = []
    for s in scenarios(rep, "pipeline.Pipeline"):
        r = row(s, "module", 1)
        shares = {stage: extra(r, f"track_share_{stage}") for stage in STAGES}
        if any(v is not None for v in shares.values()):
            measured.append((s, shares, tp(r)))
    if not measured:
        return not_measured("q1_time_shares", title, "`pipeline.PipelineModule` (module × 1) stage shares")
    rows, parts, data = [], [], []
    for s, shares, throughput in measured:
        known = [v for v in shares.values() if v is not None]
        rest = max(0.0, 100.0 - sum(known))
        rows.append([conditions(s), *[_pct(shares[st]) for st in STAGES], _pct(rest), items_s(throughput)])
        top = max((st for st in STAGES if shares[st] is not None), key=lambda st: shares[st])
        order = sorted((st for st in STAGES if shares[st] is not None), key=lambda st: -shares[st])
        parts.append(f"with {conditions(s)}, **{top}** takes the largest share ({shares[top]:.0f}%; then "
                     + ", ".join(f"{st} {shares[st]:.0f}%" for st in order[1:]) + ")")
        data.append({"params": s["params"], "shares_pct": shares, "unaccounted_pct": rest,
                     "throughput": throughput})
    missing = [v for v in ("False", "True") if not any(s["params"].get("checkpoint") == v for s, *_ in measured)]
    text = ("stac-manager end to end (`pipeline.PipelineModule`, module × 1): " + "; ".join(parts) + "."
            + "".join(f" With checkpoint={v}: {NOT_MEASURED}." for v in missing))
    headers = ["Parameters", "Ingest", "Transform", "Output", "Checkpoint", "Unaccounted", "Throughput"]
    return finding("q1_time_shares", title, text, {"headers": headers, "rows": rows}, {"pipeline": data})


def _pct(v) -> str:
    return "n/a" if v is None else f"{v:.0f}%"


# --------------------------------------------------------------------------------------
# Q2: processes against the GIL (file mode)
# --------------------------------------------------------------------------------------

def q2_processes(rep: dict) -> dict:
    title = "Q2 — do processes beat the GIL for file mode, and at what memory cost"
    s = next(iter(scenarios(rep, "file_ingest.Directory")), None)
    proc, thr, loop = best_of(s, "processes"), best_of(s, "threads"), row(s, "loop", 1)
    if proc is None or thr is None:
        return not_measured("q2_processes", title, "`file_ingest.Directory` processes and threads rows")
    p_tp, t_tp, l_tp = tp(proc), tp(thr), tp(loop)
    ratio = p_tp / t_tp
    verdict = ("processes beat the GIL" if ratio > SAME else
               "processes lose to threads" if ratio < 1 / SAME else "processes gain nothing over threads")
    cost = (f"{mem(proc) / mem(thr):.1f}x the threads' memory" if mem(proc) and mem(thr)
            else "memory n/a")
    text = (f"`processes` at {workers(proc['concurrency'])} read {items_s(p_tp)}: {ratio:.2f}x the best "
            f"`threads` ({items_s(t_tp)} at {thr['concurrency']}) and {times(p_tp, l_tp)} the `loop` "
            f"({items_s(l_tp)}), with a peak RSS increment of {mb(mem(proc))} against {mb(mem(thr))} "
            f"(threads) and {mb(mem(loop))} (loop): {verdict}, at {cost}.")
    rows = [[r["strategy"], str(r["concurrency"]), items_s(tp(r)), times(tp(r), l_tp), mb(mem(r))]
            for r in (proc, thr, loop) if r is not None]
    data = {r["strategy"]: {"concurrency": r["concurrency"], "throughput": tp(r), "memory_mb": mem(r)}
            for r in (proc, thr, loop) if r is not None}
    table = {"headers": ["Strategy", "Concurrency", "Throughput", "vs loop", "Memory (track_mem_mb)"],
             "rows": rows}
    return finding("q2_processes", title, text, table, {"file_ingest.Directory": data, "ratio": ratio})


# --------------------------------------------------------------------------------------
# Q3: the best worker count per mode
# --------------------------------------------------------------------------------------

Q3_MODES = (("file", "file_ingest.Directory"), ("API", "api_ingest.Search"), ("output", "output.ItemFiles"))


def q3_workers(rep: dict) -> dict:
    title = "Q3 — the best worker count per mode"
    rows, data, parts = [], [], []
    for mode, cls in Q3_MODES:
        found = scenarios(rep, cls)
        if not found:
            rows.append([mode, "—", NOT_MEASURED, "", "", ""])
            parts.append(f"{mode}: {NOT_MEASURED}")
            continue
        for s in found:
            rec, best = s["recommended"], s["best"]
            if rec is None:
                rows.append([mode, conditions(s), "n/a (fewer than two rows with a speedup)", "", "", ""])
                continue
            best_txt = f"`{best['strategy']}` × {best['concurrency']}, {best['speedup']:.1f}x"
            rows.append([mode, conditions(s), str(rec["concurrency"]), f"`{rec['strategy']}`",
                         f"{rec['speedup']:.1f}x", best_txt])
            where = f" ({conditions(s)})" if conditions(s) != "—" else ""
            parts.append(f"{mode}{where} {workers(rec['concurrency'])}")
            data.append({"mode": mode, "class": cls, "params": s["params"], "recommended": rec, "best": best})
    if not data:
        return not_measured("q3_workers", title, "Recommended workers (file, API and output scenarios)")
    text = (f"Smallest concurrency within {DIMINISHING_RETURNS * 100:.0f}% of the scenario's best speedup: "
            + "; ".join(parts) + ".")
    headers = ["Mode", "Condition", "Recommended workers", "Strategy", "Speedup", "Best row"]
    return finding("q3_workers", title, text, {"headers": headers, "rows": rows}, {"scenarios": data})


# --------------------------------------------------------------------------------------
# Q4: output format
# --------------------------------------------------------------------------------------

#: stac-manager's default OutputConfig.buffer_size: its JSON output there is Q4's reference.
DEFAULT_BUFFER = 1000
FORMATS = {"feature_collection": "FeatureCollection (one file)", "ndjson": "NDJSON (one file)",
           "parquet": "Parquet (one file)", "geoparquet": "stac-geoparquet (one file)"}


def _q4_rows(rep: dict) -> list:
    """(writer, format, parameters, items/s) of every output row Q4 compares."""
    out = []
    for cls, fmt in (("output.ModuleJson", "JSON, one file per item"),
                     ("output.ModuleParquet", "Parquet, a file per buffer")):
        for s in scenarios(rep, cls):
            out.append(("stac-manager OutputModule", fmt, conditions(s), tp(row(s, "module", 1))))
    for s in scenarios(rep, "output.ItemFiles"):
        cands = [r for r in s["rows"] if strategy_kind(r["strategy"]) == "harness" and tp(r) is not None]
        if cands:
            b = max(cands, key=tp)
            out.append((f"harness `{b['strategy']}` × {b['concurrency']} (best)", "JSON, one file per item",
                        conditions(s), tp(b)))
    for s in scenarios(rep, "output.SingleFile"):
        for r in s["rows"]:
            if r["strategy"] in FORMATS:
                out.append((f"harness `{r['strategy']}`", FORMATS[r["strategy"]], conditions(s), tp(r)))
    return out


def q4_formats(rep: dict) -> dict:
    title = "Q4 — how much the output format changes throughput"
    found = _q4_rows(rep)
    if not any(v is not None for *_, v in found):
        return not_measured("q4_formats", title, "Output throughput by format")
    json_rows = [(p, v) for w, f, p, v in found if w.startswith("stac") and f.startswith("JSON") and v is not None]
    ref = next((v for p, v in json_rows if p == f"buffer_size={DEFAULT_BUFFER}"), None) or \
        next((v for _, v in json_rows), None)
    rows = [[w, f, p, items_s(v), times(v, ref)] for w, f, p, v in found]
    best = max(((w, f, p, v) for w, f, p, v in found if v is not None), key=lambda x: x[3])
    sm = [(f, p, v) for w, f, p, v in found if w.startswith("stac") and v is not None]
    text = ("stac-manager writes " + ", ".join(f"{items_s(v)} as {f.split(',')[0]} ({p})" for f, p, v in sm)
            if sm else f"stac-manager's OutputModule: {NOT_MEASURED}")
    text += (f"; the fastest writer measured is {best[0]} ({best[1]}, {best[2]}) at {items_s(best[3])}"
             + (f", {times(best[3], ref)} stac-manager's JSON." if ref else "."))
    if not any(w.startswith("harness") and v is not None for w, _, _, v in found):
        text += f" The harness writers (`output.ItemFiles`, `output.SingleFile`): {NOT_MEASURED}."
    headers = ["Writer", "Format", "Parameters", "Throughput", "vs stac-manager JSON"]
    data = [{"writer": w, "format": f, "params": p, "throughput": v} for w, f, p, v in found]
    return finding("q4_formats", title, text, {"headers": headers, "rows": rows}, {"rows": data, "reference": ref})


def core_findings(rep: dict) -> list:
    """Q1-Q4 (``findings_phase2`` answers the rest)."""
    return [q1_time_shares(rep), q2_processes(rep), q3_workers(rep), q4_formats(rep)]

"""Markdown for the report, the gate and the history; JSON for all three."""

from __future__ import annotations

import json

from tabulate import tabulate

from .gate import CATEGORIES
from .metrics import fmt_num, fmt_value
from .rules import DIMINISHING_RETURNS
from .scaling import GROWTH_FACTOR, ITEM_KB, MEMORY_FLOOR_MB, n_label

TABLEFMT = "github"


def table(rows, headers) -> str:
    return tabulate(rows, headers=headers, tablefmt=TABLEFMT, disable_numparse=True)


def md_cell(text: str, limit: int = 80) -> str:
    """Free text (a commit subject) as one Markdown table cell: ``|`` escaped, one line, at most
    ``limit`` characters (cut with an ellipsis)."""
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[:limit - 1].rstrip() + "…"
    return text.replace("|", "\\|")


def to_json(data) -> str:
    return json.dumps(data, indent=2, allow_nan=False, default=str) + "\n"


def _workers(n) -> str:
    return f"{n} worker" if n == 1 else f"{n} workers"


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------

def _fmt_cell_json(c: dict, fmt=fmt_num) -> str:
    if c["status"] == "ok":
        return fmt(c["value"])
    return "—" if c["status"] == "missing" else c["status"]


def _row_status(r: dict) -> str:
    st = [r[k]["status"] for k in ("time_s", "throughput_items_s")]
    if "failed" in st:
        return "failed"
    return "n/a" if "n/a" in st else "—"


def _all_na(r: dict) -> bool:
    """n/a throughout, extras included (a fault run that gave up still shows what it delivered)."""
    cells = [r["time_s"], r["throughput_items_s"], r["memory_mb"]]
    return all(c.get("status") == "n/a" for c in cells) and not any(
        c.get("status") == "ok" for c in r["extras"].values())


def _scenario_headers(s: dict, has_ceiling: bool, extras: list) -> list:
    headers = ["Strategy", "Concurrency", "Time (s)", "Throughput (items/s)", "Memory (MB)", "Speedup"]
    if has_ceiling:
        headers.append("% of ceiling")
    ex_units = {}
    for r in s["rows"]:
        for m, c in r["extras"].items():
            ex_units.setdefault(m, c.get("unit"))
    for m in extras:
        u = ex_units.get(m)
        label = m[6:] if m.startswith("track_") else m
        headers.append(f"{label} ({u})" if u and u != "unit" else label)
    return headers


def _scenario_line(r: dict, has_ceiling: bool, extras: list) -> list:
    if r["is_baseline"]:
        sp = "baseline"
    elif r["speedup"] is not None:
        sp = f"{r['speedup']:.1f}x"
    else:
        sp = _row_status(r)
    line = [r["strategy"], str(r["concurrency"]), _fmt_cell_json(r["time_s"]),
            _fmt_cell_json(r["throughput_items_s"]), _fmt_cell_json(r["memory_mb"], lambda v: f"{v:.1f}"), sp]
    if has_ceiling:
        if r["is_ceiling"]:
            line.append("ceiling")
        elif r["pct_of_ceiling"] is not None:
            line.append(f"{r['pct_of_ceiling']:.0f}%")
        else:
            line.append(_row_status(r))
    for m in extras:
        c = r["extras"].get(m)
        line.append(_fmt_cell_json(c) if c else "—")
    return line


def _hidden_note(hidden: list) -> list:
    if not hidden:
        return []
    groups: dict = {}
    for strategy, conc in hidden:
        groups.setdefault(strategy, []).append(conc)
    listed = "; ".join(f"{st} at {', '.join(cs)}" for st, cs in groups.items())
    return [f"_n/a (not at this commit, or not meaningful), not shown: {listed}._", ""]


def _best_line(best) -> str:
    if best is not None and best["speedup"] is not None:
        return (f"**Best Performance**: {_workers(best['concurrency'])} with {best['speedup']:.1f}x speedup "
                f"(`{best['strategy']}`)")
    if best is not None:
        return (f"**Best Performance**: {_workers(best['concurrency'])} (`{best['strategy']}`); "
                "speedup n/a (no baseline row with a number)")
    return "**Best Performance**: n/a (no row with a number)"


def _summary_lines(s: dict) -> list:
    """Best performance, verdict, recommended workers, ceiling, derived-throughput note."""
    out = [_best_line(s["best"]), ""]
    if s["verdict"]:
        par, seq = s["best_concurrent"], s["best_sequential"]
        out += [f"**Verdict**: {s['verdict']} (concurrency gain {s['concurrency_gain']:.1f}x: "
                f"`{par['strategy']}` at {par['concurrency']} vs `{seq['strategy']}` sequential)", ""]
    rec = s["recommended"]
    if rec is not None:
        out += [f"**Recommended workers**: {rec['concurrency']} (`{rec['strategy']}`, "
                f"{rec['speedup']:.1f}x; smallest concurrency within "
                f"{DIMINISHING_RETURNS * 100:.0f}% of the best speedup)", ""]
    ceil = s["ceiling"]
    if ceil is not None:
        what = (f"{fmt_num(ceil['throughput'])} items/s" if ceil["throughput"] is not None
                else f"{fmt_num(ceil['time'])} s")
        line = f"**Ceiling**: `{ceil['strategy']}` at {_workers(ceil['concurrency'])}, {what}"
        if s["best_pct_of_ceiling"] is not None:
            line += f"; the best strategy reaches {s['best_pct_of_ceiling']:.0f}% of it"
        out += [line, ""]
    if s["throughput_derived"]:
        out += ["_Throughput derived as n_items / time._", ""]
    return out


def render_scenario(s: dict, heading: str = "###", chart: str | None = None) -> str:
    has_ceiling = any(r["is_ceiling"] for r in s["rows"])
    extras = [m for m in s["extra_benchmarks"] if not m.startswith("peakmem_")]
    lines, hidden = [], []
    for r in s["rows"]:
        if _all_na(r):
            hidden.append((r["strategy"], str(r["concurrency"])))
        else:
            lines.append(_scenario_line(r, has_ceiling, extras))
    out = [f"{heading} {s['title']}", "", table(lines, _scenario_headers(s, has_ceiling, extras)), ""]
    pictures = [f"![Speedup versus concurrency: {s['title']}]({chart})", ""] if chart else []
    return "\n".join(out + _hidden_note(hidden) + _summary_lines(s) + pictures)


def render_findings(rep: dict) -> list:
    """The Findings section: each finding's heading (with the commit), paragraph and table."""
    if not rep.get("findings"):
        return []
    commit = rep["commit"][:8]
    out = ["### Findings", ""]
    for f in rep["findings"]:
        out += [f"#### {f['title']} (commit `{commit}`)", "", f["text"], ""]
        if f["table"]:
            out += [table(f["table"]["rows"], f["table"]["headers"]), ""]
    return out


def _scaled(c: dict, key: str, status: str) -> str:
    return fmt_num(c[key]) if c[key] is not None else c[status]


def _count(value) -> str:
    return f"{value / 1e6:.2f} M" if value else "—"


def render_scaling(suites: list, pictures: dict) -> list:
    """The scale selection's tables: a table (and a chart) per suite."""
    if not suites:
        return []
    out = ["### Scaling", "",
           f"Per item against the collection's size, one run each (`tools.bench scale`). Time: `linear` while the "
           f"per-item cost at the largest n is within {GROWTH_FACTOR:g}x of the smallest's; memory: the peak's "
           f"growth per item added, `holds the items` from {ITEM_KB:g} KB an item (a generated item's JSON), "
           f"`streams` under {MEMORY_FLOOR_MB:g} MB of growth in all (docs/scale.md). Instructions/item: the count of the "
           f"history row the row is built on, at 30 items (it repeats to 0.5 %; wall time does not).", ""]
    for s in suites:
        sizes = s["sizes"]
        headers = (["Row"] + [f"µs/item {n_label(n)}" for n in sizes] + [f"MB/1K items {n_label(n)}" for n in sizes]
                   + ["Instructions/item", "Time", "Memory"])
        lines = []
        for r in s["rows"]:
            cells = [r["cells"].get(n) for n in sizes]
            extra = ", ".join(f"{k}={v}" for k, v in r["params"].items() if k not in ("strategy", "concurrency"))
            lines.append([f"`{r['row']}`" + (f" ({extra})" if extra else "")]
                         + [_scaled(c, "us_per_item", "time_status") if c else "—" for c in cells]
                         + [_scaled(c, "mb_per_1k", "mem_status") if c else "—" for c in cells]
                         + [_count(r.get("instructions_per_item")), r["time_verdict"] or "—",
                            r["memory_verdict"] or "—"])
        out += [f"#### {s['suite']}", "", table(lines, headers), ""]
        if s["suite"] in pictures:
            out += [f"![{s['suite']}: per item against n]({pictures[s['suite']]})", ""]
    return out


def render_disk_memory(pairs: list) -> list:
    """Each in-memory output row beside its on-disk twin: how much of the write is the disk."""
    if not pairs:
        return []
    lines = [[f"`{p['row']}`", ", ".join(f"{k}={v}" for k, v in p["params"].items()), fmt_num(p["disk"]),
              fmt_num(p["memory"]), f"{p['disk_share']:.0%}"] for p in pairs]
    return ["### Disk against memory", "",
            "The write's throughput (items/s, the write alone) on disk and into a tmpfs, at the same parameters; "
            "the disk's share of the write is 1 - disk / memory (below 0: noise).", "",
            table(lines, ["Row", "Parameters", "Disk", "Memory", "Disk's share of the write"]), ""]


def render_report(rep: dict) -> str:
    out = [
        f"## Benchmark report — commit `{rep['commit'][:8]}`",
        "",
        f"Machine `{rep['machine']}`, environment `{rep['env']}`, commit date {rep['date_utc']} UTC.",
        "",
        f"Verdict bands: {rep['rules']['verdict']}. Recommended workers: {rep['rules']['recommended_workers']}. "
        "Skipped runs show as `n/a`, failed runs as `failed`.",
        "",
    ]
    out += render_findings(rep)
    out += render_scaling(rep.get("scaling") or [], rep.get("scaling_charts") or {})
    out += render_disk_memory(rep.get("disk_memory") or [])
    if not rep["scenarios"] and not rep["other_benchmarks"] and not rep.get("scaling"):
        out += ["_No current results for this commit (all rows stale or none recorded)._", ""]
    for s in rep["scenarios"]:
        out.append(render_scenario(s, chart=(rep.get("charts") or {}).get(s["title"])))
    if rep["other_benchmarks"]:
        rows = [[o["benchmark"], ", ".join(f"{k}={v}" for k, v in o["params"].items()) or "—",
                 fmt_value(o["value"], o["unit"]) if o["status"] == "ok" else o["status"]]
                for o in rep["other_benchmarks"]]
        out += ["### Other benchmarks", "", table(rows, ["Benchmark", "Parameters", "Value"]), ""]
    if rep["stale_ignored"]:
        out += [f"_Ignored {len(rep['stale_ignored'])} stale result(s) whose benchmark version no longer "
                f"matches benchmarks.json: {', '.join(rep['stale_ignored'])}._", ""]
    if rep.get("removed_ignored"):
        out += [f"_Ignored {len(rep['removed_ignored'])} result(s) of benchmarks no longer in benchmarks.json "
                f"(removed from the suite): {', '.join(rep['removed_ignored'])}._", ""]
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------------------
# Gate
# --------------------------------------------------------------------------------------

COMPARE_SECTIONS = [
    ("regressed", "Regressions (got worse)", True),
    ("failed", "Failed / became n/a", False),
    ("removed", "Removed (in the base, missing from the head)", False),
    ("improved", "Improvements", True),
    ("noise", "Moved, within noise (intervals overlap: not gated)", True),
    ("control", "Control rows that moved (not gated: they measure the machine)", True),
    ("fixed", "Now measured", False),
    ("untracked", "Changed, direction unknown", True),
    ("incomparable", "Not comparable (benchmark changed)", False),
]


def _companion(e: dict) -> str:
    """An instruction row's wall-time row (an allocation row's RSS row): its ratio and how the gate
    judged it."""
    c = e.get("companion")
    if not c:
        return "—"
    method = c["benchmark"].rsplit(".", 1)[-1]
    return f"`{method}` " + (f"{c['ratio']:.2f} ({c['category']})" if c["ratio"] is not None else c["category"])


def _compare_table(cmp: dict, cat: str, with_ratio: bool = True) -> str:
    """The rows of one category; instruction counts and allocation peaks first, each with its
    wall-time (RSS) row beside it."""
    chosen = sorted((e for e in cmp["entries"] if e["category"] == cat), key=lambda e: "companion" not in e)
    counted = any("companion" in e for e in chosen)
    rows = []
    for e in chosen:
        before = fmt_value(e["before"], e["unit"]) if e["before_status"] == "ok" else e["before_status"]
        after = fmt_value(e["after"], e["unit"]) if e["after_status"] == "ok" else e["after_status"]
        line = [f"`{e['benchmark']}`", e["params"] or "—", before, after]
        if with_ratio:
            line += [f"{e['ratio']:.2f}" if e["ratio"] is not None else "n/a", e["better"] or "?"]
        rows.append(line + ([_companion(e)] if counted else []))
    headers = ["Benchmark", "Parameters", "Before", "After"]
    if with_ratio:
        headers += ["Ratio", "Better"]
    return table(rows, headers + (["Its wall time / RSS (ratio)"] if counted else []))


def _gate_line(cmp: dict) -> str:
    c = cmp["counts"]
    allowed = c["removed"] and cmp.get("allow_removed")
    if not cmp["gate_failed"]:
        note = f"; {c['removed']} removed (allowed by --allow-removed)" if allowed else ""
        return f"**Gate: passed** — nothing regressed beyond the factor and the control drift{note}."
    parts = []
    if c["regressed"]:
        parts.append(f"{c['regressed']} got worse")
    if c["failed"]:
        parts.append(f"{c['failed']} failed / became n/a")
    if c["removed"] and not allowed:
        parts.append(f"{c['removed']} removed (in the base, missing from the head; --allow-removed if expected)")
    return f"**Gate: FAILED** — {', '.join(parts)}."


def _compare_header(cmp: dict) -> list:
    f, base, head = cmp["factor"], cmp["base"], cmp["head"]
    return [
        f"## Benchmark comparison `{base['commit'][:8]}` → `{head['commit'][:8]}`",
        "",
        f"Machine `{head['machine']}`, environment `{head['env']}`"
        + (f" (base: `{base['env']}`)" if base["env"] != head["env"] else "")
        + f". Factor {f:g}: time / memory rising, or throughput falling, by more than "
        f"{(f - 1) * 100:.0f}%, and by more than the control rows drifted, is a regression."
        + (f" Instruction counts (`track_instructions`, callgrind) and allocation peaks (`track_alloc_mb`, "
           f"tracemalloc) have factors of their own, {cmp['instructions_factor']:g} and "
           f"{cmp.get('alloc_factor', 1.05):g}, and no drift rule: the machine does not move them."
           if any("companion" in e for e in cmp["entries"]) else ""),
        "",
    ]


def _drift_worst(w: dict) -> str:
    r = w["ratio"]
    how = "unchanged" if r == 1 else f"{r:.2f}x worse" if r > 1 else f"{1 / r:.2f}x better"
    return f"`{w['benchmark']}` ({w['params'] or '—'}): {how}"


def _drift_section(cmp: dict) -> list:
    """What the controls saw: per kind, their number, the drift, the worst row, the threshold."""
    drift = cmp.get("drift") or {}
    out = ["### Control drift", "",
           "Harness and ceiling strategies and `*.Control` classes do not run stac-manager: what they "
           "moved is the machine. Drift = 90th percentile of max(r, 1/r) over their rows (r = head/base, "
           "> 1 = worse); a stac-manager row counts only beyond max(factor, drift). Control rows are never "
           "regressions.", ""]
    if not drift:
        return out + ["_No control rows measured on both sides: the factor alone decides._", ""]
    rows = [[kind, str(d["rows"]), f"{d['drift']:.2f}x", _drift_worst(d["worst"]), f"{d['threshold']:.2f}"]
            for kind, d in drift.items()]
    return out + [table(rows, ["Kind", "Control rows", "Drift", "Worst control row", "Threshold"]), ""]


def render_compare(cmp: dict, only_changed: bool = False) -> str:
    c = cmp["counts"]
    counts = [[label, str(c[k])] for k, label in CATEGORIES
              if c[k] or k in ("regressed", "failed", "improved", "unchanged")]
    out = _compare_header(cmp) + [_gate_line(cmp), "", table(counts, ["Outcome", "Count"]), ""]
    out += _drift_section(cmp)
    for cat, title, with_ratio in COMPARE_SECTIONS:
        if c[cat]:
            out += [f"### {title}", "", _compare_table(cmp, cat, with_ratio), ""]
    if not only_changed and c["unchanged"]:
        out += [f"<details><summary>Unchanged ({c['unchanged']})</summary>", "",
                _compare_table(cmp, "unchanged"), "", "</details>", ""]
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------------------

def render_history(target: str, branch, machine: str, shown: dict, headers: list, rows: list) -> str:
    return "\n".join([
        f"## History of `{target}`" + (f" on `{branch}`" if branch else ""),
        "",
        f"Machine `{machine}`, commits ordered by commit date."
        + (" Parameters: " + ", ".join(f"{k}={v}" for k, v in shown.items()) + "." if shown else ""),
        "",
        table(rows, headers),
    ]) + "\n"

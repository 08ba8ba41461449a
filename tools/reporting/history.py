"""One benchmark, or one scenario's summary, over the commits with results."""

from __future__ import annotations

from .analyse import build_scenarios, current_rows, scenario_class
from .commits import branch_commits
from .count_steps import count_changes, largest, render_count_changes
from .errors import ReportError
from .level_shifts import build_steps, render_steps
from .metrics import cell_status, default_unit, fmt_num, fmt_value, json_num, param_display, split_name
from .render import render_history
from .results import ResultsDB, param_names, refuse_unreadable

SCENARIO_HEADERS = ["Commit", "Date (UTC)", "Scenario", "Best", "Speedup", "Throughput (items/s)",
                    "Verdict", "Recommended workers"]


def parse_where(items) -> dict:
    where = {}
    for it in items or []:
        if "=" not in it:
            raise ReportError(f"--where expects NAME=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        where[k.strip()] = v.strip()
    return where


def _label(c) -> str:
    return ", ".join(f"{k}={v}" for k, v in c) or "value"


def history_files(db: ResultsDB, machine: str, env=None, branch=None, repo=None) -> list:
    """The machine's result files of one environment (and branch), oldest first."""
    files, bad = db.files(machine)
    bad = [b for b in bad if b.matches_env(env)]
    if env is not None:
        files = [f for f in files if f.env_name == env]
    else:
        envs = sorted({f.env_name for f in files})
        if len(envs) > 1:
            raise ReportError(f"results for several environments ({', '.join(envs)}): pick one with --env")
    if branch is not None:
        on = branch_commits(repo, branch)
        files = [f for f in files if f.commit_hash in on]
        bad = [b for b in bad if any(c.startswith(b.hash8) for c in on)]
    # a history with a commit silently missing would lie: an unreadable file is an error
    refuse_unreadable(bad, "history reads every commit: fix or remove it")
    if not files:
        raise ReportError(f"no results for machine {machine!r}" + (f" on branch {branch!r}" if branch else ""))
    return sorted(files, key=lambda f: (f.date or 0, f.commit_hash))


def _benchmark_cells(f, target: str, bench: dict, where: dict, columns: list) -> dict:
    """{(param name, value) tuple: cell} of one file's row for `target`; new columns appended."""
    row = f.rows.get(target)
    cells = {}
    if row is None:
        return cells
    meta = bench.get(target) or {}
    pnames = param_names(row, bench)
    stale = row.version is not None and meta and row.version != meta.get("version")
    for combo, v in zip(row.combos(), row.values, strict=False):
        named = tuple((k, param_display(p)) for k, p in zip(pnames, combo, strict=False))
        if any(str(dict(named).get(k)) != w for k, w in where.items()):
            continue
        if named not in columns:
            columns.append(named)
        st = "stale" if stale else cell_status(v)
        cells[named] = {"value": json_num(v) if st == "ok" else None, "status": st,
                        "text": fmt_value(v, default_unit(target, bench)) if st == "ok" else st}
    return cells


def benchmark_history(files: list, target: str, bench: dict, where: dict, shown: dict) -> tuple:
    """(headers, table, data) of one benchmark; `shown` gets the parameters fixed throughout."""
    columns, per_file = [], []
    for f in files:
        per_file.append((f, _benchmark_cells(f, target, bench, where, columns)))
    if not columns:
        raise ReportError(f"no results for {target!r} match the --where filter")
    # show in the headers only the parameters that vary between columns
    fixed = {k: v for k, v in columns[0] if all(dict(c).get(k) == v for c in columns)}
    shown.update(fixed)
    heads = [", ".join(f"{k}={v}" for k, v in c if k not in fixed) or "value" for c in columns]
    table = [[f"`{f.short}`", f.date_str] + [cells[c]["text"] if c in cells else "—" for c in columns]
             for f, cells in per_file]
    data = [{"commit": f.commit_hash, "date": f.date, "values": {_label(c): x for c, x in cells.items()}}
            for f, cells in per_file]
    return ["Commit", "Date (UTC)"] + heads, table, data


def _scenario_line(f, s: dict) -> list:
    b, rec = s["best"], s["recommended"]
    return [
        f"`{f.short}`", f.date_str, ", ".join(f"{k}={v}" for k, v in s["params"].items()) or "—",
        f"{b['strategy']} × {b['concurrency']}" if b else "n/a",
        f"{b['speedup']:.1f}x" if b and b["speedup"] is not None else "n/a",
        fmt_num(b["throughput"]) if b and b["throughput"] is not None else "n/a",
        s["verdict"] or "n/a",
        str(rec["concurrency"]) if rec else "n/a",
    ]


def scenario_history(files: list, target: str, bench: dict, where: dict) -> tuple:
    """(headers, table, data) of one scenario class: best row, verdict, workers per commit."""
    table, data = [], []
    for f in files:
        rows_cur = current_rows(f, bench)[0]
        rows_cur = {n: r for n, r in rows_cur.items() if scenario_class(split_name(n)[0]) == scenario_class(target)}
        for s in build_scenarios(rows_cur, bench)[0]:
            if any(str(s["params"].get(k)) != w for k, w in where.items()):
                continue
            table.append(_scenario_line(f, s))
            data.append({"commit": f.commit_hash, "date": f.date, "scenario": s})
    if not table:
        raise ReportError(f"no current results for scenario {target!r}")
    return SCENARIO_HEADERS, table, data


def build_history(db: ResultsDB, target: str, machine=None, env=None, branch=None, repo=None,
                  where=None) -> dict:
    machine = db.pick_machine(machine)
    files = history_files(db, machine, env, branch, repo)
    where = where or {}
    bench = db.benchmarks
    known = set(bench) | {n for f in files for n in f.rows}
    shown = dict(where)
    if target in known:
        headers, table, data = benchmark_history(files, target, bench, where, shown)
        kind = "benchmark"
    elif target in {split_name(n)[0] for n in known}:
        headers, table, data = scenario_history(files, target, bench, where)
        kind = "scenario"
    else:
        raise ReportError(f"unknown benchmark or scenario {target!r}")
    md = render_history(target, branch, machine, shown, headers, table)
    unit = default_unit(target, bench) if kind == "benchmark" else None
    return {"target": target, "kind": kind, "machine": machine, "unit": unit, "rows": data, "markdown": md}


def build_step_history(db: ResultsDB, machine=None, env=None, branch=None, repo=None, suite=None,
                       factor: float = 1.1, chart=None) -> dict:
    """``history --steps``: per suite, stac-manager's throughput and its steps beyond the noise floor,
    then the instruction counts' changes of 2 % or more (``count_steps``).

    ``chart(suite data) -> link`` draws a suite's chart (None: no charts)."""
    machine = db.pick_machine(machine)
    files = history_files(db, machine, env, branch, repo)
    suites = build_steps(files, db.benchmarks, factor, repo, suite)
    charts = {s["suite"]: chart(s) for s in suites} if chart else None
    md = render_steps(suites, files, machine, branch, factor, charts)
    counted = {k: v for k, v in count_changes(files, db.benchmarks, repo).items() if suite in (None, k)}
    md += ("\n" + render_count_changes(counted)) if counted else ""
    return {"kind": "steps", "machine": machine, "factor": factor, "suites": suites, "markdown": md,
            "instructions": counted, "largest_instruction_changes": largest(counted)}

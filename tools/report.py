#!/usr/bin/env python
"""PRD-style Markdown reports and a pre-merge regression gate from asv results.

Reads asv 0.6 results (schema v2) and ``benchmarks.json`` directly::

    python tools/report.py [report] [--results DIR | --config asv.conf.json]
                           [--commit C] [--machine M] [--env E]
                           [--output FILE.md] [--json FILE.json]
    python tools/report.py compare BASE HEAD [--factor 1.1] [--only-changed]
    python tools/report.py history BENCH_OR_SCENARIO [--where k=v] [--branch B]

Exit codes: 0 = fine, 1 = the gate found regressions (slower, or failed /
became n/a), 2 = bad input or usage (one-line message on stderr, no traceback).

Results schema v2 (asv/results.py): each ``results[name]`` is a positional row
described by ``result_columns`` and cut after its last non-null column; the
``result`` column is a list in the Cartesian-product order of the ``params``
column (last parameter fastest), ``NaN`` = skipped (n/a), ``null`` = failed, a
whole ``null`` result = every combination failed.  Parameter values are repr
strings.  A row whose ``version`` differs from ``benchmarks.json`` is stale.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import itertools
import json
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field

from tabulate import tabulate

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_ERROR = 2

TABLEFMT = "github"

# Verdict bands on the concurrency gain of a scenario (PRD Phase 1): the best row with
# several workers against the best sequential row, so that a faster implementation
# (say, the harness loop against stac-manager's module) is not mistaken for I/O-bound.
VERDICT_BANDS = [
    (3.0, "I/O-bound"),
    (1.5, "mixed"),
    (1.2, "mildly parallel"),
    (0.0, "CPU-bound"),
]
# Recommended workers: smallest concurrency within this fraction of the best speedup.
DIMINISHING_RETURNS = 0.10
BASELINE_STRATEGIES = ("module", "loop", "sequential")

RULES = {
    "verdict": "concurrency gain (best row with concurrency > 1 / best sequential row) >= 3x: "
    "I/O-bound; 1.5-3x: mixed; 1.2-1.5x: mildly parallel; < 1.2x: CPU-bound",
    "recommended_workers": "smallest concurrency at which some non-ceiling strategy reaches "
    f"at least {100 - DIMINISHING_RETURNS * 100:.0f}% of the best speedup (returns diminish "
    "beyond it)",
    "baseline": "strategy 'module' at concurrency 1, else 'loop', else 'sequential', else the "
    "first concurrency-1 row with a number",
    "pct_of_ceiling": "throughput / best throughput of the scenario's ceiling_* strategies "
    "(time-based if no throughput)",
}


class ReportError(Exception):
    """Bad input: reported as one line on stderr with a non-zero exit."""


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------

def _strip_js_comments(text: str) -> str:
    """Remove // and /* */ comments outside strings (asv.conf.json allows them)."""
    out = []
    i, n = 0, len(text)
    in_str = False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_str = False
            i += 1
        elif c == '"':
            in_str = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            out.append(c)
            i += 1
    # asv's json5 parser also accepts trailing commas
    return re.sub(r",(\s*[}\]])", r"\1", "".join(out))


def load_json_file(path: str, what: str = "JSON file", js_comments: bool = False):
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise ReportError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise ReportError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        return json.loads(_strip_js_comments(text) if js_comments else text)
    except ValueError as exc:
        raise ReportError(f"corrupt {what} {path}: {exc}") from None


@dataclass
class Config:
    results_dir: str
    repo: str | None = None  # local git directory usable for name -> hash resolution
    branches: list = field(default_factory=list)


def load_config(path: str | None, results: str | None, repo: str | None) -> Config:
    conf_path = path
    if conf_path is None and results is None and os.path.isfile("asv.conf.json"):
        conf_path = "asv.conf.json"
    data = {}
    if conf_path is not None:
        data = load_json_file(conf_path, "asv config", js_comments=True)
        if not isinstance(data, dict):
            raise ReportError(f"corrupt asv config {conf_path}: not a JSON object")
    base = os.path.dirname(os.path.abspath(conf_path)) if conf_path else os.getcwd()
    results_dir = results or os.path.join(base, data.get("results_dir", ".asv/results"))
    git_dir = repo
    if git_dir is None and conf_path is not None:
        conf_repo = data.get("repo")
        if isinstance(conf_repo, str) and "://" not in conf_repo and not conf_repo.startswith("git@"):
            git_dir = os.path.join(base, conf_repo)
        elif data.get("project"):
            # asv clones URL repos into <config dir>/<project name>
            git_dir = os.path.join(base, data["project"])
        if git_dir is not None and not os.path.exists(git_dir):
            git_dir = None
    branches = data.get("branches") or []
    return Config(results_dir=results_dir, repo=git_dir, branches=list(branches))


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)


def cell_status(v) -> str:
    """'ok' for a number, 'n/a' for NaN (skipped), 'failed' for null."""
    if v is None:
        return "failed"
    if isinstance(v, float) and math.isnan(v):
        return "n/a"
    if _is_num(v):
        return "ok"
    return "failed"


@dataclass
class Row:
    """One benchmark's results in one result file."""

    name: str
    params: list  # list of lists of repr strings
    values: list  # one entry per combination (float, NaN or None)
    version: str | None

    def combos(self):
        return list(itertools.product(*self.params))


@dataclass
class ResultFile:
    path: str
    machine: str
    env_name: str
    commit_hash: str
    date: int | None
    python: str | None
    rows: dict  # name -> Row

    @property
    def short(self) -> str:
        return self.commit_hash[:8]

    @property
    def date_str(self) -> str:
        if not isinstance(self.date, (int, float)):
            return "?"
        dt = datetime.datetime.fromtimestamp(self.date / 1000, tz=datetime.timezone.utc)
        return dt.strftime("%Y-%m-%d %H:%M")


def parse_result_file(path: str) -> ResultFile:
    d = load_json_file(path, "results file")
    if not isinstance(d, dict):
        raise ReportError(f"corrupt results file {path}: not a JSON object")
    version = d.get("version")
    if version != 2:
        raise ReportError(
            f"unsupported results file {path}: schema version {version!r} (expected 2; "
            "run `asv update`)"
        )
    try:
        columns = d["result_columns"]
        results = d["results"]
        commit_hash = d["commit_hash"]
        env_name = d["env_name"]
        machine = (d.get("params") or {}).get("machine")
    except KeyError as exc:
        raise ReportError(f"corrupt results file {path}: missing key {exc}") from None
    if not isinstance(columns, list) or not isinstance(results, dict) or not isinstance(commit_hash, str):
        raise ReportError(f"corrupt results file {path}: unexpected structure")
    if d.get("date") is not None and not _is_num(d.get("date")):
        raise ReportError(f"corrupt results file {path}: bad date {d.get('date')!r}")
    if "result" not in columns:
        raise ReportError(f"corrupt results file {path}: no 'result' column")
    if machine is None:
        machine = os.path.basename(os.path.dirname(os.path.abspath(path)))
    rows = {}
    for name, raw in results.items():
        if not isinstance(raw, list):
            raise ReportError(f"corrupt results file {path}: row {name!r} is not a list")
        # rows are cut after their last non-null column: pad before zipping
        padded = list(raw) + [None] * (len(columns) - len(raw))
        cols = dict(zip(columns, padded))
        params = cols.get("params") or []
        if not isinstance(params, list) or not all(isinstance(p, list) for p in params):
            raise ReportError(f"corrupt results file {path}: bad params for {name!r}")
        n_comb = 1
        for p in params:
            n_comb *= len(p)
        result = cols.get("result")
        if result is None:
            values = [None] * n_comb  # everything failed (e.g. build failure)
        elif isinstance(result, list) and len(result) == n_comb:
            values = list(result)
        else:
            raise ReportError(
                f"corrupt results file {path}: {name!r} has {len(result) if isinstance(result, list) else 'no'}"
                f" results for {n_comb} parameter combinations"
            )
        if any(v is not None and not isinstance(v, (int, float)) for v in values):
            raise ReportError(f"corrupt results file {path}: non-numeric result for {name!r}")
        rows[name] = Row(name=name, params=params, values=values, version=cols.get("version"))
    return ResultFile(
        path=path,
        machine=machine,
        env_name=str(env_name),
        commit_hash=commit_hash,
        date=d.get("date"),
        python=d.get("python"),
        rows=rows,
    )


def load_benchmarks(results_dir: str, required: bool = True) -> dict | None:
    path = os.path.join(results_dir, "benchmarks.json")
    if not os.path.isfile(path):
        if required:
            raise ReportError(
                f"benchmarks.json missing in {results_dir} (run `asv run` or `asv run --bench just-discover`)"
            )
        return None
    d = load_json_file(path, "benchmarks.json")
    if not isinstance(d, dict):
        raise ReportError(f"corrupt benchmarks.json {path}: not a JSON object")
    return {k: v for k, v in d.items() if k != "version" and isinstance(v, dict)}


class ResultsDB:
    """The results directory: machines, their result files, benchmarks.json."""

    def __init__(self, results_dir: str, need_benchmarks: bool = True):
        self.results_dir = results_dir
        if not os.path.isdir(results_dir):
            raise ReportError(f"no results directory {results_dir} (run `asv run` first, or pass --results/--config)")
        dirs = [e for e in os.listdir(results_dir) if os.path.isdir(os.path.join(results_dir, e))]
        # a machine = a subdirectory with machine.json or result files
        self.machines = sorted(
            e for e in dirs if any(f.endswith(".json") for f in os.listdir(os.path.join(results_dir, e)))
        )
        self.machines_with_results = [
            m for m in self.machines
            if any(f.endswith(".json") and f != "machine.json" for f in os.listdir(os.path.join(results_dir, m)))
        ]
        if not self.machines_with_results:
            raise ReportError(f"no results in {results_dir}")
        self.benchmarks = load_benchmarks(results_dir, required=need_benchmarks)
        self._cache: dict = {}
        self.warnings: list[str] = []

    def pick_machine(self, machine: str | None) -> str:
        if machine is None:
            if len(self.machines_with_results) > 1:
                raise ReportError(
                    f"results for several machines ({', '.join(self.machines_with_results)}): "
                    "pick one with --machine"
                )
            return self.machines_with_results[0]
        if machine not in self.machines:
            raise ReportError(
                f"no results for machine {machine!r} in {self.results_dir} "
                f"(machines: {', '.join(self.machines) or 'none'})"
            )
        return machine

    def files(self, machine: str) -> tuple[list[ResultFile], dict]:
        """All readable result files of a machine, and {hash8: error} for corrupt ones."""
        if machine in self._cache:
            return self._cache[machine]
        mdir = os.path.join(self.results_dir, machine)
        good, bad = [], {}
        for fn in sorted(os.listdir(mdir)):
            if not fn.endswith(".json") or fn in ("machine.json", "benchmarks.json"):
                continue
            try:
                good.append(parse_result_file(os.path.join(mdir, fn)))
            except ReportError as exc:
                bad[fn.split("-")[0]] = str(exc)
        self._cache[machine] = (good, bad)
        return good, bad

    def select(self, machine: str, commit: str | None, env: str | None, repo: str | None) -> ResultFile:
        good, bad = self.files(machine)
        cands = [f for f in good if env is None or f.env_name == env]
        if env is not None and not cands:
            envs = sorted({f.env_name for f in good})
            raise ReportError(
                f"no results for environment {env!r} on machine {machine!r} (environments: {', '.join(envs) or 'none'})"
            )
        if commit is None:
            if not cands:
                if bad:
                    raise ReportError(next(iter(bad.values())))
                raise ReportError(f"no results for machine {machine!r}")
            newest = max(cands, key=lambda f: (f.date or 0))
            cands = [f for f in cands if f.commit_hash == newest.commit_hash]
            for h8, msg in bad.items():
                self.warnings.append(f"skipped {msg}")
        else:
            if not good and not bad:
                raise ReportError(f"no results for machine {machine!r}")
            full = resolve_commit(commit, {f.commit_hash for f in cands}, repo, bad,
                                  where=f" on machine {machine!r}" + (f", environment {env!r}" if env else ""))
            cands = [f for f in cands if f.commit_hash == full]
        if len(cands) > 1:
            raise ReportError(
                f"commit {cands[0].short} has results for several environments "
                f"({', '.join(sorted(f.env_name for f in cands))}): pick one with --env"
            )
        return cands[0]


def git_rev_parse(repo: str, name: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", repo, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"],
            capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def resolve_commit(spec: str, hashes: set, repo: str | None, bad: dict | None = None,
                   where: str = "") -> str:
    """Full hash or unique prefix of a commit with results; else a git name via `repo`."""
    spec_l = spec.lower()
    if re.fullmatch(r"[0-9a-f]{4,40}", spec_l):
        matches = sorted(h for h in hashes if h.lower().startswith(spec_l))
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ReportError(
                f"commit prefix {spec!r} is ambiguous: {', '.join(m[:12] for m in matches)}"
            )
    if repo is not None:
        full = git_rev_parse(repo, spec)
        if full and full in hashes:
            return full
    for h8, msg in (bad or {}).items():
        if h8.startswith(spec_l[:8]) or spec_l.startswith(h8):
            raise ReportError(msg)
    raise ReportError(f"no results for commit {spec!r}{where}")


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------

def param_value(r: str):
    """Parameter values are repr strings: "'threads'" -> 'threads', "10" -> 10."""
    try:
        return ast.literal_eval(r)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return r


def param_display(r: str) -> str:
    v = param_value(r)
    return v if isinstance(v, str) else str(r)


def split_name(name: str) -> tuple[str, str]:
    """'mod.Class.time_x' -> ('mod.Class', 'time_x')."""
    if "." in name:
        prefix, method = name.rsplit(".", 1)
        return prefix, method
    return "", name


def metric_kind(method: str) -> str:
    if method.startswith(("time_", "timeraw_")):
        return "time"
    if method.startswith("track_throughput"):
        return "throughput"
    if method.startswith("track_mem"):
        return "memory"
    if method.startswith("peakmem_"):
        return "peakmem"
    return "extra"


def better_direction(name: str) -> str | None:
    """'lower', 'higher', or None when the gate cannot tell (other track_*)."""
    method = split_name(name)[1]
    if method.startswith(("time_", "timeraw_", "peakmem_", "mem_", "track_mem")):
        return "lower"
    if method.startswith("track_throughput"):
        return "higher"
    return None


def default_unit(name: str, benchmarks: dict | None) -> str:
    meta = (benchmarks or {}).get(name) or {}
    if meta.get("unit"):
        return meta["unit"]
    method = split_name(name)[1]
    if method.startswith(("time_", "timeraw_")):
        return "seconds"
    if method.startswith(("peakmem_", "mem_")):
        return "bytes"
    return "unit"


def fmt_num(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    return f"{v:#.3g}".rstrip(".")


def fmt_value(v, unit: str | None = None) -> str:
    st = cell_status(v)
    if st != "ok":
        return st
    if unit == "seconds":
        for scale, suffix in ((1, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns")):
            if abs(v) >= scale or suffix == "ns":
                return f"{v / scale:#.3g}".rstrip(".") + f" {suffix}"
    if unit == "bytes":
        return f"{fmt_num(v / 1e6)} MB"
    return f"{fmt_num(v)} {unit}" if unit and unit != "unit" else fmt_num(v)


def _json_num(v):
    return v if _is_num(v) and math.isfinite(v) else None


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------

@dataclass
class Cell:
    value: float | None = None
    status: str = "missing"  # ok / n/a / failed / missing
    derived: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self):
        d = {"value": _json_num(self.value) if self.ok else None, "status": self.status}
        if self.derived:
            d["derived"] = True
        return d


def _cell(v) -> Cell:
    st = cell_status(v)
    return Cell(value=float(v) if st == "ok" else None, status=st)


def current_rows(rf: ResultFile, benchmarks: dict) -> tuple[dict, list]:
    """Rows whose version matches benchmarks.json; the rest are stale and ignored."""
    keep, stale = {}, []
    for name, row in rf.rows.items():
        meta = benchmarks.get(name)
        if meta is None or (row.version is not None and row.version != meta.get("version")):
            stale.append(name)
            continue
        keep[name] = row
    return keep, sorted(stale)


def _param_names(row: Row, benchmarks: dict) -> list:
    names = (benchmarks.get(row.name) or {}).get("param_names") or []
    if not isinstance(names, list) or len(names) != len(row.params) or not all(isinstance(n, str) for n in names):
        names = [f"param{i + 1}" for i in range(len(row.params))]
    return names


def build_scenarios(rows: dict, benchmarks: dict) -> tuple[list, list]:
    """Group scenario benchmarks (those with a 'strategy' param) into scenario tables."""
    scen: dict = {}
    others = []
    units = {}
    for name in sorted(rows):
        row = rows[name]
        pnames = _param_names(row, benchmarks)
        prefix, method = split_name(name)
        unit = default_unit(name, benchmarks)
        if "strategy" not in pnames:
            for combo, v in zip(row.combos(), row.values):
                others.append({
                    "benchmark": name,
                    "params": {k: param_display(p) for k, p in zip(pnames, combo)},
                    "value": _json_num(v) if cell_status(v) == "ok" else None,
                    "status": cell_status(v),
                    "unit": unit,
                })
            continue
        kind = metric_kind(method)
        for combo, v in zip(row.combos(), row.values):
            named = dict(zip(pnames, combo))
            strategy = param_display(named.pop("strategy"))
            conc = param_value(named.pop("concurrency")) if "concurrency" in named else 1
            other = tuple((k, param_display(p)) for k, p in named.items())
            s = scen.setdefault((prefix, other), {"metrics": {}, "order": []})
            key = (strategy, conc)
            if key not in s["order"]:
                s["order"].append(key)
            s["metrics"].setdefault((kind, method), {})[key] = _cell(v)
            units[(kind, method)] = unit
    scenarios = [
        _analyse_scenario(prefix, other, s, units) for (prefix, other), s in scen.items()
    ]
    scenarios.sort(key=lambda s: (s["benchmark_class"], s["_sort"]))
    for s in scenarios:
        del s["_sort"]
    return scenarios, others


def _number_or_str(v: str):
    try:
        return float(v)
    except ValueError:
        return v


def _sort_key_value(v):
    return (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v))


def _analyse_scenario(prefix: str, other: tuple, s: dict, units: dict) -> dict:
    metrics = s["metrics"]
    by_kind: dict = {}
    for (kind, method) in sorted(metrics):
        by_kind.setdefault(kind, []).append(method)
    primary = {k: by_kind[k][0] for k in ("time", "throughput", "memory", "peakmem") if k in by_kind}
    if "memory" in primary:
        primary.pop("peakmem", None)  # track_mem wins; peakmem_ is kept as an extra (JSON only)
    extras = [(k, m) for k, ms in by_kind.items() for m in ms if primary.get(k) != m]
    # strategies in params order, concurrency ascending, ceilings last
    strat_order = []
    for st, _ in s["order"]:
        if st not in strat_order:
            strat_order.append(st)
    keys = sorted(
        s["order"],
        key=lambda k: (k[0].startswith("ceiling"), strat_order.index(k[0]), _sort_key_value(k[1])),
    )
    other_d = dict(other)
    n_items = param_value(other_d["n_items"]) if "n_items" in other_d else None

    rows = []
    for key in keys:
        strategy, conc = key
        get = lambda kind: metrics[(kind, primary[kind])].get(key, Cell()) if kind in primary else Cell()
        time_c = get("time")
        tp = get("throughput")
        if "throughput" not in primary and time_c.ok and isinstance(n_items, (int, float)) and time_c.value > 0:
            tp = Cell(value=n_items / time_c.value, status="ok", derived=True)
        elif "throughput" not in primary and time_c.status in ("failed", "n/a"):
            tp = Cell(status=time_c.status)
        if "memory" in primary:
            mem = get("memory")
        elif "peakmem" in primary:
            pm = get("peakmem")
            mem = Cell(value=pm.value / 1e6 if pm.ok else None, status=pm.status)
        else:
            mem = Cell()
        ex = {}
        for kind, m in extras:
            c = metrics[(kind, m)].get(key, Cell())
            ex[m] = {**c.to_json(), "unit": units.get((kind, m))}
        rows.append({
            "strategy": strategy,
            "concurrency": conc,
            "time": time_c,
            "throughput": tp,
            "memory": mem,
            "extras": ex,
            "is_ceiling": strategy.startswith("ceiling"),
        })

    # baseline
    def has_number(r):
        return r["time"].ok or r["throughput"].ok

    conc1 = [r for r in rows if r["concurrency"] == 1 and not r["is_ceiling"]
             and r["time"].status != "failed" and r["throughput"].status != "failed"]
    baseline = None
    for name in BASELINE_STRATEGIES:
        baseline = next((r for r in conc1 if r["strategy"] == name and has_number(r)), None)
        if baseline:
            break
    if baseline is None:
        baseline = next((r for r in conc1 if has_number(r)), None)

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

    # ceiling
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

    # best: never a failed / n/a row, never a ceiling
    cands = [r for r in rows if not r["is_ceiling"] and r["speedup"] is not None]
    best = None
    if cands:
        best = max(cands, key=lambda r: (r["speedup"], -_sort_key_value(r["concurrency"])[1]))
    else:
        tp_c = [r for r in rows if not r["is_ceiling"] and not r["failed"] and r["throughput"].ok]
        if tp_c:
            best = max(tp_c, key=lambda r: r["throughput"].value)
    # the verdict compares the best concurrent row with the best sequential one
    seq = [r for r in cands if _sort_key_value(r["concurrency"]) <= _sort_key_value(1)]
    par = [r for r in cands if r not in seq]
    best_seq = max(seq, key=lambda r: r["speedup"]) if seq else None
    best_par = max(par, key=lambda r: r["speedup"]) if par else None
    gain = best_par["speedup"] / best_seq["speedup"] if best_seq and best_par and best_seq["speedup"] else None
    verdict = next(label for lo, label in VERDICT_BANDS if gain >= lo) if gain is not None else None
    recommended = None
    if best is not None and best["speedup"] is not None and len(cands) >= 2:
        thr = best["speedup"] * (1 - DIMINISHING_RETURNS)
        good = [r for r in cands if r["speedup"] >= thr]
        min_c = min(good, key=lambda r: _sort_key_value(r["concurrency"]))["concurrency"]
        recommended = max((r for r in good if r["concurrency"] == min_c), key=lambda r: r["speedup"])

    title = prefix + (" — " + ", ".join(f"{k}={v}" for k, v in other) if other else "")

    def ref(r):
        if r is None:
            return None
        return {"strategy": r["strategy"], "concurrency": r["concurrency"],
                "speedup": _json_num(r["speedup"]) if r["speedup"] is not None else None,
                "throughput": _json_num(r["throughput"].value) if r["throughput"].ok else None,
                "time": _json_num(r["time"].value) if r["time"].ok else None}

    best_pct = best["pct_of_ceiling"] if best is not None else None
    return {
        "title": title,
        "benchmark_class": prefix,
        "params": dict(other),
        "benchmarks": {k: primary[k] for k in primary},
        "extra_benchmarks": [m for _, m in extras],
        "throughput_derived": "throughput" not in primary and any(r["throughput"].derived for r in rows),
        "rows": [
            {
                "strategy": r["strategy"],
                "concurrency": r["concurrency"],
                "time_s": r["time"].to_json(),
                "throughput_items_s": r["throughput"].to_json(),
                "memory_mb": r["memory"].to_json(),
                "speedup": _json_num(r["speedup"]) if r["speedup"] is not None else None,
                "is_baseline": r["is_baseline"],
                "is_ceiling": r["is_ceiling"],
                "failed": r["failed"],
                "pct_of_ceiling": _json_num(r["pct_of_ceiling"]) if r["pct_of_ceiling"] is not None else None,
                "extras": r["extras"],
            }
            for r in rows
        ],
        "baseline": ref(baseline),
        "best": ref(best),
        "verdict": verdict,
        "concurrency_gain": _json_num(gain) if gain is not None else None,
        "best_sequential": ref(best_seq),
        "best_concurrent": ref(best_par),
        "recommended": ref(recommended),
        "ceiling": ref(ceiling),
        "best_pct_of_ceiling": _json_num(best_pct) if best_pct is not None else None,
        "_sort": tuple(_sort_key_value(_number_or_str(v)) for _, v in other),
    }


def build_report(db: ResultsDB, machine=None, commit=None, env=None, repo=None) -> dict:
    machine = db.pick_machine(machine)
    rf = db.select(machine, commit, env, repo)
    rows, stale = current_rows(rf, db.benchmarks)
    scenarios, others = build_scenarios(rows, db.benchmarks)
    return {
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
    }


def _fmt_cell_json(c: dict, fmt=fmt_num) -> str:
    if c["status"] == "ok":
        return fmt(c["value"])
    return "—" if c["status"] == "missing" else c["status"]


def _row_status(r: dict) -> str:
    st = [r[k]["status"] for k in ("time_s", "throughput_items_s")]
    if "failed" in st:
        return "failed"
    return "n/a" if "n/a" in st else "—"


def _workers(n) -> str:
    return f"{n} worker" if n == 1 else f"{n} workers"


def render_scenario(s: dict, heading: str = "###") -> str:
    has_ceiling = any(r["is_ceiling"] for r in s["rows"])
    extras = [m for m in s["extra_benchmarks"] if not m.startswith("peakmem_")]
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
    table, hidden = [], []
    for r in s["rows"]:
        if _all_na(r):
            hidden.append((r["strategy"], str(r["concurrency"])))
            continue
        if r["is_baseline"]:
            sp = "baseline"
        elif r["speedup"] is not None:
            sp = f"{r['speedup']:.1f}x"
        else:
            sp = _row_status(r)
        line = [
            r["strategy"],
            str(r["concurrency"]),
            _fmt_cell_json(r["time_s"]),
            _fmt_cell_json(r["throughput_items_s"]),
            _fmt_cell_json(r["memory_mb"], lambda v: f"{v:.1f}"),
            sp,
        ]
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
        table.append(line)
    out = [f"{heading} {s['title']}", "",
           tabulate(table, headers=headers, tablefmt=TABLEFMT, disable_numparse=True), ""]
    if hidden:
        groups: dict = {}
        for strategy, conc in hidden:
            groups.setdefault(strategy, []).append(conc)
        listed = "; ".join(f"{st} at {', '.join(cs)}" for st, cs in groups.items())
        out += [f"_n/a (not at this commit, or not meaningful), not shown: {listed}._", ""]
    best = s["best"]
    if best is not None and best["speedup"] is not None:
        out.append(
            f"**Best Performance**: {_workers(best['concurrency'])} with {best['speedup']:.1f}x speedup "
            f"(`{best['strategy']}`)"
        )
    elif best is not None:
        out.append(
            f"**Best Performance**: {_workers(best['concurrency'])} (`{best['strategy']}`); "
            "speedup n/a (no baseline row with a number)"
        )
    else:
        out.append("**Best Performance**: n/a (no row with a number)")
    out.append("")
    if s["verdict"]:
        par, seq = s["best_concurrent"], s["best_sequential"]
        out.append(f"**Verdict**: {s['verdict']} (concurrency gain {s['concurrency_gain']:.1f}x: "
                   f"`{par['strategy']}` at {par['concurrency']} vs `{seq['strategy']}` sequential)")
        out.append("")
    rec = s["recommended"]
    if rec is not None:
        out.append(
            f"**Recommended workers**: {rec['concurrency']} (`{rec['strategy']}`, "
            f"{rec['speedup']:.1f}x; smallest concurrency within "
            f"{DIMINISHING_RETURNS * 100:.0f}% of the best speedup)"
        )
        out.append("")
    ceil = s["ceiling"]
    if ceil is not None:
        what = (f"{fmt_num(ceil['throughput'])} items/s" if ceil["throughput"] is not None
                else f"{fmt_num(ceil['time'])} s")
        line = f"**Ceiling**: `{ceil['strategy']}` at {_workers(ceil['concurrency'])}, {what}"
        if s["best_pct_of_ceiling"] is not None:
            line += f"; the best strategy reaches {s['best_pct_of_ceiling']:.0f}% of it"
        out.append(line)
        out.append("")
    if s["throughput_derived"]:
        out.append("_Throughput derived as n_items / time._")
        out.append("")
    return "\n".join(out)


def _all_na(r: dict) -> bool:
    cells = [r["time_s"], r["throughput_items_s"], r["memory_mb"]]
    return all(c.get("status") == "n/a" for c in cells)


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
    if not rep["scenarios"] and not rep["other_benchmarks"]:
        out.append("_No current results for this commit (all rows stale or none recorded)._")
        out.append("")
    for s in rep["scenarios"]:
        out.append(render_scenario(s))
    if rep["other_benchmarks"]:
        out.append("### Other benchmarks")
        out.append("")
        table = [
            [o["benchmark"], ", ".join(f"{k}={v}" for k, v in o["params"].items()) or "—",
             fmt_value(o["value"], o["unit"]) if o["status"] == "ok" else o["status"]]
            for o in rep["other_benchmarks"]
        ]
        out.append(tabulate(table, headers=["Benchmark", "Parameters", "Value"], tablefmt=TABLEFMT,
                            disable_numparse=True))
        out.append("")
    if rep["stale_ignored"]:
        out.append(
            f"_Ignored {len(rep['stale_ignored'])} stale result(s) whose benchmark version no longer "
            f"matches benchmarks.json: {', '.join(rep['stale_ignored'])}._"
        )
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------------------
# Gate
# --------------------------------------------------------------------------------------

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


def _side(spec: str, db_cache: dict, cfg: Config, machine, env) -> tuple[ResultFile, dict | None]:
    """A result file path, or a commit (hash prefix / git name) in the results dir."""
    if spec.endswith(".json") and os.path.exists(spec):
        rf = parse_result_file(spec)
        bench = load_benchmarks(os.path.dirname(os.path.dirname(os.path.abspath(spec))), required=False)
        return rf, bench
    if "db" not in db_cache:
        db_cache["db"] = ResultsDB(cfg.results_dir, need_benchmarks=False)
    db = db_cache["db"]
    m = db.pick_machine(machine)
    return db.select(m, spec, env, cfg.repo), db.benchmarks


def _unroll(rf: ResultFile, benchmarks: dict | None) -> dict:
    out = {}
    for name, row in rf.rows.items():
        pnames = _param_names(row, benchmarks or {})
        for combo, v in zip(row.combos(), row.values):
            label = ", ".join(f"{k}={param_display(p)}" for k, p in zip(pnames, combo))
            out[(name, combo)] = {"value": v, "version": row.version, "params": label}
    return out


#: Memory changes smaller than this (MB) never count as a regression or an improvement.
MEMORY_FLOOR_MB = 1.0


def _memory_noise(name: str, before: float, after: float) -> bool:
    """A memory result (track_mem in MB, peakmem in bytes) that moved by less than the floor."""
    kind = metric_kind(split_name(name)[1])
    scale = {"memory": 1.0, "peakmem": 1e6}.get(kind)
    return scale is not None and abs(after - before) < MEMORY_FLOOR_MB * scale


def compare_results(base: ResultFile, head: ResultFile, factor: float, benchmarks: dict | None,
                    allow_na: bool = False) -> dict:
    if factor < 1:
        raise ReportError(f"--factor must be >= 1 (got {factor})")
    b, h = _unroll(base, benchmarks), _unroll(head, benchmarks)
    entries = []
    for key in sorted(set(b) | set(h), key=lambda k: (k[0], k[1])):
        name, _ = key
        eb, eh = b.get(key), h.get(key)
        label = (eb or eh)["params"]
        unit = default_unit(name, benchmarks)
        direction = better_direction(name)
        vb = eb["value"] if eb else None
        vh = eh["value"] if eh else None
        sb = cell_status(vb) if eb else "missing"
        sh = cell_status(vh) if eh else "missing"
        ratio = None
        if eb is None:
            cat = "added"
        elif eh is None:
            cat = "removed"
        elif eb["version"] is not None and eh["version"] is not None and eb["version"] != eh["version"]:
            cat = "incomparable"
        elif sb == "ok" and sh != "ok":
            cat = "failed" if (sh == "failed" or not allow_na) else "not_measured"
        elif sb != "ok" and sh == "ok":
            cat = "fixed"
        elif sb != "ok" and sh != "ok":
            cat = "not_measured"
        else:
            ratio = vh / vb if vb != 0 else (1.0 if vh == 0 else math.inf)
            if _memory_noise(name, vb, vh):
                cat = "unchanged"  # a few hundred KB of RSS is noise, whatever the ratio
            elif direction is None:
                cat = "untracked" if (ratio > factor or ratio < 1 / factor) else "unchanged"
            else:
                worse = ratio > factor if direction == "lower" else ratio < 1 / factor
                better = ratio < 1 / factor if direction == "lower" else ratio > factor
                cat = "regressed" if worse else "improved" if better else "unchanged"
        entries.append({
            "benchmark": name, "params": label, "category": cat, "unit": unit,
            "before": _json_num(vb) if sb == "ok" else None, "before_status": sb,
            "after": _json_num(vh) if sh == "ok" else None, "after_status": sh,
            "ratio": _json_num(ratio) if ratio is not None else None,
            "better": direction,
        })
    counts = {c: sum(e["category"] == c for e in entries) for c, _ in CATEGORIES}
    return {
        "base": {"commit": base.commit_hash, "env": base.env_name, "machine": base.machine,
                 "file": base.path},
        "head": {"commit": head.commit_hash, "env": head.env_name, "machine": head.machine,
                 "file": head.path},
        "factor": factor,
        "counts": counts,
        "entries": entries,
        "gate_failed": counts["regressed"] > 0 or counts["failed"] > 0,
    }


def render_compare(cmp: dict, only_changed: bool = False) -> str:
    c = cmp["counts"]
    f = cmp["factor"]
    base, head = cmp["base"], cmp["head"]
    out = [
        f"## Benchmark comparison `{base['commit'][:8]}` → `{head['commit'][:8]}`",
        "",
        f"Machine `{head['machine']}`, environment `{head['env']}`"
        + (f" (base: `{base['env']}`)" if base["env"] != head["env"] else "")
        + f". Factor {f:g}: time / memory rising, or throughput falling, by more than "
        f"{(f - 1) * 100:.0f}% is a regression.",
        "",
    ]
    if cmp["gate_failed"]:
        parts = []
        if c["regressed"]:
            parts.append(f"{c['regressed']} got worse")
        if c["failed"]:
            parts.append(f"{c['failed']} failed / became n/a")
        out.append(f"**Gate: FAILED** — {', '.join(parts)}.")
    else:
        out.append("**Gate: passed** — nothing regressed beyond the factor.")
    out.append("")
    out.append(tabulate([[label, str(c[k])] for k, label in CATEGORIES if c[k] or k in
                         ("regressed", "failed", "improved", "unchanged")],
                        headers=["Outcome", "Count"], tablefmt=TABLEFMT, disable_numparse=True))
    out.append("")

    def table(cat, with_ratio=True):
        rows = []
        for e in cmp["entries"]:
            if e["category"] != cat:
                continue
            before = fmt_value(e["before"], e["unit"]) if e["before_status"] == "ok" else e["before_status"]
            after = fmt_value(e["after"], e["unit"]) if e["after_status"] == "ok" else e["after_status"]
            line = [f"`{e['benchmark']}`", e["params"] or "—", before, after]
            if with_ratio:
                line += [f"{e['ratio']:.2f}" if e["ratio"] is not None else "n/a", e["better"] or "?"]
            rows.append(line)
        headers = ["Benchmark", "Parameters", "Before", "After"]
        if with_ratio:
            headers += ["Ratio", "Better"]
        return tabulate(rows, headers=headers, tablefmt=TABLEFMT, disable_numparse=True)

    sections = [
        ("regressed", "Regressions (got worse)", True),
        ("failed", "Failed / became n/a", False),
        ("improved", "Improvements", True),
        ("fixed", "Now measured", False),
        ("untracked", "Changed, direction unknown", True),
        ("incomparable", "Not comparable (benchmark changed)", False),
    ]
    for cat, title, with_ratio in sections:
        if c[cat]:
            out += [f"### {title}", "", table(cat, with_ratio), ""]
    if not only_changed and c["unchanged"]:
        out += [f"<details><summary>Unchanged ({c['unchanged']})</summary>", "",
                table("unchanged"), "", "</details>", ""]
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------------------

def _parse_where(items) -> dict:
    where = {}
    for it in items or []:
        if "=" not in it:
            raise ReportError(f"--where expects NAME=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        where[k.strip()] = v.strip()
    return where


def branch_commits(repo: str | None, branch: str) -> set:
    if repo is None:
        raise ReportError("--branch needs a git repository: pass --repo or --config with a local repo")
    try:
        out = subprocess.run(["git", "-C", repo, "rev-list", branch, "--"], capture_output=True,
                             text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ReportError(f"cannot run git: {exc}") from None
    if out.returncode != 0:
        raise ReportError(f"unknown branch {branch!r} in {repo}")
    return set(out.stdout.split())


def build_history(db: ResultsDB, target: str, machine=None, env=None, branch=None, repo=None,
                  where=None) -> dict:
    machine = db.pick_machine(machine)
    files, bad = db.files(machine)
    for msg in bad.values():
        db.warnings.append(f"skipped {msg}")
    if env is not None:
        files = [f for f in files if f.env_name == env]
    else:
        envs = sorted({f.env_name for f in files})
        if len(envs) > 1:
            raise ReportError(f"results for several environments ({', '.join(envs)}): pick one with --env")
    if branch is not None:
        on = branch_commits(repo, branch)
        files = [f for f in files if f.commit_hash in on]
    if not files:
        raise ReportError(f"no results for machine {machine!r}" + (f" on branch {branch!r}" if branch else ""))
    files.sort(key=lambda f: (f.date or 0, f.commit_hash))
    where = where or {}
    bench = db.benchmarks
    known = set(bench) | {n for f in files for n in f.rows}
    shown = dict(where)
    if target in known:
        meta = bench.get(target) or {}
        columns, rows = [], []  # columns: tuples of (param name, value)
        for f in files:
            row = f.rows.get(target)
            cells = {}
            if row is not None:
                pnames = _param_names(row, bench)
                stale = row.version is not None and meta and row.version != meta.get("version")
                for combo, v in zip(row.combos(), row.values):
                    named = tuple((k, param_display(p)) for k, p in zip(pnames, combo))
                    if any(str(dict(named).get(k)) != w for k, w in where.items()):
                        continue
                    if named not in columns:
                        columns.append(named)
                    st = "stale" if stale else cell_status(v)
                    cells[named] = {"value": _json_num(v) if st == "ok" else None, "status": st,
                                    "text": fmt_value(v, default_unit(target, bench)) if st == "ok" else st}
            rows.append((f, cells))
        if not columns:
            raise ReportError(f"no results for {target!r} match the --where filter")
        # show in the headers only the parameters that vary between columns
        fixed = {k: v for k, v in columns[0] if all(dict(c).get(k) == v for c in columns)}
        shown.update(fixed)
        heads = [", ".join(f"{k}={v}" for k, v in c if k not in fixed) or "value" for c in columns]
        table = [[f"`{f.short}`", f.date_str] + [cells[c]["text"] if c in cells else "—" for c in columns]
                 for f, cells in rows]
        headers = ["Commit", "Date (UTC)"] + heads
        label = lambda c: ", ".join(f"{k}={v}" for k, v in c) or "value"
        rows = [(f, {label(c): x for c, x in cells.items()}) for f, cells in rows]
        data = [{"commit": f.commit_hash, "date": f.date, "values": cells} for f, cells in rows]
        kind = "benchmark"
    else:
        prefixes = {split_name(n)[0] for n in known}
        if target not in prefixes:
            raise ReportError(f"unknown benchmark or scenario {target!r}")
        table, data = [], []
        headers = ["Commit", "Date (UTC)", "Scenario", "Best", "Speedup", "Throughput (items/s)",
                   "Verdict", "Recommended workers"]
        for f in files:
            rows_cur, _ = current_rows(f, bench)
            rows_cur = {n: r for n, r in rows_cur.items() if split_name(n)[0] == target}
            scenarios, _ = build_scenarios(rows_cur, bench)
            for s in scenarios:
                if any(str(s["params"].get(k)) != w for k, w in where.items()):
                    continue
                b, rec = s["best"], s["recommended"]
                table.append([
                    f"`{f.short}`", f.date_str, ", ".join(f"{k}={v}" for k, v in s["params"].items()) or "—",
                    f"{b['strategy']} × {b['concurrency']}" if b else "n/a",
                    f"{b['speedup']:.1f}x" if b and b["speedup"] is not None else "n/a",
                    fmt_num(b["throughput"]) if b and b["throughput"] is not None else "n/a",
                    s["verdict"] or "n/a",
                    str(rec["concurrency"]) if rec else "n/a",
                ])
                data.append({"commit": f.commit_hash, "date": f.date, "scenario": s})
        if not table:
            raise ReportError(f"no current results for scenario {target!r}")
        kind = "scenario"
    md = "\n".join([
        f"## History of `{target}`" + (f" on `{branch}`" if branch else ""),
        "",
        f"Machine `{machine}`, commits ordered by commit date."
        + (" Parameters: " + ", ".join(f"{k}={v}" for k, v in shown.items()) + "." if shown else ""),
        "",
        tabulate(table, headers=headers, tablefmt=TABLEFMT, disable_numparse=True),
    ]) + "\n"
    return {"target": target, "kind": kind, "machine": machine, "rows": data, "markdown": md}


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------

def _add_common(p: argparse.ArgumentParser):
    g = p.add_mutually_exclusive_group()
    g.add_argument("--results", metavar="DIR", help="asv results directory (default: results_dir "
                   "of ./asv.conf.json, else .asv/results)")
    g.add_argument("--config", metavar="ASV_CONF", help="asv.conf.json to take results_dir from")
    p.add_argument("--machine", "-m", help="machine name (default: the only one)")
    p.add_argument("--env", "-E", help="environment name, e.g. virtualenv-py3.12-numpy1.26.4 "
                   "(default: the only one)")
    p.add_argument("--repo", help="local git repository to resolve branch/tag names")
    p.add_argument("--output", "-o", metavar="FILE.md", help="write Markdown here instead of stdout")
    p.add_argument("--json", metavar="FILE.json", help="also write the data as JSON ('-' = stdout)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="report.py",
        description="PRD-style Markdown reports and a regression gate from asv results.",
        epilog="Exit codes: 0 ok, 1 regression found by compare, 2 bad input.",
    )
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("report", help="one PRD table per scenario for one commit (default)")
    _add_common(p)
    p.add_argument("--commit", "-c", help="full hash, unique prefix or git name (default: newest)")

    p = sub.add_parser("compare", help="gate: compare two commits or result files; exit 1 on regression")
    _add_common(p)
    p.add_argument("base", help="base commit (hash / prefix / git name) or result file")
    p.add_argument("head", help="head commit (hash / prefix / git name) or result file")
    p.add_argument("--factor", "-f", type=float, default=1.1,
                   help="ratio beyond which a change counts (default 1.1)")
    p.add_argument("--only-changed", action="store_true", help="omit the unchanged table")
    p.add_argument("--allow-na", action="store_true",
                   help="do not fail when a result became n/a (skipped); new failures still fail")

    p = sub.add_parser("history", help="one benchmark or scenario over the commits with results")
    _add_common(p)
    p.add_argument("target", help="benchmark (mod.Class.time_x) or scenario (mod.Class)")
    p.add_argument("--branch", "-b", nargs="?", const="", default=None,
                   help="only commits on this branch (needs --repo or a local repo in asv.conf.json; "
                   "without a value: the first branch of asv.conf.json)")
    p.add_argument("--where", "-w", action="append", metavar="PARAM=VALUE",
                   help="keep only these parameter values (repeatable)")
    return parser


def _emit(args, markdown: str, data: dict):
    json_to_stdout = args.json == "-"
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as fh:
                fh.write(markdown)
        except OSError as exc:
            raise ReportError(f"cannot write {args.output}: {exc.strerror}") from None
    elif not json_to_stdout:
        sys.stdout.write(markdown)
    if args.json:
        text = json.dumps(data, indent=2, allow_nan=False, default=str) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            try:
                with open(args.json, "w", encoding="utf-8") as fh:
                    fh.write(text)
            except OSError as exc:
                raise ReportError(f"cannot write {args.json}: {exc.strerror}") from None


def run(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("report", "compare", "history", "-h", "--help"):
        argv = ["report"] + argv
    args = build_parser().parse_args(argv)
    cfg = load_config(args.config, args.results, args.repo)
    warnings = []
    if args.command == "report":
        db = ResultsDB(cfg.results_dir)
        rep = build_report(db, args.machine, args.commit, args.env, cfg.repo)
        warnings = db.warnings
        _emit(args, render_report(rep), rep)
        code = EXIT_OK
    elif args.command == "compare":
        cache: dict = {}
        base, bench_b = _side(args.base, cache, cfg, args.machine, args.env)
        head, bench_h = _side(args.head, cache, cfg, args.machine, args.env)
        cmp = compare_results(base, head, args.factor, bench_h or bench_b, allow_na=args.allow_na)
        _emit(args, render_compare(cmp, args.only_changed), cmp)
        code = EXIT_REGRESSION if cmp["gate_failed"] else EXIT_OK
    else:
        db = ResultsDB(cfg.results_dir)
        branch = args.branch
        if branch == "":
            branch = cfg.branches[0] if cfg.branches else "main"
        hist = build_history(db, args.target, args.machine, args.env, branch, cfg.repo,
                             _parse_where(args.where))
        warnings = db.warnings
        _emit(args, hist["markdown"], hist)
        code = EXIT_OK
    for w in warnings:
        print(f"report.py: warning: {w}", file=sys.stderr)
    return code


def main(argv=None) -> int:
    try:
        return run(argv)
    except ReportError as exc:
        print(f"report.py: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("report.py: interrupted", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # e.g. `report.py | head`: not an error worth a traceback
        sys.stderr.close()
        return EXIT_OK
    except Exception as exc:  # malformed data we did not anticipate: still one line
        if os.environ.get("REPORT_DEBUG"):
            raise
        msg = str(exc).splitlines()[0] if str(exc) else ""
        print(f"report.py: error: unexpected input ({type(exc).__name__}: {msg}); "
              "set REPORT_DEBUG=1 for a traceback", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())

"""What the history says, in words: per suite, stac-manager's throughput across the commits and
the *steps* beyond the noise floor that the suite's ``Control`` rows give.

A suite is a benchmark module (``file_ingest``, ``api_ingest``, ``output``, ``pipeline``).  Its
*series* are the stac-manager (subject-kind) rows of its classes, one per parameter combination,
read off ``n_items / time_run``; its controls are the rows of its
``Control`` class, which never run stac-manager.  Between two consecutive commits with results a
control moves by max(r, 1/r); the suite's noise floor is the 90th percentile (nearest rank) of
those moves, and a series *steps* where it moved between two consecutive measured commits by more
than max(factor, noise floor), and moved that much *net of the controls* too (its ratio divided
by the ratio of the control that moved most between the same two commits): a step that the
controls took as well is the machine, not stac-manager.  Each step names its commit's subject line (``git log -1
--format=%s``) when the repository is at hand.

A pair of single runs cannot tell a lasting change from one disturbed run, so each series is also
fitted with asv's own step detection (``asv.step_detect.detect_steps``, what asv's regressions
page uses: a piecewise-constant fit with a penalty per step): a *level shift* is a boundary between
two fitted levels that moved by more than the factor, and by more than the factor net of the
suite's controls over the same two ranges of commits (median of each range).
"""

from __future__ import annotations

import statistics

from .analyse import current_rows
from .commits import git_subject
from .errors import ReportError
from .gate import DRIFT_PERCENTILE, EPS, percentile
from .metrics import fmt_num, is_num, param_display, param_value, split_name
from .render import md_cell, table
from .results import param_names
from .rules import strategy_kind

STEP_RULE = (
    "a step is a stac-manager throughput (n_items / time_run) that moved between "
    "two consecutive measured commits by more than max(factor, the suite's noise floor); the noise floor "
    f"is the {DRIFT_PERCENTILE * 100:.0f}th percentile (nearest rank) of max(r, 1/r) of the suite's "
    "`Control` throughput between consecutive commits (r = newer / older); and it moved beyond that "
    "threshold net of the controls too (its ratio / the ratio of the suite's `Control` that moved most "
    "between the same two commits), so a move the controls made as well is the machine"
)
SHIFT_RULE = (
    "Level shifts: each series fitted with asv's step detection (`asv.step_detect.detect_steps`, as asv's "
    "regressions page); a boundary between two fitted levels counts when it moved beyond the factor, and "
    "beyond it net of the controls (their median over the same two ranges of commits), which tells a "
    "lasting change from one disturbed run."
)
FIXED = ("n_items", "strategy", "concurrency")


def _label(cls: str, named: dict) -> str:
    """``DirectoryModule (module × 1)``, other parameters but n_items after the workers."""
    parts = [f"{named.get('strategy', '?')} × {named.get('concurrency', 1)}"]
    parts += [f"{k}={v}" for k, v in named.items() if k not in FIXED]
    return f"{cls} ({', '.join(parts)})"


def _role(cls: str, named: dict) -> str | None:
    if cls == "Control":
        return "control"
    return "subject" if strategy_kind(named.get("strategy", "")) == "subject" else None


def commit_values(f, bench: dict) -> dict:
    """{(suite, role, label): items/s} of one results file: n_items / time_run.

    Always derived from ``time_run``, which every profile measures: a history-only commit has
    no ``track_throughput``, and mixing the two across commits would make steps of its own.
    """
    found: dict = {}
    rows = current_rows(f, bench)[0]
    for name, row in rows.items():
        prefix, method = split_name(name)
        suite, _, cls = prefix.rpartition(".")
        if not suite or method != "time_run":
            continue
        pnames = param_names(row, bench)
        for combo, v in zip(row.combos(), row.values, strict=False):
            named = {k: param_display(p) for k, p in zip(pnames, combo, strict=False)}
            role = _role(cls, named)
            if role is None or not is_num(v) or v <= 0:
                continue
            n = param_value(named.get("n_items", "None"))
            if isinstance(n, (int, float)):
                found[(suite, role, _label(cls, named))] = n / v
    return found


def _moved(a: float, b: float) -> float:
    r = b / a
    return max(r, 1 / r)


def _noise_floor(files: list, per_file: list, suite: str, controls: list) -> dict:
    samples = []
    for i in range(1, len(files)):
        for c in controls:
            a, b = per_file[i - 1].get((suite, "control", c)), per_file[i].get((suite, "control", c))
            if a is not None and b is not None:
                samples.append(_moved(a, b))
    floor = percentile(samples, DRIFT_PERCENTILE) if samples else None
    return {"noise_floor": floor, "pairs": len(samples)}


def _control_ratio(pf_a: dict, pf_b: dict, suite: str, controls: list):
    """How the suite's controls moved between two commits: the ratio of the one that moved most."""
    return _most_moved([pf_b[(suite, "control", c)] / pf_a[(suite, "control", c)] for c in controls
                        if (suite, "control", c) in pf_a and (suite, "control", c) in pf_b])


def _most_moved(ratios: list):
    """The ratio that moved most either way, or None."""
    return max(ratios, key=lambda r: max(r, 1 / r)) if ratios else None


def _series_steps(files, per_file, suite, label, controls, threshold, repo) -> list:
    steps, prev = [], None
    for i, f in enumerate(files):
        v = per_file[i].get((suite, "subject", label))
        if v is None:
            continue
        if prev is not None and _moved(prev[1], v) > threshold * (1 + EPS):
            j, ratio = prev[0], v / prev[1]
            control = _control_ratio(per_file[j], per_file[i], suite, controls)
            net = ratio / control if control else None
            if net is None or _moved(1.0, net) > threshold * (1 + EPS):
                steps.append({"commit": f.commit_hash, "date": f.date, "date_utc": f.date_str,
                              "previous": files[j].commit_hash, "series": label, "ratio": ratio,
                              "before": prev[1], "after": v, "control_ratio": control, "net_ratio": net,
                              "subject": git_subject(repo, f.commit_hash)})
        prev = (i, v)
    return steps


def _levels(per_file: list, key: tuple) -> list:
    """asv's piecewise-constant fit of one series: [(first index, last index, items/s)], levels of
    two commits or more."""
    from asv.step_detect import detect_steps

    idx = [i for i, pf in enumerate(per_file) if key in pf]
    if len(idx) < 2:
        return []
    fitted = detect_steps([1.0 / per_file[i][key] for i in idx])  # seconds per item: lower is better
    # a level of one commit is one disturbed run, not a change (asv's detect_regressions: min_size=2)
    return [(idx[left], idx[right - 1], 1.0 / mu) for left, right, mu, _, _ in fitted if right - left >= 2]


def _range_ratio(per_file: list, key: tuple, before: tuple, after: tuple):
    """Median of ``key`` over the ``after`` range of commits / its median over ``before``."""
    def median(lo, hi):
        vals = [pf[key] for pf in per_file[lo:hi + 1] if key in pf]
        return statistics.median(vals) if vals else None

    a, b = median(*before), median(*after)
    return b / a if a and b else None


def _series_shifts(files, per_file, suite, label, controls, factor, repo) -> list:
    levels, shifts = _levels(per_file, (suite, "subject", label)), []
    for (lo_a, hi_a, level_a), (lo_b, hi_b, level_b) in zip(levels, levels[1:], strict=False):
        ratio = level_b / level_a
        control = _most_moved([r for c in controls
                               if (r := _range_ratio(per_file, (suite, "control", c), (lo_a, hi_a), (lo_b, hi_b)))])
        net = ratio / control if control else None
        if _moved(1.0, ratio) > factor * (1 + EPS) and (net is None or _moved(1.0, net) > factor * (1 + EPS)):
            f = files[lo_b]
            shifts.append({"commit": f.commit_hash, "date": f.date, "date_utc": f.date_str, "series": label,
                           "before": level_a, "after": level_b, "ratio": ratio, "commits_before": hi_a - lo_a + 1,
                           "commits_after": hi_b - lo_b + 1, "control_ratio": control, "net_ratio": net,
                           "subject": git_subject(repo, f.commit_hash)})
    return shifts


def suite_steps(files: list, per_file: list, suite: str, factor: float, repo) -> dict:
    def labels(role):
        counts: dict = {}
        for pf in per_file:
            for s, r, label in pf:
                if s == suite and r == role:
                    counts[label] = counts.get(label, 0) + 1
        return sorted(counts, key=str), [k for k, n in counts.items() if n >= 2]

    all_series, series = labels("subject")
    controls = labels("control")[0]
    floor = _noise_floor(files, per_file, suite, controls)
    threshold = max(factor, floor["noise_floor"] or 1.0)
    series = [s for s in all_series if s in series]
    steps = [st for label in series for st in _series_steps(files, per_file, suite, label, controls,
                                                             threshold, repo)]
    steps.sort(key=lambda st: (st["date"] or 0, st["series"]))
    shifts = [sh for label in series for sh in _series_shifts(files, per_file, suite, label, controls, factor, repo)]
    shifts.sort(key=lambda sh: (sh["date"] or 0, sh["series"]))
    values = [{"commit": f.commit_hash, "date": f.date,
               "values": {lb: per_file[i].get((suite, role, lb)) for role, lbs in
                          (("subject", series), ("control", controls)) for lb in lbs}}
              for i, f in enumerate(files)]
    return {"suite": suite, **floor, "threshold": threshold, "series": series, "controls": controls,
            "single_commit_series": [s for s in all_series if s not in series], "steps": steps, "shifts": shifts,
            "history": values}


def build_steps(files: list, bench: dict, factor: float, repo=None, suite=None) -> list:
    per_file = [commit_values(f, bench) for f in files]
    suites = sorted({s for pf in per_file for s, role, _ in pf if role == "subject"})
    if suite is not None:
        if suite not in suites:
            raise ReportError(f"no stac-manager throughput for suite {suite!r} "
                              f"(suites with one: {', '.join(suites) or 'none'})")
        suites = [suite]
    if not suites:
        raise ReportError("no stac-manager throughput in these results (no subject-kind rows)")
    return [suite_steps(files, per_file, s, factor, repo) for s in suites]


# --------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------

def _ratio(r) -> str:
    return f"{r:.2f}x ({r:.2f}x faster)" if r >= 1 else f"{r:.2f}x ({1 / r:.2f}x slower)"


def _times(r) -> str:
    return f"{r:.2f}x" if r is not None else "n/a"


def _floor_line(s: dict, factor: float) -> str:
    if s["noise_floor"] is None:
        return (f"No `Control` row measured on two consecutive commits: no noise floor, the factor "
                f"({factor:g}) alone decides.")
    return (f"Noise floor {s['noise_floor']:.2f}x over {s['pairs']} consecutive pair(s) of "
            f"`{s['suite']}.Control` rows; threshold max(factor {factor:g}, noise floor) = {s['threshold']:.2f}x.")


def render_suite(s: dict, files: list, factor: float, chart: str | None = None) -> list:
    cols = s["series"] + s["controls"]
    rows = [[f"`{f.short}`", f.date_str, *[fmt_num(h["values"][c]) if h["values"].get(c) is not None else "—"
                                           for c in cols]]
            for f, h in zip(files, s["history"], strict=False)]
    out = [f"### {s['suite']}", "", _floor_line(s, factor), "",
           table(rows, ["Commit", "Date (UTC)", *[f"{c} items/s" for c in cols]]), ""]
    if chart:
        out += [f"![{s['suite']}: stac-manager throughput over the commits]({chart})", ""]
    if s["single_commit_series"]:
        out += [f"_{len(s['single_commit_series'])} series measured at one commit only (no step possible) "
                "are left out._", ""]
    out += _render_shifts(s["shifts"], factor)
    if not s["steps"]:
        return out + ["_No step beyond the noise floor._", ""]
    steps = [[st["date_utc"], f"`{st['commit'][:8]}`", st["series"], _ratio(st["ratio"]),
              _times(st["control_ratio"]), _times(st["net_ratio"]),
              md_cell(st["subject"] or "—")] for st in s["steps"]]
    return out + ["**Steps beyond the noise floor:**", "",
                  table(steps, ["Date (UTC)", "Commit", "Series", "Ratio", "Control moved", "Net of control",
                                         "What changed"]), ""]


def _render_shifts(shifts: list, factor: float) -> list:
    if not shifts:
        return [f"_No level shift beyond {factor:g}x (asv's step detection)._", ""]
    rows = [[sh["date_utc"], f"`{sh['commit'][:8]}`", sh["series"],
             f"{fmt_num(sh['before'])} → {fmt_num(sh['after'])} ({sh['commits_before']} → {sh['commits_after']} commits)",
             _ratio(sh["ratio"]), _times(sh["control_ratio"]), _times(sh["net_ratio"]), md_cell(sh["subject"] or "—")]
            for sh in shifts]
    return ["**Level shifts (asv's step detection, net of the controls):**", "",
            table(rows, ["From (UTC)", "Commit", "Series", "Level items/s", "Ratio", "Control moved",
                         "Net of control", "What changed"]), ""]


def render_steps(suites: list, files: list, machine: str, branch, factor: float, charts=None) -> str:
    out = ["## Steps beyond the noise floor" + (f" on `{branch}`" if branch else ""), "",
           f"Machine `{machine}`, {len(files)} commits ordered by commit date. Rule: {STEP_RULE}. {SHIFT_RULE}", ""]
    for s in suites:
        out += render_suite(s, files, factor, (charts or {}).get(s["suite"]))
    return "\n".join(out).rstrip() + "\n"

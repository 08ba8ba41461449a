"""What the instruction counts say over the commits: every change of 2 % or more, per suite.

``track_instructions`` (callgrind's instructions per item, ``benchmarks/lib/counts.py``) repeats
within 0.5 % on the same code, whatever the machine did, so no noise floor is needed: a series
*changes* where its count moved by more than the threshold (default 1.02) between two
consecutive commits that have a count, and every such change is listed with its commit, date and
subject line.  Controls are listed too: a count of theirs that moved is the suite's own code (or
the Python stack), never the machine.  ``largest`` ranks the changes of all suites.
"""

from __future__ import annotations

import math

from .analyse import current_rows
from .commits import git_subject
from .level_shifts import _label, _role
from .metrics import fmt_num, is_num, param_display, split_name
from .render import md_cell, table
from .results import param_names

#: A change of the count between two consecutive commits that is listed (2 %).
COUNT_THRESHOLD = 1.02
METHOD = "track_instructions"


def count_values(f, bench: dict) -> dict:
    """{(suite, role, label): instructions per item} of one results file."""
    found: dict = {}
    rows = current_rows(f, bench)[0]
    for name, row in rows.items():
        prefix, method = split_name(name)
        suite, _, cls = prefix.rpartition(".")
        if not suite or method != METHOD:
            continue
        pnames = param_names(row, bench)
        for combo, v in zip(row.combos(), row.values, strict=False):
            named = {k: param_display(p) for k, p in zip(pnames, combo, strict=False)}
            role = _role(cls, named)
            if role is not None and is_num(v) and v > 0:
                found[(suite, role, _label(cls, named))] = v
    return found


def count_changes(files: list, bench: dict, repo=None, threshold: float = COUNT_THRESHOLD) -> dict:
    """{suite: {"series": [...], "changes": [...], "commits": n}}: each series' changes beyond
    ``threshold`` between consecutive commits with a count, oldest first."""
    per_file = [count_values(f, bench) for f in files]
    keys = sorted({k for pf in per_file for k in pf}, key=str)
    suites: dict = {}
    for suite, role, label in keys:
        entry = suites.setdefault(suite, {"series": [], "changes": [], "commits": 0})
        entry["series"].append({"label": label, "role": role})
        prev = None
        for f, pf in zip(files, per_file, strict=True):
            v = pf.get((suite, role, label))
            if v is None:
                continue
            entry["commits"] = max(entry["commits"], sum(1 for p in per_file if (suite, role, label) in p))
            if prev is not None and max(v / prev[1], prev[1] / v) > threshold:
                entry["changes"].append({"commit": f.commit_hash, "date": f.date, "date_utc": f.date_str,
                                         "previous": prev[0].commit_hash, "series": label, "role": role,
                                         "before": prev[1], "after": v, "ratio": v / prev[1],
                                         "subject": git_subject(repo, f.commit_hash)})
            prev = (f, v)
    for entry in suites.values():
        entry["changes"].sort(key=lambda c: (c["date"] or 0, c["series"]))
    return suites


def largest(suites: dict, k: int = 5) -> list:
    """The ``k`` largest changes of stac-manager's rows (by |log ratio|), largest first."""
    changes = [c for s in suites.values() for c in s["changes"] if c["role"] == "subject"]
    return sorted(changes, key=lambda c: -abs(math.log(c["ratio"])))[:k]


def _change(c: dict) -> list:
    word = "more" if c["ratio"] > 1 else "fewer"
    return [c["date_utc"], f"`{c['commit'][:8]}`", c["series"] + (" (control)" if c["role"] == "control" else ""),
            f"{fmt_num(c['before'])} → {fmt_num(c['after'])}",
            f"{c['ratio']:.3f}x ({abs(c['ratio'] - 1) * 100:.1f} % {word})", md_cell(c["subject"] or "—")]


HEADERS = ["Date (UTC)", "Commit", "Series", "Instructions / item", "Change", "What changed"]


def render_count_changes(suites: dict, threshold: float = COUNT_THRESHOLD) -> str:
    if not suites:
        return ""
    out = [f"## Instruction counts: every change of {(threshold - 1) * 100:.0f} % or more", "",
           "`track_instructions` repeats within 0.5 % on the same code whatever the machine does, so each "
           "change below is a change of the code (stac-manager's, or the suite's for a control).", ""]
    top = largest(suites)
    out += (["**The largest changes of stac-manager's rows:**", "", table([_change(c) for c in top], HEADERS), ""]
            if top else [f"**The largest changes of stac-manager's rows:** none of {(threshold - 1) * 100:.0f} % or more.",
                         ""])
    for name, s in sorted(suites.items()):
        out += [f"### {name}: instructions per item", "",
                f"{len(s['series'])} series ({sum(x['role'] == 'control' for x in s['series'])} control), "
                f"up to {s['commits']} commits with a count.", ""]
        out += ([table([_change(c) for c in s["changes"]], HEADERS), ""] if s["changes"]
                else [f"_No change of {(threshold - 1) * 100:.0f} % or more: the counts are flat._", ""])
    return "\n".join(out).rstrip() + "\n"

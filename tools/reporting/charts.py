"""PNG charts written beside the Markdown and linked from it with relative paths.

``report``: one speedup-versus-concurrency chart per scenario with at least two concurrency
levels (a line per strategy, ceilings drawn as dashed horizontal limits).  ``history``: the
benchmark's values, or each scenario's best throughput, over the commits; ``history --steps``:
a suite's stac-manager throughput over the commits (controls dashed, steps marked).

matplotlib is imported only when a chart is drawn (Agg backend: no display needed).  Figures
are built by ``*_figure`` functions (tests inspect them) and written by ``save``.
"""

from __future__ import annotations

import math
import os
import re

from .errors import ReportError

#: Line styles of the ceilings' horizontal limits, in turn.
LIMIT_STYLES = ("--", ":", "-.")
LIMIT_SUFFIX = " (limit)"


def pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ReportError("charts need matplotlib (pip install matplotlib), or pass --no-charts") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def slug(text: str) -> str:
    """A file name from a title: letters, digits, '.', '-' and '_' only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text.replace("=", "-")).strip("_") or "chart"


def link(path: str, link_from: str) -> str:
    """``path`` relative to the directory of the Markdown, with forward slashes."""
    return os.path.relpath(path, link_from).replace(os.sep, "/")


def save(fig, path: str) -> str:
    plt = pyplot()
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, format="png")
    except OSError as exc:
        raise ReportError(f"cannot write chart {path}: {exc.strerror}") from None
    finally:
        plt.close(fig)
    return path


# --------------------------------------------------------------------------------------
# Speedup versus concurrency (report)
# --------------------------------------------------------------------------------------

def speedup_lines(s: dict) -> tuple[dict, dict]:
    """({strategy: [(concurrency, speedup)]}, {ceiling strategy: its best speedup})."""
    lines, limits = {}, {}
    for r in s["rows"]:
        c = r["concurrency"]
        if r["speedup"] is None or isinstance(c, bool) or not isinstance(c, (int, float)):
            continue
        if r["is_ceiling"]:
            limits[r["strategy"]] = max(limits.get(r["strategy"], 0.0), r["speedup"])
        else:
            lines.setdefault(r["strategy"], []).append((c, r["speedup"]))
    return {k: sorted(v) for k, v in lines.items()}, limits


def chartable(s: dict) -> bool:
    lines, _ = speedup_lines(s)
    return len({c for pts in lines.values() for c, _ in pts}) >= 2


def speedup_figure(s: dict):
    plt = pyplot()
    lines, limits = speedup_lines(s)
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=100)
    for strategy, pts in lines.items():
        ax.plot([c for c, _ in pts], [v for _, v in pts], marker="o", label=strategy)
    for i, (strategy, v) in enumerate(sorted(limits.items(), key=lambda kv: -kv[1])):
        ax.axhline(v, color="0.35", linewidth=1.2, linestyle=LIMIT_STYLES[i % len(LIMIT_STYLES)],
                   label=strategy + LIMIT_SUFFIX)
    levels = sorted({c for pts in lines.values() for c, _ in pts})
    ax.set_xscale("log")
    ax.set_xticks(levels, [str(c) for c in levels])
    ax.minorticks_off()
    base = s.get("baseline") or {}
    ax.set_xlabel("concurrency (workers)")
    ax.set_ylabel(f"speedup vs {base.get('strategy', 'baseline')} × {base.get('concurrency', 1)}")
    ax.set_title(s["title"], fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def write_report_charts(rep: dict, chart_dir: str, link_from: str) -> dict:
    """Write a speedup chart per chartable scenario: {scenario title: relative link}."""
    out = {}
    for s in rep["scenarios"]:
        if chartable(s):
            path = save(speedup_figure(s), os.path.join(chart_dir, f"speedup-{slug(s['title'])}.png"))
            out[s["title"]] = link(path, link_from)
    return out


# --------------------------------------------------------------------------------------
# Over the commits (history)
# --------------------------------------------------------------------------------------

def history_figure(title: str, commits: list, series: dict, ylabel: str, dashed=(), marks=()):
    """A line per series over ``commits`` (short hashes); None is a gap; ``marks``: commit indexes."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(7.5, 0.5 * len(commits)), 4.5), dpi=100)
    x = list(range(len(commits)))
    for label, values in series.items():
        ys = [math.nan if v is None else v for v in values]
        ax.plot(x, ys, marker="o", label=label, linestyle="--" if label in dashed else "-")
    for i in marks:
        ax.axvline(i, color="tab:red", alpha=0.35, linewidth=6)
    ax.set_xticks(x, commits, rotation=45, ha="right", fontsize=8)
    ax.set_xlabel("commit (oldest first)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def history_series(hist: dict) -> tuple[list, dict, str]:
    """(commits, {label: values}, y label) of a benchmark or scenario history."""
    commits = list(dict.fromkeys(r["commit"] for r in hist["rows"]))
    series: dict = {}
    for r in hist["rows"]:
        if hist["kind"] == "benchmark":
            points = {label: c["value"] for label, c in r["values"].items()}
        else:
            best = r["scenario"]["best"] or {}
            params = ", ".join(f"{k}={v}" for k, v in r["scenario"]["params"].items()) or "best"
            points = {params: best.get("throughput")}
        for label, v in points.items():
            series.setdefault(label, [None] * len(commits))[commits.index(r["commit"])] = v
    ylabel = hist.get("unit") or ("best throughput (items/s)" if hist["kind"] == "scenario" else "value")
    return [c[:8] for c in commits], series, ylabel


def write_history_chart(hist: dict, chart_dir: str, link_from: str) -> str:
    commits, series, ylabel = history_series(hist)
    title = hist["target"] + (" (best row per commit)" if hist["kind"] == "scenario" else "")
    fig = history_figure(title, commits, series, ylabel)
    return link(save(fig, os.path.join(chart_dir, f"history-{slug(hist['target'])}.png")), link_from)


def write_steps_chart(suite: dict, chart_dir: str, link_from: str) -> str:
    commits = [h["commit"][:8] for h in suite["history"]]
    labels = suite["series"] + suite["controls"]
    series = {lb: [h["values"].get(lb) for h in suite["history"]] for lb in labels}
    step_commits = {st["commit"] for st in suite["steps"]}
    marks = [i for i, h in enumerate(suite["history"]) if h["commit"] in step_commits]
    fig = history_figure(f"{suite['suite']}: stac-manager throughput (controls dashed, steps shaded)",
                         commits, series, "items/s", dashed=set(suite["controls"]), marks=marks)
    return link(save(fig, os.path.join(chart_dir, f"steps-{slug(suite['suite'])}.png")), link_from)


# --------------------------------------------------------------------------------------
# Per item against the collection's size (report, scale selection)
# --------------------------------------------------------------------------------------

def scaling_series(suite: dict, key: str) -> dict:
    """{row: [(n, value)]} of one suite's scaling table (``us_per_item`` or ``mb_per_1k``)."""
    out = {}
    for r in suite["rows"]:
        label = r["row"] + "".join(f" {k}={v}" for k, v in r["params"].items() if k not in ("strategy", "concurrency"))
        pts = [(n, c[key]) for n, c in sorted(r["cells"].items()) if c[key] is not None]
        if pts:
            out[label] = pts
    return out


def scaling_figure(suite: dict):
    """Two panels against n (log): µs per item, MB of peak memory per 1,000 items; a line per row."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), dpi=100)
    for ax, key, ylabel in ((axes[0], "us_per_item", "µs per item (time_run / n)"),
                            (axes[1], "mb_per_1k", "MB of peak memory per 1,000 items")):
        for label, pts in scaling_series(suite, key).items():
            ax.plot([n for n, _ in pts], [v for _, v in pts], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_xticks(suite["sizes"], [f"{n:,}" for n in suite["sizes"]])
        ax.minorticks_off()
        ax.set_xlabel("n_items")
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(f"{suite['suite']}: per item against the collection's size (flat = linear)", fontsize=10)
    fig.tight_layout()
    return fig


def write_scaling_charts(suites: list, chart_dir: str, link_from: str) -> dict:
    """A chart per suite of the scaling tables with two or more sizes: {suite: relative link}."""
    out = {}
    for s in suites:
        if len(s["sizes"]) >= 2:
            path = save(scaling_figure(s), os.path.join(chart_dir, f"scaling-{slug(s['suite'])}.png"))
            out[s["suite"]] = link(path, link_from)
    return out

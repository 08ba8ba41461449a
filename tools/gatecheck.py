"""Measure the pre-merge gate itself: its false alarms and its catch rate (a script, not a test).

    python -m tools.gatecheck --repo PATH COMMIT [SLOW_COMMIT] [--runs 5] [--factor 1.5]
                              [--quick | --rounds N] [--hog N] [--workdir DIR] [--output FILE.md]
                              [-- ASV RUN ARGS]

Runs ``tools.premerge --repo PATH COMMIT COMMIT`` N times: COMMIT against itself (premerge
re-measures it as a twin commit, so each run is two interleaved builds of one tree), where
every regression is a false alarm; and, with SLOW_COMMIT, ``COMMIT SLOW_COMMIT`` N times, where
the gate must fail every time; each run has a data cache of its own (its instruction counts are
counted, not read from the previous run's).  The two pairs alternate run by run, so a change in the
machine's load hits both.  ``--hog N`` keeps N busy processes running beside every run (a
loaded machine: instruction counts must not care).  Prints a Markdown table: per run the exit
code, the regressed (and failed) rows, the rows that repeat (instruction counts and allocation
peaks) that regressed and the worst of them, and the control drift per kind that run measured
(``compare``'s JSON ``drift``), then two tallies: the gate's, and the repeating rows' alone.
Each run's comment and JSON stay in ``<workdir>/runs/``; premerge works in ``<workdir>/premerge``
(a folder of its own: it refuses one that holds files it did not create).

Exit code: 0 when there was no false alarm and every slowdown was caught, 1 otherwise, 2 when a
premerge run failed with bad input (its one line is repeated).
"""

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tools import premerge
from tools.reporting.gate import DETERMINISTIC
from tools.reporting.metrics import metric_kind

KINDS = ("time", "throughput", "memory")
#: One busy process of ``--hog``: a core at 100 % until it is killed.
HOG = "while True: pass"


def parse_args(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    p = argparse.ArgumentParser(prog="python -m tools.gatecheck", description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", required=True, help="a git checkout of stac-manager")
    p.add_argument("commit", help="the commit compared with itself")
    p.add_argument("slow_commit", nargs="?", help="a commit the gate must flag against COMMIT")
    p.add_argument("--runs", type=int, default=5, help="runs per pair (default 5)")
    p.add_argument("--factor", type=float, default=1.5, help="gate factor (default 1.5)")
    p.add_argument("--quick", action="store_true", help="premerge --quick")
    p.add_argument("--rounds", type=int, help="premerge --rounds (default: premerge's)")
    p.add_argument("--hog", type=int, default=0, metavar="N", help="N busy processes beside every run (default 0)")
    p.add_argument("--workdir", default=str(premerge.DEFAULT_WORKDIR.with_name("gatecheck")),
                   help="premerge runs in DIR/premerge, each run's comment goes to DIR/runs")
    p.add_argument("--output", "-o", metavar="FILE.md", help="also write the table here")
    args = p.parse_args(argv[:cut])
    args.asv_args = argv[cut + 1:]
    if args.runs < 1:
        p.error("--runs must be >= 1")
    if args.hog < 0:
        p.error("--hog must be >= 0")
    return args


@contextlib.contextmanager
def hogs(n):
    """``n`` busy processes for the duration of the block."""
    procs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(n)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def load_average():
    """The machine's 15-minute load average at the end of a run (None where /proc has none)."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[2])
    except (OSError, IndexError, ValueError):
        return None


def repeating(entry):
    """An instruction count or an allocation peak of stac-manager (not a Control's)."""
    return metric_kind(entry["benchmark"].rsplit(".", 1)[-1]) in DETERMINISTIC and entry.get("role") != "control"


def premerge_cmd(args, base, head, out):
    cmd = [sys.executable, "-m", "tools.premerge", "--repo", args.repo, base, head,
           "--factor", str(args.factor), "--workdir", str(Path(args.workdir).expanduser().resolve() / "premerge"),
           "--output", str(out.with_suffix(".md")), "--json", str(out.with_suffix(".json"))]
    cmd += ["--quick"] if args.quick else (["--rounds", str(args.rounds)] if args.rounds else [])
    return cmd + (["--", *args.asv_args] if args.asv_args else [])


def one_run(args, pair, index, base, head, outdir):
    """One premerge run: a row of the table (dict)."""
    out = outdir / f"{pair}-{index}"
    started = time.monotonic()
    # a data cache of the run's own: the counts of a commit are kept per commit, and a run that read the
    # previous run's would measure nothing (the premerge twin of a commit has the same hash every run)
    data = outdir / f"{pair}-{index}-data"
    env = dict(os.environ, STAC_BENCH_DATA_DIR=str(data))
    try:
        proc = subprocess.run(premerge_cmd(args, base, head, out), capture_output=True, text=True, env=env)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    if proc.returncode not in (0, 1):
        lines = [x for x in proc.stderr.splitlines() if x.startswith("premerge.py: error")]
        raise premerge.PremergeError((lines or proc.stderr.strip().splitlines() or ["failed"])[-1])
    data = json.loads(out.with_suffix(".json").read_text())
    entries = data["entries"]
    return {
        "pair": pair, "run": index, "exit": proc.returncode,
        "minutes": (time.monotonic() - started) / 60,
        "load": load_average(),
        "regressed": [e for e in entries if e["category"] == "regressed"],
        "failed": [e for e in entries if e["category"] == "failed"],
        "counted": [e for e in entries if e["category"] == "regressed" and repeating(e)],
        "worst_counted": max((e["ratio"] for e in entries if repeating(e) and e.get("ratio")), default=None),
        "drift": {k: (data.get("drift") or {}).get(k) for k in KINDS},
        "worst": {k: worst_subject(entries, k) for k in ("time", "throughput")},
    }


def worst_subject(entries, kind):
    """The largest move for the worse (max(r, 1/r) oriented, > 1 = worse) of a stac-manager row."""
    moves = []
    for e in entries:
        name = e["benchmark"].rsplit(".", 1)[-1]
        if e.get("role") == "control" or not e.get("ratio") or e.get("better") not in ("lower", "higher"):
            continue
        if (kind == "time" and name.startswith("time_")) or (kind == "throughput" and "throughput" in name):
            moves.append(e["ratio"] if e["better"] == "lower" else 1 / e["ratio"])
    return max(moves, default=None)


def drift_cell(d):
    if not d:
        return "—"
    return f"{d['drift']:.2f}x ({d['rows']})"


def row_name(entry):
    return f"`{entry['benchmark']}` ({entry['params']}) {entry['ratio']:.2f}" if entry.get("ratio") \
        else f"`{entry['benchmark']}` ({entry['params']})"


def render(args, rows, labels):
    lines = [f"## Gate check: `{labels['same']}` vs itself"
             + (f", and vs `{labels['slow']}`" if "slow" in labels else ""),
             "", f"Factor {args.factor:g}, {'quick' if args.quick else 'non-quick'}"
             + (f", asv args `{' '.join(args.asv_args)}`" if args.asv_args else "") + "."
             + (f" {args.hog} busy processes beside every run." if args.hog else ""), "",
             "| pair | run | exit | regressed rows | failed rows | counted rows regressed | worst counted row "
             "| drift time | drift throughput | drift memory | worst subject time | worst subject throughput | minutes "
             "| load (15 min) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        worst = "—" if r["worst_counted"] is None else f"{r['worst_counted']:.4f}"
        lines.append(f"| {r['pair']} | {r['run']} | {r['exit']} | {len(r['regressed'])} | {len(r['failed'])} | "
                     f"{len(r['counted'])} | {worst} | "
                     + " | ".join(drift_cell(r["drift"][k]) for k in KINDS) + " | "
                     + " | ".join("—" if r["worst"][k] is None else f"{r['worst'][k]:.2f}x" for k in ("time", "throughput"))
                     + f" | {r['minutes']:.1f} | " + ("—" if r.get("load") is None else f"{r['load']:.1f}") + " |")
    same = [r for r in rows if r["pair"] == "same"]
    slow = [r for r in rows if r["pair"] == "slow"]
    alarms = sum(r["exit"] != 0 for r in same)
    lines += ["", f"- **false alarms** (same commit, gate failed): {alarms}/{len(same)} (must be 0)"]
    if slow:
        caught = sum(r["exit"] == 1 and bool(r["regressed"]) for r in slow)
        lines.append(f"- **caught** (slow commit, gate failed on a regressed row): {caught}/{len(slow)} "
                     f"(must be {len(slow)})")
    counted_alarms = sum(bool(r["counted"]) for r in same)
    lines.append(f"- **on instruction counts and allocation peaks alone**: false alarms {counted_alarms}/{len(same)}"
                 + (f", caught {sum(bool(r['counted']) for r in slow)}/{len(slow)}" if slow else "")
                 + "; caught rows: " + (", ".join(sorted({f"`{e['benchmark']}` ({e['params']})"
                                                          for r in slow for e in r["counted"]})) or "none"))
    lines += ["", "Drift: the 90th percentile of max(r, 1/r) over the control rows of that kind "
              "(number of rows in brackets); a subject row must move beyond max(factor, drift). "
              "Worst subject: the largest move for the worse of a stac-manager row (r oriented, "
              "> 1 = worse): noise in the same-commit runs, the signal in the slow ones.", ""]
    for r in rows:
        named = r["regressed"] + r["failed"]
        if named and r["pair"] == "same":
            lines.append(f"- same run {r['run']} flagged: " + "; ".join(map(row_name, named[:5])))
    ok = alarms == 0 and all(r["exit"] == 1 and r["regressed"] for r in slow)
    return "\n".join(lines) + "\n", ok


def main(argv=None):
    args = parse_args(argv)
    try:
        repo = premerge.check_repo(args.repo, False)
        same = premerge.resolve(repo, args.commit)
        slow = premerge.resolve(repo, args.slow_commit) if args.slow_commit else None
        outdir = Path(args.workdir).expanduser().resolve() / "runs"
        outdir.mkdir(parents=True, exist_ok=True)
        rows = []
        with hogs(args.hog):
            for i in range(1, args.runs + 1):
                for pair, head in (("same", same), ("slow", slow)):
                    if head is not None:
                        rows.append(one_run(args, pair, i, same, head, outdir))
                        print(f"gatecheck: {pair} run {i}: exit {rows[-1]['exit']}, "
                              f"{len(rows[-1]['regressed'])} regressed ({len(rows[-1]['counted'])} counted)",
                              file=sys.stderr)
    except premerge.PremergeError as exc:
        print(f"gatecheck.py: error: {exc}", file=sys.stderr)
        return 2
    labels = {"same": same[:8], **({"slow": slow[:8]} if slow else {})}
    text, ok = render(args, rows, labels)
    sys.stdout.write(text)
    if args.output:
        Path(args.output).write_text(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""What one commit costs: run a profile over commits with asv and split the seconds per commit.

    python -m tools.budget {history,full} COMMIT [COMMIT ...] [--config asv.conf.json]
                           [--fresh-env] [--launch-method forkserver|spawn] [-- ASV RUN ARGS]
    python -m tools.budget recorded RESULTS/MACHINE      # the same split, from results on disk

A measurement of the suite itself (a benchmark of the benchmarks, not a test): it runs
``asv run <profile> COMMIT^!`` once per commit into a throw-away results folder (your results
are never touched), then reads asv's own records and prints, per commit:

``environment``  creating the virtualenv and the matrix (``asv setup``; only with --fresh-env)
``build``        building and installing stac-manager at that commit (asv's ``<build>`` duration)
``benchmarks``   the benchmarks (asv's per-benchmark ``duration``, plus ``setup_cache``)
``discovery``    the rest of the wall time: importing the suite, asv's own bookkeeping
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools import bench

ROOT = Path(__file__).resolve().parents[1]
MACHINE = "budget"


def load_conf(path):
    from asv.util import load_json  # strips // comments, as asv does

    return load_json(str(path), js_comments=True)


def scratch_config(conf_path, work, fresh_env):
    """A copy of the project's config whose results (and, with ``fresh_env``, envs) go to ``work``."""
    conf = load_conf(conf_path)
    base = Path(conf_path).resolve().parent
    conf["results_dir"] = str(work / "results")
    conf["html_dir"] = str(work / "html")
    conf["env_dir"] = str(work / "env") if fresh_env else str(base / conf.get("env_dir", "env"))
    conf["benchmark_dir"] = str(base / conf.get("benchmark_dir", "benchmarks"))
    repo = conf.get("repo", "")
    if not repo.startswith(("http://", "https://", "git@")):
        repo = str((base / repo).resolve())
    elif (base / conf["project"]).exists():  # asv's clone (or the offline mirror) of the URL
        repo = str(base / conf["project"])
    conf["repo"] = repo
    path = work / "asv.conf.json"
    path.write_text(json.dumps(conf, indent=2))
    shutil.copy(base / "constraints.txt", work / "constraints.txt")
    return path


def asv(*args, cwd):
    return subprocess.run([sys.executable, "-m", "asv", *args], cwd=cwd,
                          stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT).returncode


def split(results_dir, commit, wall):
    """(build, benchmarks, discovery) seconds of ``commit`` from its asv results file."""
    files = list(Path(results_dir).glob(f"{MACHINE}/{commit[:8]}-*.json"))
    if not files:
        return None
    build, benches = recorded_seconds(json.loads(files[0].read_text()))
    return build, benches, max(0.0, wall - build - benches)


def _module(key):
    """The suite module of a results key: ``file_ingest.X.time_run`` or ``<setup_cache file_ingest:47>``."""
    return key.removeprefix("<setup_cache ").split(".")[0].split(":")[0]


def recorded_seconds(data, scale=False):
    """(build/install, benchmarks incl. setup_cache) seconds that asv recorded in one results file: of
    every suite but the scale selection, which is a profile of its own, or (``scale``) of it alone."""
    durations = data.get("durations", {})
    build = sum(v for k, v in durations.items() if k.startswith("<build"))
    caches = sum(v for k, v in durations.items()
                 if k.startswith("<setup_cache") and (_module(k) == bench.SCALE_MODULE) == scale)
    col = data["result_columns"].index("duration")
    benches = sum(row[col] for name, row in data["results"].items()
                  if len(row) > col and row[col] and (_module(name) == bench.SCALE_MODULE) == scale)
    return build, benches + caches


def recorded(machine_dir):
    """Print the recorded cost of every commit in ``machine_dir``, grouped by profile."""
    history = set(bench.history_classes())
    rows, scaled = [], []
    for path in sorted(Path(machine_dir).glob("*.json")):
        if path.name == "machine.json":
            continue
        data = json.loads(path.read_text())
        ran = {name.rsplit(".", 1)[0] for name in data.get("results", {})}
        classes = {c for c in ran if _module(c) != bench.SCALE_MODULE}
        if classes != ran:
            scaled.append((data["commit_hash"][:8], recorded_seconds(data, scale=True)[1]))
        # a run of a few full-profile classes is neither profile's cost
        profile = "history" if classes <= history else ("full" if classes >= history else "partial")
        build, benches = recorded_seconds(data)
        rows.append((profile, data.get("date", 0), data["commit_hash"][:8], build, benches))
    print("| profile | commits | median build/install (s) | median benchmarks (s) | median total (s) | max total (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for profile in ("history", "full"):
        mine = [r for r in rows if r[0] == profile]
        if mine:
            totals = [r[3] + r[4] for r in mine]
            print(f"| {profile} | {len(mine)} | {statistics.median(r[3] for r in mine):.0f} | "
                  f"{statistics.median(r[4] for r in mine):.0f} | {statistics.median(totals):.0f} | "
                  f"{max(totals):.0f} |")
    full = sorted((r for r in rows if r[0] == "full"), key=lambda r: r[1])
    if full:  # a handful of heads, each run with the suite of its day: each one's own cost
        print("\n_Full profile, each commit (build/install + benchmarks): "
              + ", ".join(f"`{r[2]}` {r[3] + r[4]:,.0f} s" for r in full) + "._")
    if scaled:  # the scale selection, run beside a profile: its own cost, in no profile's
        print("\n_Scale selection (`tools.bench scale`), counted apart: "
              + ", ".join(f"`{c}` {s:,.0f} s" for c, s in sorted(scaled)) + "._")
    partial = sorted(r[2] for r in rows if r[0] == "partial")
    if partial:
        print(f"\n_Not counted: {len(partial)} commit(s) with only some classes of the full profile "
              f"({', '.join(f'`{c}`' for c in partial)})._")
    return 0


def measure(args, work, config):
    rows = []
    if args.fresh_env:
        start = time.perf_counter()
        asv("setup", "--config", str(config), cwd=work)
        rows.append(("(environment)", time.perf_counter() - start, 0, 0, 0))
    asv("machine", "--yes", "--machine", MACHINE, "--config", str(config), cwd=work)
    regex = bench.bench_regex(args.profile)
    select = ["--bench", regex] if regex else []
    for commit in args.commits:
        start = time.perf_counter()
        asv("run", "--config", str(config), "--machine", MACHINE, "--launch-method", args.launch_method,
            *select, *args.asv_args, f"{commit}^!", cwd=work)
        wall = time.perf_counter() - start
        parts = split(work / "results", resolve(config, commit), wall)
        rows.append((commit, wall, *(parts or (0, 0, 0))))
    return rows


def resolve(config, commit):
    repo = load_conf(config)["repo"]
    out = subprocess.run(["git", "-C", repo, "rev-parse", commit], capture_output=True, text=True)
    return out.stdout.strip() or commit


def render(rows, profile, launch_method):
    print(f"\n{profile} profile, launch_method={launch_method}: seconds per commit\n")
    print("| commit | total | build/install | benchmarks | discovery + asv |")
    print("|---|---:|---:|---:|---:|")
    for name, wall, build, benches, rest in rows:
        print(f"| {name} | {wall:.0f} | {build:.0f} | {benches:.0f} | {rest:.0f} |")
    walls = [r[1] for r in rows if not r[0].startswith("(")]
    if walls:
        print(f"\nmedian {statistics.median(walls):.0f} s per commit over {len(walls)} commit(s)")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    bench.use_harness_python()
    if argv[:1] == ["recorded"] and len(argv) == 2:
        return recorded(argv[1])
    cut = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(prog="python -m tools.budget", description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", choices=bench.PROFILES)
    parser.add_argument("commits", nargs="+")
    parser.add_argument("--config", default=str(ROOT / "asv.conf.json"))
    parser.add_argument("--fresh-env", action="store_true", help="also time creating the environment")
    parser.add_argument("--launch-method", default="forkserver", choices=["forkserver", "spawn"])
    args = parser.parse_args(argv[:cut])
    args.asv_args = argv[cut + 1:]
    with tempfile.TemporaryDirectory(prefix="asv-budget-") as tmp:
        work = Path(tmp)
        rows = measure(args, work, scratch_config(args.config, work, args.fresh_env))
    render(rows, args.profile, args.launch_method)
    return 0


if __name__ == "__main__":
    sys.exit(main())

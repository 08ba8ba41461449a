#!/usr/bin/env python
"""Run the suite by profile, delegating to asv (one class per subcommand, as iris' bm_runner).

    python tools/bench.py history [RANGE ...] [-- ASV RUN ARGS]   # what depends on stac-manager
    python tools/bench.py full [RANGE ...] [-- ASV RUN ARGS]      # every row: the PRD matrix
    python tools/bench.py list {history,full}                     # the benchmarks a profile runs

``history``: every stac-manager (``module``) row of every suite, the import baseline and one
cheap subject-independent ``Control`` per suite (the noise floor) - the classes whose
``profile`` attribute is ``"history"``.  It runs with ``--skip-existing``, so it never
re-runs, erases or overwrites a benchmark a commit already has (from a full run, say).
``full``: every benchmark.  Both feed the same asv series (same names, params, versions).

RANGE is anything ``asv run`` takes (``main^!``, ``HASHFILE:commits.txt``, ``v1..v2``);
default ``main^!``.  After the run the PRD report of the newest commit run is printed, even
when benchmarks failed (asv exits 2 then): a failure is a finding, and the report says so.
Exit code: asv's.
"""

import argparse
import importlib
import inspect
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ("history", "full")


def history_classes():
    """``module.Class`` names of the benchmark classes in the history profile."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("STAC_BENCH_PRELOAD", "0")
    import benchmarks

    found = []
    for info in pkgutil.iter_modules(benchmarks.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"benchmarks.{info.name}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and not name.startswith("_") \
                    and getattr(cls, "profile", None) == "history":
                found.append(f"{info.name}.{name}")
    return sorted(found)


def bench_regex(profile):
    """The ``asv run --bench`` regex of ``profile`` (None: everything)."""
    if profile == "full":
        return None
    return "^(" + "|".join(name.replace(".", r"\.") for name in history_classes()) + r")\."


class Run:
    """``asv run`` of one profile, then the report."""

    def __init__(self, profile):
        self.profile = profile

    def asv_args(self, args):
        argv = ["run", "--config", args.config]
        regex = bench_regex(self.profile)
        if regex:
            argv += ["--bench", regex, "--skip-existing"]
        if args.machine:
            argv += ["--machine", args.machine]
        return argv + list(args.asv_args) + (args.range or ["main^!"])

    def __call__(self, args):
        asv = [sys.executable, "-m", "asv"]
        if not args.machine and not (Path.home() / ".asv-machine.json").exists():
            subprocess.run([*asv, "machine", "--yes", "--config", args.config], check=True)
        code = subprocess.run([*asv, *self.asv_args(args)]).returncode
        if code == 2:
            print(f"\nbench.py: asv exit 2: some benchmarks failed. A failed benchmark is a finding "
                  "(a check caught lost, duplicated or mangled items, or a crash); see the report.",
                  file=sys.stderr)
        if not args.no_report and code in (0, 2):
            report = [sys.executable, str(ROOT / "tools" / "report.py"), "--config", args.config]
            if args.machine:
                report += ["--machine", args.machine]
            subprocess.run(report)
        return code


class List:
    """Print the benchmark classes of a profile and its ``--bench`` regex."""

    def __call__(self, args):
        if args.profile == "full":
            print("every benchmark (no --bench)")
            return 0
        for name in history_classes():
            print(name)
        print(f"\n--bench '{bench_regex(args.profile)}' --skip-existing")
        return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="tools/bench.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for profile in PROFILES:
        p = sub.add_parser(profile, help=f"asv run, {profile} profile, then the report")
        p.add_argument("range", nargs="*", help="asv run range(s); default main^!")
        p.add_argument("--config", default=str(ROOT / "asv.conf.json"))
        p.add_argument("--machine", help="asv machine name (default: this machine's)")
        p.add_argument("--no-report", action="store_true", help="do not print the report afterwards")
        p.add_argument("asv_args", nargs=argparse.REMAINDER, help="after --: more asv run options")
        p.set_defaults(handler=Run(profile))
    p = sub.add_parser("list", help="the benchmarks a profile runs")
    p.add_argument("profile", choices=PROFILES)
    p.set_defaults(handler=List())
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if getattr(args, "asv_args", None) and args.asv_args[0] == "--":
        args.asv_args = args.asv_args[1:]
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())

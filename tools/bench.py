"""Run the suite by profile, delegating to asv (one class per subcommand, as iris' bm_runner).

    python -m tools.bench history [RANGE ...] [-- ASV RUN ARGS]   # what depends on stac-manager
    python -m tools.bench full [RANGE ...] [-- ASV RUN ARGS]      # every row: the PRD matrix
    python -m tools.bench scale [RANGE ...] [-- ASV RUN ARGS]     # stac-manager's rows at 1K..100K items
    python -m tools.bench list {history,full,scale}               # the benchmarks a profile runs

``history``: every stac-manager (``module``) row of every suite, the import baseline and one
cheap subject-independent ``Control`` per suite (the noise floor) - the classes whose
``profile`` attribute is ``"history"``, their ``HISTORY_METHODS`` only, four of them at one
value of their costliest parameter (``history_params``: the API at 0 ms added latency, the
JSON and Parquet output at stac-manager's default buffer, the pipeline without checkpoints;
the other values come with a full run).  It runs with ``--skip-existing``, so it never
re-runs, erases or overwrites a benchmark a commit already has (from a full run, say).
``full``: every benchmark but the scale selection.  Both feed the same asv series (same names,
params, versions).  ``scale``: the scale selection (``benchmarks/scale.py``, the classes whose
``profile`` is ``"scale"``), stac-manager's sequential rows at every ``STAC_BENCH_SCALES`` size
(default 1,000, 10,000 and 100,000 items; ``docs/scale.md``), with ``STAC_BENCH_PRELOAD_SCALES=1``;
its report adds the scaling tables.
The report printed afterwards is the run's: its machine (``--machine``, else this host's, as asv
picks it) and the newest commit it wrote results for.

RANGE is anything ``asv run`` takes (``main^!``, ``HASHFILE:commits.txt``, ``v1..v2``);
default ``main^!``.  ``--shard K/N`` with one ``HASHFILE:`` range runs shard K of N of its commits
(``tools.shards``: a commit's shard is a hash of its id; an empty shard runs nothing, exit 0).
A ``--bench`` after ``--`` replaces the profile's selection; ``STAC_BENCH_ASV_ARGS`` is appended to
the args after ``--`` (the tests run the history workflow's command lines as they are, on a few
classes).  After the run the PRD report of the newest commit run is printed, even
when benchmarks failed (asv exits 2 then): a failure is a finding, and the report says so.
Exit code: asv's.
"""

import argparse
import importlib
import inspect
import os
import pkgutil
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
import benchmarks
from tools.asvrun import Asv
from tools.reporting.cli import main as report_main
from tools.reporting.config import load_config
from tools.reporting.errors import ReportError
from tools.reporting.inputs import host_machine
from tools.reporting.results import parse_result_file
from tools.shards import ShardError, parse_shard, read_commits, split

PROFILES = ("history", "full", "scale")
#: The suite module of the scale selection: the scale profile runs it alone, the others leave it out.
SCALE_MODULE = "scale"
#: What the history profile measures of its classes: the checked wall time and the memory
#: increment (throughput is n_items / time; the pipeline's stage shares and the write-only
#: throughput of output and pipeline come with a full run).  Selecting whole benchmarks
#: records nothing for the others, so a full run's values of them stay.
HISTORY_METHODS = ("time_run", "track_mem_mb", "track_instructions", "track_alloc_mb", "peakmem_import",
                   "track_bad_items")
#: A ``Control`` is there for its drift between commits (time) and as a flat line (its counts).
CONTROL_METHODS = ("time_run", "track_instructions", "track_alloc_mb")


def use_harness_python():
    """Put this interpreter's directory first on PATH, for asv and everything it starts.

    asv looks for ``python3.12`` on PATH; run as ``.venv/bin/python tools/...`` without
    activating the venv, PATH may offer a pyenv shim that has no version selected (or none).
    The harness venv has the same 3.12, so asv finds it first.
    """
    bindir = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[:1] != [bindir]:
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def history_classes():
    """``{"module.Class": class}`` of the benchmark classes in the history profile."""
    return profile_classes("history")


def profile_classes(profile):
    """``{"module.Class": class}`` of the benchmark classes whose ``profile`` is ``profile`` (the suites
    are imported here, not when this module is: they import stac-manager's stack)."""
    found = []
    for info in pkgutil.iter_modules(benchmarks.__path__):
        if info.name.startswith("_") or info.ispkg:
            continue
        module = importlib.import_module(f"benchmarks.{info.name}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and not name.startswith("_") \
                    and getattr(cls, "profile", None) == profile:
                found.append((f"{info.name}.{name}", cls))
    return dict(sorted(found))


def _class_regex(name, cls):
    """Every benchmark of ``cls``, or only the parameter values its ``history_params`` names.

    asv matches ``--bench`` against ``name(param, ...)`` (values as repr), and records the
    combinations left out as n/a for that commit (a later full run fills them in).
    """
    methods = CONTROL_METHODS if name.endswith(".Control") else HISTORY_METHODS
    name = name.replace(".", r"\.") + r"\.(" + "|".join(methods) + ")"
    chosen = getattr(cls, "history_params", None)
    if not chosen:
        return name + r"(\(|$)"
    values = [repr(chosen[p]) if p in chosen else "[^,()]+" for p in cls.param_names]
    return name + r"\(" + ", ".join(values) + r"\)$"


def bench_regex(profile):
    """The ``asv run --bench`` regex of ``profile``: full is everything but the scale selection."""
    if profile == "full":
        return rf"^(?!{SCALE_MODULE}\.)"
    if profile == "scale":
        return rf"^{SCALE_MODULE}\."
    return "^(" + "|".join(_class_regex(n, c) for n, c in history_classes().items()) + ")"


class Run:
    """``asv run`` of one profile, then the report."""

    def __init__(self, profile):
        self.profile = profile

    def asv_args(self, args):
        argv = ["run", "--config", args.config]
        regex = bench_regex(self.profile)
        argv += [] if selected(args.asv_args) else ["--bench", regex]  # unless -- --bench chose
        if self.profile == "history":  # never over what is there
            argv += ["--skip-existing"]
        if args.machine:
            argv += ["--machine", args.machine]
        return argv + list(args.asv_args) + (args.range or ["main^!"])

    def __call__(self, args):
        if getattr(args, "empty_shard", False):  # --shard: this shard of the HASHFILE has no commit
            print(f"bench.py: shard {args.shard} of {args.shard_of} has no commits: nothing to run", file=sys.stderr)
            return 0
        asv = [sys.executable, "-m", "asv"]
        if self.profile == "scale":  # the forkserver prepares the checks of every scale once
            os.environ["STAC_BENCH_PRELOAD_SCALES"] = "1"
        log = Path(args.config).resolve().parent / ".asv" / "bench.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        runner = Asv(args.config, Path.cwd(), args.verbose, "bench.py", log=log)
        if not args.machine and not (Path.home() / ".asv-machine.json").exists():
            if runner.stream([*asv, "machine", "--yes", "--config", args.config])[0] != 0:
                raise SystemExit(f"bench.py: error: asv machine --yes failed (log: {log})")
            runner.progress.say(f"this machine is asv's {host_machine()!r}: its results go to a series of their own")
        machine = args.machine or host_machine()
        before = result_files(args.results_dir, machine)
        runner.progress.say(f"asv run, {self.profile} profile (asv's log: {log}; -v to see it here)")
        code, _ = runner.stream([*asv, *self.asv_args(args)])
        if code == 2:
            print("\nbench.py: asv exit 2: some benchmarks failed. A failed benchmark is a finding "
                  "(a check caught lost, duplicated or mangled items, or a crash); see the report.",
                  file=sys.stderr)
        if not args.no_report and code in (0, 2):
            # the report of this run: its machine, and the newest commit it wrote results for
            report = ["--config", args.config]
            report += ["--machine", machine] if machine else []
            commit = newest_written(before, result_files(args.results_dir, machine))
            report += ["--commit", commit] if commit else []
            report_main(report)
        return code


def selected(asv_args):
    """Whether the args after ``--`` choose the benchmarks themselves (``--bench``/``-b``)."""
    return any(a in ("-b", "--bench") or a.startswith("--bench=") for a in asv_args)


def shard_range(args, config):
    """``--shard K/N``: the one ``HASHFILE:`` range replaced by its shard's commits, written to
    ``<config's folder>/.asv/shard-K-of-N.txt`` (``args.empty_shard`` when the shard has none).
    ShardError on bad input."""
    k, n = parse_shard(args.shard)
    ranges = args.range or []
    if len(ranges) != 1 or not ranges[0].startswith("HASHFILE:"):
        raise ShardError("--shard needs one HASHFILE:path range (the commit list to split)")
    commits = split(read_commits(ranges[0].split(":", 1)[1]), k, n)
    args.shard, args.shard_of, args.empty_shard = k, n, not commits
    if not commits:
        return ranges
    path = Path(config).resolve().parent / ".asv" / f"shard-{k}-of-{n}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{c}\n" for c in commits))
    return [f"HASHFILE:{path}"]


def result_files(results_dir, machine):
    """``{path: (mtime_ns, size)}`` of ``machine``'s results files (none without a machine)."""
    folder = Path(results_dir) / (machine or "")
    if not machine or not folder.is_dir():
        return {}
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.glob("*.json") if p.name != "machine.json"}


def newest_written(before, after):
    """The commit of the newest (by commit date) results file written between ``before`` and
    ``after``; None if the run wrote none (``--skip-existing`` found everything there)."""
    written = []
    for path, stamp in after.items():
        if before.get(path) != stamp:
            try:
                written.append(parse_result_file(str(path)))
            except ReportError:
                continue  # the report names an unreadable file itself
    return max(written, key=lambda f: f.date or 0).commit_hash if written else None


class List:
    """Print the benchmark classes of a profile and its ``--bench`` regex."""

    def __call__(self, args):
        if args.profile == "full":
            print(f"every benchmark but the scale selection (--bench '{bench_regex('full')}')")
            return 0
        for name, cls in profile_classes(args.profile).items():
            print(name, getattr(cls, "history_params", "") or "", cls.params if args.profile == "scale" else "")
        print(f"\n--bench '{bench_regex(args.profile)}'" + (" --skip-existing" if args.profile == "history" else ""))
        return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for profile in PROFILES:
        p = sub.add_parser(profile, help=f"asv run, {profile} profile, then the report")
        p.add_argument("range", nargs="*", help="asv run range(s); default main^!")
        p.add_argument("--config", default=str(ROOT / "asv.conf.json"))
        p.add_argument("--machine", help="asv machine name (default: this machine's)")
        p.add_argument("--shard", metavar="K/N", help="run shard K of N of the one HASHFILE: range's commits")
        p.add_argument("--no-report", action="store_true", help="do not print the report afterwards")
        p.add_argument("--verbose", "-v", action="store_true", help="asv's whole output on stderr (else: "
                       "a line per step; the whole of it in .asv/bench.log)")
        p.set_defaults(handler=Run(profile))
    p = sub.add_parser("list", help="the benchmarks a profile runs")
    p.add_argument("profile", choices=PROFILES)
    p.set_defaults(handler=List())
    return parser


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    parser = build_parser()
    args = parser.parse_args(argv[:cut])
    # after --: passed to asv run as they are
    args.asv_args = argv[cut + 1:] + shlex.split(os.environ.get("STAC_BENCH_ASV_ARGS", ""))
    if hasattr(args, "config"):
        try:
            args.results_dir = load_config(args.config, None, None).results_dir
            if args.shard is not None:
                args.range = shard_range(args, args.config)
        except (ReportError, ShardError) as exc:  # before any run: one line, exit 2
            parser.exit(2, f"bench.py: error: {exc}\n")
    use_harness_python()
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())

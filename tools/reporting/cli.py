"""The command line: one class per subcommand (arguments + what it runs), then main().

    python -m tools.report [report] [--results DIR | --config asv.conf.json]
                           [--commit C] [--machine M] [--env E]
                           [--output FILE.md] [--json FILE.json]
    python -m tools.report compare BASE HEAD [--factor 1.1] [--only-changed]
    python -m tools.report history BENCH_OR_SCENARIO [--where k=v] [--branch B]
    python -m tools.report history --steps [SUITE] [--factor 1.1] [--branch B]

``report`` and ``history`` write PNG charts beside ``--output FILE.md`` (in FILE_charts/) or
into ``--charts DIR``, linked from the Markdown with relative paths (``--no-charts``: none).

Exit codes: 0 = fine, 1 = the gate found regressions (slower beyond the factor and
the control drift, failed / became n/a, or removed), 2 = bad input or usage (one-line
message on stderr, no traceback), including `compare` of the same results twice.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import charts
from .analyse import build_report
from .config import Config, load_config
from .errors import EXIT_ERROR, EXIT_OK, EXIT_REGRESSION, ReportError
from .gate import ALLOC_FACTOR, INSTRUCTIONS_FACTOR, compare_results
from .history import build_history, build_step_history, parse_where
from .inputs import check_git_repo, check_known, check_output, parse_factor
from .render import render_compare, render_report, to_json
from .results import ResultFile, ResultsDB, load_benchmarks, parse_result_file

PROG = "report.py"


class _Parser(argparse.ArgumentParser):
    """Usage errors are bad input too: one line (``report.py: error: ...``), exit 2."""

    def error(self, message):
        raise ReportError(f"{message} (see {self.prog} --help)")


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


def _add_charts(p: argparse.ArgumentParser):
    g = p.add_mutually_exclusive_group()
    g.add_argument("--charts", metavar="DIR", help="write PNG charts into DIR, linked from the Markdown with "
                   "paths relative to it (default with --output FILE.md: FILE_charts/ beside it; "
                   "without --output: no charts)")
    g.add_argument("--no-charts", action="store_true", help="write no charts, even with --output")


def chart_dir(args) -> str | None:
    """Where this command's charts go, or None."""
    if getattr(args, "no_charts", False):
        return None
    if getattr(args, "charts", None):
        return args.charts
    if args.output:
        stem, _ = os.path.splitext(args.output)
        return stem + "_charts"
    return None


def link_base(args) -> str:
    """The directory the Markdown's chart links are relative to (the --output file's, else the cwd)."""
    return os.path.dirname(os.path.abspath(args.output)) if args.output else os.getcwd()


class Report:
    name = "report"
    help = "one PRD table per scenario for one commit (default)"

    epilog = ("Opens with the Findings: the PRD's questions (where the time goes, processes against the GIL, "
              "workers per mode, output formats, Phase 2 concurrency, the Phase 1 method, fault runs) "
              "answered from this commit's results; a question whose rows are missing says so. Charts: a "
              "speedup-versus-concurrency PNG beside each scenario with two or more concurrency levels.")

    @staticmethod
    def add_arguments(p):
        p.add_argument("--commit", "-c", help="full hash, unique prefix or git name (default: newest)")
        _add_charts(p)

    @staticmethod
    def run(args, cfg: Config) -> tuple[int, ResultsDB | None]:
        db = ResultsDB(cfg.results_dir)
        rep = build_report(db, args.machine, args.commit, args.env, cfg.repo)
        where = chart_dir(args)
        if where is not None:
            rep["charts"] = charts.write_report_charts(rep, where, link_base(args))
            if rep.get("scaling"):
                rep["scaling_charts"] = charts.write_scaling_charts(rep["scaling"], where, link_base(args))
        emit(args, render_report(rep), rep)
        return EXIT_OK, db


class Compare:
    name = "compare"
    help = "gate: compare two commits or result files; exit 1 on regression"
    epilog = ("Control drift: harness and ceiling strategies and *.Control classes do not run stac-manager; "
              "the 90th percentile of how far they moved (per kind: time, throughput, memory) is the "
              "machine's drift, and a stac-manager row is a regression only beyond max(factor, drift). "
              "Exit codes: 0 the gate passed; 1 something regressed, failed, became n/a or was removed; "
              "2 bad input, including base and head being the same results (nothing to compare).")

    @staticmethod
    def add_arguments(p):
        p.add_argument("base", help="base commit (hash / prefix / git name) or result file")
        p.add_argument("head", help="head commit (hash / prefix / git name) or result file")
        p.add_argument("--factor", "-f", default="1.1",
                       help="ratio beyond which a change counts: a finite number > 1 (default 1.1)")
        p.add_argument("--instructions-factor", default=str(INSTRUCTIONS_FACTOR),
                       help="ratio beyond which an instruction count (track_instructions) counts: a finite "
                       f"number > 1 (default {INSTRUCTIONS_FACTOR:g}); no control drift applies to it")
        p.add_argument("--alloc-factor", default=str(ALLOC_FACTOR),
                       help="ratio beyond which an allocation peak (track_alloc_mb) counts: a finite "
                       f"number > 1 (default {ALLOC_FACTOR:g}); no control drift applies to it")
        p.add_argument("--only-changed", action="store_true", help="omit the unchanged table")
        p.add_argument("--allow-na", action="store_true",
                       help="do not fail when a result became n/a (skipped); new failures still fail")
        p.add_argument("--allow-removed", action="store_true",
                       help="do not fail when a benchmark (or parameter combination) of the base is "
                       "missing from the head")

    @staticmethod
    def side(spec: str, db_cache: dict, cfg: Config, machine, env) -> tuple[ResultFile, dict | None]:
        """A result file path, or a commit (hash prefix / git name) in the results dir."""
        if spec.endswith(".json") and os.path.exists(spec):
            rf = parse_result_file(spec)
            return rf, load_benchmarks(os.path.dirname(os.path.dirname(os.path.abspath(spec))), required=False)
        if "db" not in db_cache:
            db_cache["db"] = ResultsDB(cfg.results_dir)
        db = db_cache["db"]
        return db.select(db.pick_machine(machine), spec, env, cfg.repo), db.benchmarks

    @staticmethod
    def check(args):
        parse_factor(args.factor)
        parse_factor(args.instructions_factor, "--instructions-factor")
        parse_factor(args.alloc_factor, "--alloc-factor")

    @staticmethod
    def run(args, cfg: Config) -> tuple[int, ResultsDB | None]:
        code, cmp, db = compare(args.base, args.head, cfg, args.factor, machine=args.machine, env=args.env,
                                allow_na=args.allow_na, allow_removed=args.allow_removed,
                                instructions_factor=parse_factor(args.instructions_factor, "--instructions-factor"),
                                alloc_factor=parse_factor(args.alloc_factor, "--alloc-factor"))
        emit(args, render_compare(cmp, args.only_changed), cmp)
        return code, db


def compare(base_spec, head_spec, cfg: Config, factor, machine=None, env=None, allow_na=False,
            allow_removed=False, instructions_factor=INSTRUCTIONS_FACTOR,
            alloc_factor=ALLOC_FACTOR) -> tuple[int, dict, ResultsDB | None]:
    """The gate (``compare``) as a function: ``(exit code, comparison, results db or None)``.

    ``base_spec``/``head_spec``: a commit of ``cfg``'s results (hash, prefix, git name) or a
    results file.  Raises ReportError on bad input, as the command exits 2.
    """
    cache: dict = {}
    base, bench_b = Compare.side(base_spec, cache, cfg, machine, env)
    head, bench_h = Compare.side(head_spec, cache, cfg, machine, env)
    # without the parameter names (benchmarks.json), the controls would be judged as subjects
    where = os.path.dirname(os.path.dirname(os.path.abspath(head.path if bench_h else base.path)))
    bench = bench_h or bench_b or load_benchmarks(where)
    check_known([base, head], bench, where)
    cmp = compare_results(base, head, parse_factor(factor), bench, allow_na=allow_na, allow_removed=allow_removed,
                          instructions_factor=instructions_factor, alloc_factor=alloc_factor)
    return (EXIT_REGRESSION if cmp["gate_failed"] else EXIT_OK), cmp, cache.get("db")


class History:
    name = "history"
    help = "one benchmark or scenario over the commits; --steps: each suite's steps beyond the noise floor"
    epilog = ("--steps needs no benchmark name: per suite (benchmark module), stac-manager's throughput "
              "(track_throughput, else n_items / time_run) over the commits, and every step where it moved "
              "between two consecutive measured commits by more than max(--factor, the suite's noise floor). "
              "The noise floor is the 90th percentile of how far the suite's Control rows moved between "
              "consecutive commits. Each step names its commit's subject line when the git repository is "
              "at hand (--repo, or the repo of asv.conf.json). Charts: the values over the commits.")

    @staticmethod
    def add_arguments(p):
        p.add_argument("target", nargs="?", help="benchmark (mod.Class.time_x) or scenario (mod.Class); "
                       "with --steps: one suite (e.g. file_ingest), default every suite")
        p.add_argument("--steps", action="store_true",
                       help="per suite: stac-manager's throughput over the commits and its steps beyond "
                       "the noise floor of the suite's Control rows")
        p.add_argument("--factor", "-f", default=None,
                       help="with --steps: a step must exceed this ratio too (a finite number > 1, default 1.1)")
        p.add_argument("--branch", "-b", nargs="?", const="", default=None,
                       help="only commits on this branch (needs --repo or a local repo in asv.conf.json; "
                       "without a value: the first branch of asv.conf.json)")
        p.add_argument("--where", "-w", action="append", metavar="PARAM=VALUE",
                       help="keep only these parameter values (repeatable; not with --steps)")
        _add_charts(p)

    @staticmethod
    def check(args):
        if args.factor is not None:
            parse_factor(args.factor)
        if args.steps and args.where:
            raise ReportError("--where does not apply to --steps (it reads every stac-manager row)")
        if not args.steps and args.factor is not None:
            raise ReportError("--factor applies to --steps only")
        if not args.steps and not args.target:
            raise ReportError("history needs a benchmark (mod.Class.method) or scenario (mod.Class), or --steps")

    @staticmethod
    def run(args, cfg: Config) -> tuple[int, ResultsDB | None]:
        db = ResultsDB(cfg.results_dir)
        branch = args.branch
        if branch == "":
            branch = cfg.branches[0] if cfg.branches else "main"
        where, base = chart_dir(args), link_base(args)
        if args.steps:
            draw = (lambda suite: charts.write_steps_chart(suite, where, base)) if where is not None else None
            hist = build_step_history(db, args.machine, args.env, branch, cfg.repo, args.target,
                                      parse_factor(args.factor or "1.1"), draw)
        else:
            hist = build_history(db, args.target, args.machine, args.env, branch, cfg.repo,
                                 parse_where(args.where))
            if where is not None:
                picture = charts.write_history_chart(hist, where, base)
                hist["markdown"] += f"\n![{hist['target']} over the commits]({picture})\n"
                hist["charts"] = [picture]
        emit(args, hist["markdown"], hist)
        return EXIT_OK, db


COMMANDS = (Report, Compare, History)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="PRD-style Markdown reports and a regression gate from asv results.",
        epilog="Exit codes: 0 ok, 1 regression found by compare, 2 bad input (one line on stderr).",
    )
    sub = parser.add_subparsers(dest="command")
    for cmd in COMMANDS:
        p = sub.add_parser(cmd.name, help=cmd.help, epilog=getattr(cmd, "epilog", None))
        _add_common(p)
        cmd.add_arguments(p)
        p.set_defaults(command_class=cmd)
    return parser


def _write(path: str, text: str):
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise ReportError(f"cannot write {path}: {exc.strerror}") from None


def emit(args, markdown: str, data: dict):
    """Markdown to --output or stdout; JSON to --json ('-' = stdout, instead of the Markdown)."""
    if args.output:
        _write(args.output, markdown)
    elif args.json != "-":
        sys.stdout.write(markdown)
    if args.json == "-":
        sys.stdout.write(to_json(data))
    elif args.json:
        _write(args.json, to_json(data))


def run(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in [c.name for c in COMMANDS] + ["-h", "--help"]:
        argv = ["report"] + argv
    args = build_parser().parse_args(argv)
    check_args(args)
    cfg = load_config(args.config, args.results, args.repo)
    code, db = args.command_class.run(args, cfg)
    for note in db.notes if db else []:  # what a default chose
        print(f"{PROG}: reading {note}", file=sys.stderr)
    for w in db.warnings if db else []:
        print(f"{PROG}: warning: {w}", file=sys.stderr)
    return code


def check_args(args):
    """Every argument checked before any work: nothing is read or written on bad input."""
    check_output(args.output, "--output")
    check_output(args.json, "--json")
    if args.output and args.json and os.path.abspath(args.output) == os.path.abspath(args.json):
        raise ReportError("--output and --json name the same file")
    check_git_repo(args.repo)
    where = chart_dir(args)
    if where is not None and os.path.exists(where) and not os.path.isdir(where):
        raise ReportError(f"the charts folder {where} is a file")
    check = getattr(args.command_class, "check", None)
    if check:
        check(args)


def main(argv=None) -> int:
    try:
        return run(argv)
    except ReportError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # e.g. `report.py | head`: not an error worth a traceback
        sys.stderr.close()
        return EXIT_OK
    except Exception as exc:  # malformed data we did not anticipate: still one line
        if os.environ.get("REPORT_DEBUG"):
            raise
        msg = str(exc).splitlines()[0] if str(exc) else ""
        print(f"{PROG}: error: unexpected input ({type(exc).__name__}: {msg}); "
              "set REPORT_DEBUG=1 for a traceback", file=sys.stderr)
        return EXIT_ERROR

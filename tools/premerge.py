"""One command before a merge: benchmark two commits (or a working tree), print the PR comment.

    python -m tools.premerge --repo PATH [BASE [HEAD]] [--quick | --rounds 4] [--factor 1.5]
        [--output FILE.md] [--json FILE.json] [--machine NAME] [--workdir DIR] [-v] [-- ASV ARGS]
    python -m tools.premerge --repo PATH --working-tree [BASE] [same options]

BASE defaults to PATH's ``main``, HEAD to its ``HEAD``.  tools.bench's ``history`` profile runs
on both in one ``asv run --interleave-rounds -a rounds=4 HASHFILE:..`` (ABBA.. rounds, so drift
hits both alike); the comment is a header plus ``tools.report compare BASE HEAD --factor F``,
whose exit code is ours (0 pass, 1 regression; 2 = bad input, one line on stderr).
``--working-tree``: the head is PATH's working tree, ``pip install``-ed into a scratch virtualenv
with the matrix pins and constraints.txt, run after BASE by ``asv run --environment existing:..
--set-commit-hash <HEAD>`` as machine ``<machine>-worktree``.  All in ``--workdir`` (default
~/.cache/stac-manager-benchmarks/premerge): scratch asv.conf.json (``repo`` = PATH), results
(emptied per call), environments (kept), asv.log.  BASE == HEAD: HEAD is re-measured as a twin
commit (same tree, in a scratch clone).  ``--bench`` after ``--`` replaces the profile's selection;
``STAC_PREMERGE_ASV_ARGS`` is appended to the args after ``--`` (the tests run the CI workflow's
command line as it is, on a few classes).
"""

import argparse
import fcntl
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from tools import bench
from tools.asvrun import Asv, RunError, last_message
from tools.reporting import cli as reporting_cli
from tools.reporting.config import Config
from tools.reporting.errors import ReportError
from tools.reporting.gate import ALLOC_FACTOR, INSTRUCTIONS_FACTOR
from tools.reporting.inputs import check_output, parse_factor
from tools.reporting.render import render_compare, to_json

DEFAULT_WORKDIR = Path.home() / ".cache" / "stac-manager-benchmarks" / "premerge"
EXIT_OK, EXIT_REGRESSION, EXIT_ERROR = 0, 1, 2
PROG, PROFILE = "premerge.py", "history"
#: GitHub refuses comments over 65,536 characters: beyond this, the unchanged table goes.
COMMENT_LIMIT = 60000


class PremergeError(RunError):
    """Bad input or a failed step: one line on stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    """Usage errors are bad input too: one line (``premerge.py: error: ...``), exit 2."""

    def error(self, message):
        self.exit(EXIT_ERROR, f"{PROG}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    p = _Parser(prog="python -m tools.premerge", description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", required=True, help="a git checkout of stac-manager")
    p.add_argument("refs", nargs="*", metavar="REF", help="BASE [HEAD] (default: main HEAD)")
    p.add_argument("--working-tree", action="store_true", help="head = PATH's working tree (BASE only)")
    p.add_argument("--quick", action="store_true", help="one sample per benchmark (CI smoke runs)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 4; not with --quick)")
    p.add_argument("--factor", default="1.5", help="gate factor: a finite number > 1 (default 1.5)")
    p.add_argument("--instructions-factor", default=str(INSTRUCTIONS_FACTOR),
                   help=f"gate factor of instruction counts: a finite number > 1 (default {INSTRUCTIONS_FACTOR:g})")
    p.add_argument("--alloc-factor", default=str(ALLOC_FACTOR),
                   help=f"gate factor of allocation peaks: a finite number > 1 (default {ALLOC_FACTOR:g})")
    p.add_argument("--output", "-o", metavar="FILE.md", help="write the comment here, not to stdout")
    p.add_argument("--json", metavar="FILE.json", help="also write the comparison as JSON")
    p.add_argument("--machine", help="asv machine (default: ~/.asv-machine.json's only one, or the host)")
    p.add_argument("--workdir", default=str(DEFAULT_WORKDIR), help=f"scratch folder ({DEFAULT_WORKDIR})")
    p.add_argument("--verbose", "-v", action="store_true", help="echo asv's output to stderr")
    return p


def parse_args(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    parser = build_parser()
    args = parser.parse_args(argv[:cut])
    args.asv_args = argv[cut + 1:] + shlex.split(os.environ.get("STAC_PREMERGE_ASV_ARGS", ""))
    most = 1 if args.working_tree else 2
    if len(args.refs) > most:
        parser.error("at most one ref (BASE) with --working-tree" if args.working_tree
                     else "at most two refs (BASE HEAD)")
    try:
        check_args(args)
    except (ReportError, PremergeError) as exc:
        parser.error(str(exc))
    args.base = args.refs[0] if args.refs else "main"
    args.head = None if args.working_tree else (args.refs[1] if len(args.refs) > 1 else "HEAD")
    return args


#: What premerge.py writes in its work folder: a folder holding only these (or the marker) is its.
WORKDIR_MARKER = ".premerge-workdir"
OWN_NAMES = {WORKDIR_MARKER, ".lock", "asv.conf.json", "constraints.txt", "results", "env", "html", "asv.log",
             "hashes.txt", "base.txt", "compare.json", "twin.git", "worktree-venv"}


def check_args(args):
    """Every argument, before the first step (the factor by report.py's own rule)."""
    args.factor = parse_factor(args.factor)
    args.instructions_factor = parse_factor(args.instructions_factor, "--instructions-factor")
    args.alloc_factor = parse_factor(args.alloc_factor, "--alloc-factor")
    if args.quick and args.rounds is not None:
        raise PremergeError("--rounds does not apply to --quick (one sample, no rounds)")
    if args.rounds is not None and args.rounds < 1:
        raise PremergeError(f"--rounds must be >= 1 (got {args.rounds})")
    args.rounds = 4 if args.rounds is None else args.rounds
    check_output(args.output, "--output")
    check_output(args.json, "--json")
    if args.machine is not None and (not args.machine.strip() or os.sep in args.machine or args.machine[0] == "."):
        raise PremergeError(f"--machine {args.machine!r} is not a machine name (a folder name under results/)")
    check_workdir(Path(args.workdir).expanduser().resolve(), args.repo)


def check_workdir(workdir, repo):
    """Bad input unless ``workdir`` is premerge's own: new, empty, marked, or holding only its names.

    It must not be (or hold) this project or the repository: the tool empties its results there."""
    for what, path in (("this project", ROOT), ("the --repo", Path(repo).expanduser().resolve())):
        if workdir == path or workdir in path.parents:
            raise PremergeError(f"--workdir {workdir} is or contains {what} ({path}): give a folder of its own")
    if workdir.exists() and not workdir.is_dir():
        raise PremergeError(f"--workdir {workdir} is a file")
    if workdir.is_dir():
        foreign = sorted(e.name for e in workdir.iterdir() if e.name not in OWN_NAMES)
        if foreign and not (workdir / WORKDIR_MARKER).is_file():
            raise PremergeError(f"--workdir {workdir} holds files premerge.py did not create (e.g. {foreign[0]}): "
                                "give an empty or new folder")
    existing = next(p for p in (workdir, *workdir.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise PremergeError(f"--workdir {workdir}: {existing} is not a writable folder")


def selected(asv_args):
    """True when the pass-through args choose the benchmarks themselves."""
    return any(a in ("-b", "--bench") or a.startswith("--bench=") for a in asv_args)


def run_options(args):
    """The ``asv run`` options both sides share: sampling, selection, pass-through."""
    sampling = ["--quick"] if args.quick else ["-a", f"rounds={args.rounds}"]
    selection = [] if selected(args.asv_args) else ["--bench", bench.bench_regex(PROFILE)]
    return [*sampling, *selection, *args.asv_args]


def git(repo, *args, check=True):
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        msg = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        raise PremergeError(f"git {' '.join(args)} in {repo}: {msg}")
    return proc.stdout.strip() if proc.returncode == 0 else None


def check_repo(path, working_tree):
    """The absolute repository path; a clear error unless it is the top of a git repository."""
    repo = Path(path).expanduser().resolve()
    is_top = (repo / ".git").exists() or (repo / "objects").is_dir()  # as asv's Git.is_local_repo
    if not repo.is_dir() or not is_top or git(repo, "rev-parse", "--git-dir", check=False) is None:
        raise PremergeError(f"not a git repository: {path}")
    if working_tree and git(repo, "rev-parse", "--is-bare-repository") == "true":
        raise PremergeError(f"--working-tree needs a checkout; {path} is a bare repository")
    return repo


def resolve(repo, ref):
    sha = git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    if not sha:
        raise PremergeError(f"unknown ref {ref!r} in {repo}")
    return sha


def make_twin(repo, sha, workdir):
    """A scratch clone of ``repo`` holding a commit with ``sha``'s tree on top of ``sha``."""
    clone = workdir / "twin.git"
    shutil.rmtree(clone, ignore_errors=True)
    git(repo, "clone", "--quiet", "--bare", "--shared", str(repo), str(clone))
    who = {f"GIT_{role}_{key}": value for role in ("AUTHOR", "COMMITTER")
           for key, value in (("NAME", "premerge"), ("EMAIL", "premerge@invalid"),
                              ("DATE", git(repo, "log", "-1", "--format=%cI", sha)))}
    proc = subprocess.run(["git", "-C", str(clone), "commit-tree", f"{sha}^{{tree}}", "-p", sha,
                           "-m", f"premerge twin of {sha}"], capture_output=True, text=True,
                          env=dict(os.environ, **who))
    if proc.returncode != 0:
        raise PremergeError(f"cannot make a twin of {sha[:8]}: {proc.stderr.strip()}")
    return clone, proc.stdout.strip()


def scratch_config(repo, branch, workdir):
    """The project's asv.conf.json, pointed at ``repo`` and at scratch folders in ``workdir``."""
    from asv import util

    conf = util.load_json(str(ROOT / "asv.conf.json"), js_comments=True)
    conf.update(repo=str(repo), branches=[branch], benchmark_dir=str(ROOT / "benchmarks"),
                env_dir=str(workdir / "env"), results_dir=str(workdir / "results"),
                html_dir=str(workdir / "html"))
    return conf


def write_config(conf, workdir):
    """Write ``conf`` and the constraints its install_command names into ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "asv.conf.json"
    path.write_text(json.dumps(conf, indent=2) + "\n")
    shutil.copyfile(ROOT / "constraints.txt", workdir / "constraints.txt")
    return path


def known_machines():
    try:
        data = json.loads((Path.home() / ".asv-machine.json").read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def default_machine():
    return next(iter(known_machines())) if len(known_machines()) == 1 else platform.node()


def ensure_machine(name, config, like=None):
    """``name``'s entry in ~/.asv-machine.json, added if missing (a copy of ``like``, or asv's)."""
    known = known_machines()
    if name in known:
        return known[name]
    if like is not None:
        from asv.machine import MachineCollection

        info = dict(ensure_machine(like, config), machine=name)
        MachineCollection.save(name, info)
        return info
    proc = subprocess.run([sys.executable, "-m", "asv", "machine", "--yes", "--machine", name,
                           "--config", str(config)], capture_output=True, text=True)
    if proc.returncode != 0 or name not in known_machines():
        raise PremergeError(f"asv machine --machine {name} failed: {last_message(proc.stderr.splitlines())}")
    return known_machines()[name]


def lock_workdir(workdir):
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / WORKDIR_MARKER).write_text("premerge.py's work folder: it deletes only what it made here\n")
        handle = open(workdir / ".lock", "w")
    except OSError as exc:
        raise PremergeError(f"cannot use --workdir {workdir}: {exc.strerror}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise PremergeError(f"another premerge.py is running in {workdir} (use another --workdir)") from None
    return handle


def step(text):
    """One progress line on stderr."""
    print(f"{PROG}: {text}", file=sys.stderr, flush=True)


def hashfile(workdir, name, commits):
    (workdir / name).write_text("".join(f"{c}\n" for c in commits))
    return f"HASHFILE:{workdir / name}"


def worktree_python(asv, conf, repo):
    """A scratch virtualenv (reused) with the matrix pins and PATH's working tree installed."""
    from importlib.metadata import version

    from asv.plugins.virtualenv import Virtualenv

    python = Virtualenv._find_python(str(conf["pythons"][0]))  # the interpreter asv would use
    if python is None:
        raise PremergeError(f"no python{conf['pythons'][0]} found for the working-tree environment")
    exe = asv.workdir / "worktree-venv" / "bin" / "python"
    if not exe.exists():
        code, lines = asv.stream([sys.executable, "-m", "virtualenv", "--quiet", "-p", python, exe.parents[1]])
        if code != 0:
            raise PremergeError(f"cannot create {exe.parents[1]}: {last_message(lines)}")
    pins = [pin for pin in shlex.split(conf["install_command"][0]) if "==" in pin]  # what asv installs too
    for name, value in conf.get("matrix", {}).get("req", {}).items():
        value = value[0] if isinstance(value, list) else value
        pins.append(f"{name}=={value}" if value else name)
    constraints = ["--constraint", str(asv.workdir / "constraints.txt")]
    asv.pip(exe, "install", "--quiet", f"asv_runner=={version('asv_runner')}", *pins, *constraints)
    # Built as asv builds (no isolation: the pinned poetry-core); pip rebuilds a directory each time.
    asv.pip(exe, "install", "--quiet", "--no-build-isolation", str(repo), *constraints)
    return exe


def run_commits(args, repo, base, head, workdir, machine):
    """Both commits in one interleaved asv run; the compare specs (base, head)."""
    asv_repo, head_run, branch = repo, head, args.base
    if base == head:  # re-measure it: comparing one results file with itself proves nothing
        (asv_repo, head_run), branch = make_twin(repo, head, workdir), base
    config = write_config(scratch_config(asv_repo, branch, workdir), workdir)
    ensure_machine(machine, config)
    Asv(config, workdir, args.verbose, PROG).run(
        ["--interleave-rounds", *run_options(args), hashfile(workdir, "hashes.txt", [base, head_run])],
        [base, head_run], machine)
    return base, head_run


def run_worktree(args, repo, base, head, workdir, machine):
    """BASE built by asv, then the working tree as an existing environment (<machine>-worktree)."""
    conf = scratch_config(repo, args.base, workdir)
    config = write_config(conf, workdir)
    ensure_machine(machine, config)
    tree_machine = f"{machine}-worktree"
    ensure_machine(tree_machine, config, like=machine)
    asv = Asv(config, workdir, args.verbose, PROG)
    python = worktree_python(asv, conf, repo)
    asv.run([*run_options(args), hashfile(workdir, "base.txt", [base])], [base], machine)
    # No range with an existing environment: asv runs it once, saved as --set-commit-hash.
    asv.run(["--environment", f"existing:{python}", "--set-commit-hash", head, *run_options(args)],
            [head], tree_machine)
    (head_file,) = (workdir / "results" / tree_machine).glob(f"{head[:8]}-existing*.json")
    return base, str(head_file)


def compare(args, specs, workdir, machine):
    """The gate (``tools.report compare``, called as a function): (exit code, comparison)."""
    try:
        code, cmp, _ = reporting_cli.compare(*specs, Config(results_dir=str(workdir / "results")), args.factor,
                                             machine=machine, instructions_factor=args.instructions_factor,
                                             alloc_factor=args.alloc_factor)
    except ReportError as exc:
        raise PremergeError(f"the gate: {exc}") from None
    if not any(n for c, n in cmp["counts"].items() if c not in ("not_measured", "added", "removed", "incomparable")):
        raise PremergeError(f"no benchmark has a number on either side (all failed or n/a; log: {workdir / 'asv.log'})")
    if args.json:
        Path(args.json).write_text(to_json(cmp))
    return code, cmp


def header(args, repo, base, head, specs, machine):
    """The comment's head: both commits, the profile and the machine."""
    def line(sha, ref):
        named = f" (`{ref}`)" if ref and not sha.startswith(ref) else ""
        return f"`{sha[:8]}`{named} {git(repo, 'log', '-1', '--format=%s', sha)}"

    if args.working_tree:
        changed = len((git(repo, "status", "--short") or "").splitlines())
        head_line = (f"the **working tree** of `{repo}` ({changed} changed file{'s' * (changed != 1)} in "
                     f"`git status --short`) on top of {line(head, 'HEAD')}")
    elif specs[1] != head:
        head_line = f"{line(head, args.head)}, re-measured as its twin `{specs[1][:8]}` (same tree)"
    else:
        head_line = line(head, args.head)
    what = "the benchmarks chosen by `--bench` after `--`" if selected(args.asv_args) else \
        f"{len(bench.history_classes())} classes: stac-manager's rows and one Control per suite"
    how = "one side after the other" if args.working_tree else f"{args.rounds} interleaved rounds"
    how = "quick (one sample)" if args.quick else f"{how}, non-quick"
    info = known_machines().get(machine, {})
    hardware = ", ".join(str(info[k]) for k in ("cpu", "num_cpu", "os") if info.get(k))
    return (f"## stac-manager benchmarks: `{base[:8]}` → "
            f"{'the working tree' if args.working_tree else f'`{head[:8]}`'}\n\n"
            f"- **base**: {line(base, args.base)}\n- **head**: {head_line}\n"
            f"- **profile**: `{PROFILE}` ({what}); {how}; gate factor {args.factor:g}\n"
            f"- **machine**: `{machine}`{f' ({hardware})' if hardware else ''}\n\n")


def run(args):
    repo = check_repo(args.repo, args.working_tree)
    base = resolve(repo, args.base)
    head = resolve(repo, "HEAD" if args.working_tree else args.head)
    workdir = Path(args.workdir).expanduser().resolve()
    lock = lock_workdir(workdir)
    try:
        shutil.rmtree(workdir / "results", ignore_errors=True)
        machine = args.machine or default_machine()
        step(f"{base[:8]} against {'the working tree' if args.working_tree else head[:8]} on machine {machine} "
             f"(asv's log: {workdir / 'asv.log'})")
        specs = (run_worktree if args.working_tree else run_commits)(args, repo, base, head, workdir, machine)
        step(f"the gate (factor {args.factor:g})")
        code, cmp = compare(args, specs, workdir, machine)
        step("the gate passed" if code == EXIT_OK else "the gate found regressions (exit 1)")
        table = render_compare(cmp)
        if len(table) > COMMENT_LIMIT:
            table = render_compare(cmp, only_changed=True)
            table += "\n_The unchanged rows are left out (GitHub's comment size limit)._\n"
        comment = header(args, repo, base, head, specs, machine) + table
    finally:
        lock.close()
    if args.output:
        try:
            Path(args.output).write_text(comment)
        except OSError as exc:
            raise PremergeError(f"cannot write {args.output}: {exc.strerror}") from None
    else:
        sys.stdout.write(comment)
    print(f"{PROG}: {'regression' if code else 'pass'} (exit {code}); results in {workdir / 'results'}",
          file=sys.stderr)
    return code


def main(argv=None):
    bench.use_harness_python()
    try:
        return run(parse_args(argv))
    except RunError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())

"""Split a commit list into shards, and merge the results folders the shards wrote.

    python -m tools.shards split --shard K/N COMMITS_FILE      # the commits of shard K of N
    python -m tools.shards merge OUT_RESULTS SHARD_RESULTS...  # shards' results into one results/

``split``: COMMITS_FILE holds full commit hashes, one a line (``git rev-list`` prints them; blank
lines and ``#`` comments are skipped).  A commit's shard is ``sha256(hash) mod N`` (1-based):
stable, the same commit lands in the same shard whatever else the list holds.  ``tools.bench
history HASHFILE:COMMITS_FILE --shard K/N`` runs that shard (.github/workflows/history.yml).

``merge``: every SHARD_RESULTS is an asv results folder (``benchmarks.json``, a folder a
machine).  Checked first, before anything is written; any of these is refused with one line,
exit 2:

- a different benchmark suite version: one benchmark with another ``version``, ``params``,
  ``param_names``, ``type`` or ``unit`` in two folders (the shards or OUT_RESULTS);
- a different environment: a machine's ``machine.json`` differing between two folders, the
  results a shard brings for one machine in more than one environment (asv's env name, Python,
  the matrix pins), or a results file of a commit whose environment differs from the file of
  that name already there;
- two values for one commit and benchmark: the same row (benchmark) of the same commit's file in
  two folders with a different result, params or version.  A wall time measured twice is such a
  conflict; merge one measurement of each commit.

A shard's file that is byte-for-byte the one OUT_RESULTS has brings nothing.  Files of the same
commit are unioned: a row only one folder has is kept; a row both have (equal) keeps the first's
statistics; ``durations`` keep the first value of each key (OUT_RESULTS first, then the shards in
order).  Files are written atomically (a temporary file, then a rename); nothing is deleted.
"""

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
from pathlib import Path

FULL_HASH = re.compile(r"^[0-9a-f]{40}$")
#: What makes a benchmark the same series (asv draws a new line when one of these changes).
IDENTITY = ("version", "params", "param_names", "type", "unit")
#: What a results file says of its environment.
ENVIRONMENT = ("env_name", "python", "requirements", "params", "env_vars")
#: Per-row columns that must agree when two folders hold the same row.
VALUE_COLUMNS = ("result", "params", "version")


class ShardError(Exception):
    """Bad input: one line, exit 2."""


# --- split ---------------------------------------------------------------------------------------

def parse_shard(text):
    """``"K/N"`` -> ``(K, N)``, 1 <= K <= N."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match:
        raise ShardError(f"--shard must be K/N, shard K of N (got {text!r})")
    k, n = int(match.group(1)), int(match.group(2))
    if n < 1 or not 1 <= k <= n:
        raise ShardError(f"--shard {text}: K must be 1 to N, N at least 1")
    return k, n


def shard_of(commit, n):
    """The 1-based shard of ``commit`` among ``n``: a hash of the commit id, nothing else."""
    return int(hashlib.sha256(commit.lower().encode()).hexdigest(), 16) % n + 1


def read_commits(path):
    """The full hashes listed in ``path``, in order (ShardError on anything else)."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ShardError(f"cannot read the commit list {path}: {getattr(exc, 'strerror', None) or exc}") from None
    commits = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip().lower()
        if not line:
            continue
        if not FULL_HASH.match(line):
            raise ShardError(f"line {number} of {path} is not a full commit hash ({line[:50]!r}): "
                             "list them as git rev-list prints them")
        commits.append(line)
    return commits


def split(commits, k, n):
    """The commits of shard ``k`` of ``n``, in their order."""
    return [c for c in commits if shard_of(c, n) == k]


# --- merge: reading --------------------------------------------------------------------------------

def load(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise ShardError(f"cannot read {path}: {str(exc).splitlines()[0][:200]}") from None


class Folder:
    """One results folder: its benchmarks.json, machine.json files and results files."""

    def __init__(self, path, required=True):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise ShardError(f"{path} is a file, not a results folder")
        bench = self.path / "benchmarks.json"
        if required and not bench.is_file():
            raise ShardError(f"{path} is not an asv results folder (no benchmarks.json)")
        self.benchmarks = load(bench) if bench.is_file() else None
        if self.benchmarks is not None and not isinstance(self.benchmarks, dict):
            raise ShardError(f"{bench} is not asv's benchmarks.json")
        self.machines, self.files = {}, {}
        for sub in sorted(p for p in self.path.iterdir() if p.is_dir()) if self.path.is_dir() else []:
            if (sub / "machine.json").is_file():
                self.machines[sub.name] = load(sub / "machine.json")
            for file in sorted(sub.glob("*.json")):
                if file.name != "machine.json":
                    self.files[(sub.name, file.name)] = file

    def __str__(self):
        return str(self.path)


def check_suite(folders):
    """Every benchmark that two folders list has the same series identity in both."""
    seen = {}
    for folder in folders:
        if folder.benchmarks is None:
            continue
        for name, entry in folder.benchmarks.items():
            ident = {k: entry.get(k) for k in IDENTITY} if isinstance(entry, dict) else entry
            if name in seen and seen[name][0] != ident:
                first, where = seen[name]
                what = "the results format" if name == "version" else name
                raise ShardError(f"different benchmark suite version: {what} differs between {where} and {folder} "
                                 "(run every shard from the same suite, and merge into its own results)")
            seen.setdefault(name, (ident, folder))


def check_machines(folders):
    seen = {}
    for folder in folders:
        for machine, info in folder.machines.items():
            if machine in seen and seen[machine][0] != info:
                raise ShardError(f"different environment: machine.json of {machine!r} differs between "
                                 f"{seen[machine][1]} and {folder}")
            seen.setdefault(machine, (info, folder))


def environment(data):
    return {k: data.get(k) for k in ENVIRONMENT}


def environment_difference(a, b):
    """How two results files' ``environment`` differ, for a refusal ("" when they do not): the
    first field that differs, and of a dict (``params``, ``requirements``) only its differing keys."""
    field = next((k for k in ENVIRONMENT if not same(a[k], b[k])), None)
    if field is None:
        return ""
    x, y = a[field], b[field]
    if isinstance(x, dict) and isinstance(y, dict):
        keys = sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))
        x, y = ({k: d.get(k) for k in keys} for d in (x, y))
    return f"differ in {field} ({json.dumps(x, sort_keys=True)[:120]} and {json.dumps(y, sort_keys=True)[:120]})"


# --- merge: rows -----------------------------------------------------------------------------------

def cells(data, name):
    """``{column: value}`` of one row (asv drops trailing empty columns)."""
    cols, row = data["result_columns"], data["results"][name]
    return dict(zip(cols, list(row) + [None] * (len(cols) - len(row)), strict=False))


def same(a, b):
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def merge_file(key, kept, brought, kept_from, from_folder):
    """``kept`` (a results file's data) with the rows of ``brought`` added; ShardError on a clash."""
    machine, name = key
    difference = environment_difference(environment(kept), environment(brought))
    if difference:
        raise ShardError(f"different environment: {machine}/{name} in {kept_from} and {from_folder} {difference}")
    for field in ("commit_hash", "result_columns", "version"):
        if kept.get(field) != brought.get(field):
            raise ShardError(f"{machine}/{name} differs in {field} between {kept_from} and {from_folder}")
    merged = dict(kept, results=dict(kept.get("results") or {}), durations=dict(kept.get("durations") or {}))
    for bench in brought.get("results") or {}:
        if bench in merged["results"]:
            a, b = cells(merged, bench), cells(brought, bench)
            if not all(same(a[c], b[c]) for c in VALUE_COLUMNS if c in a):
                raise ShardError(f"two values for commit {str(kept.get('commit_hash'))[:8]} and benchmark {bench} "
                                 f"(machine {machine}) in {kept_from} and {from_folder}: never overwritten, "
                                 "merge one measurement of each commit")
        else:
            merged["results"][bench] = brought["results"][bench]
    for step, seconds in (brought.get("durations") or {}).items():
        merged["durations"].setdefault(step, seconds)
    return merged


def target_environments(target):
    """``{machine: (environment, target)}`` from one results file the target has per machine (the
    last by name): a shard's files must describe the machine as the target's do (``params`` carries
    machine.json's fields), or the dashboard draws the merged commits as a series of their own."""
    one = {machine: path for (machine, _), path in sorted(target.files.items())}
    return {machine: (environment(load(path)), target) for machine, path in one.items()}


def plan(target, shards):
    """``{(machine, file name): data}`` to write into ``target``; every check before any write."""
    check_suite([target, *shards])
    check_machines([target, *shards])
    merged, origin, envs = {}, {}, target_environments(target)
    for shard in shards:
        for key, path in shard.files.items():
            text = path.read_bytes()
            if key in target.files and target.files[key].read_bytes() == text:
                continue  # the file OUT already has: nothing brought
            data = load(path)
            if not isinstance(data, dict) or not isinstance(data.get("results"), dict) \
                    or "result_columns" not in data:
                raise ShardError(f"{path} is not an asv results file")
            env = environment(data)
            difference = environment_difference(envs[key[0]][0], env) if key[0] in envs else ""
            if difference:
                raise ShardError(f"different environment: the results for machine {key[0]!r} in "
                                 f"{envs[key[0]][1]} and {shard} {difference}")
            envs.setdefault(key[0], (env, shard))
            if key not in merged:
                merged[key], origin[key] = (load(target.files[key]), target) if key in target.files else (data, shard)
                if origin[key] is shard:
                    continue
            merged[key] = merge_file(key, merged[key], data, origin[key], shard)
            origin[key] = f"{origin[key]} (+ {shard})"
    return merged


# --- merge: writing --------------------------------------------------------------------------------

def write_atomic(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def merge(out, shard_paths):
    """Merge the shards into ``out``; return a one-line summary."""
    resolved = {Path(p).resolve() for p in shard_paths}
    if Path(out).resolve() in resolved:
        raise ShardError(f"{out} is also one of the shards: merge into another folder")
    if len(resolved) != len(shard_paths):
        raise ShardError("a shard folder is named twice")
    target = Folder(out, required=False)
    shards = [Folder(p) for p in shard_paths]
    files = plan(target, shards)
    bench = dict(target.benchmarks or {})
    for shard in shards:
        for name, entry in shard.benchmarks.items():
            bench.setdefault(name, entry)
    if bench != target.benchmarks:
        write_atomic(target.path / "benchmarks.json", json.dumps(bench, indent=4, sort_keys=True))
    for shard in shards:
        for machine, info in shard.machines.items():
            if machine not in target.machines:
                write_atomic(target.path / machine / "machine.json", json.dumps(info, indent=4, sort_keys=True))
                target.machines[machine] = info
    new = extended = 0
    for (machine, name), data in sorted(files.items()):
        if (machine, name) in target.files and same(data, load(target.files[(machine, name)])):
            continue  # every row it brought was there already
        new, extended = new + ((machine, name) not in target.files), extended + ((machine, name) in target.files)
        write_atomic(target.path / machine / name, json.dumps(data))
    return (f"merged {len(shards)} shard folder(s) into {out}: {new} new results file(s), {extended} extended, "
            f"{len(bench) - 1 if 'version' in bench else len(bench)} benchmarks")


# --- command line ----------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """Usage errors are bad input too: one line (``shards.py: error: ...``), exit 2."""

    def error(self, message):
        self.exit(2, f"shards.py: error: {message} (see --help)\n")


def build_parser():
    parser = _Parser(prog="python -m tools.shards", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("split", help="print the commits of shard K of N")
    p.add_argument("--shard", required=True, metavar="K/N", help="shard K of N (1-based)")
    p.add_argument("commits", metavar="COMMITS_FILE", help="full commit hashes, one a line")
    p = sub.add_parser("merge", help="merge shards' results folders into one results folder")
    p.add_argument("out", metavar="OUT_RESULTS", help="the results folder to merge into (created if missing)")
    p.add_argument("shards", nargs="+", metavar="SHARD_RESULTS", help="the shards' results folders")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.command == "split":
            k, n = parse_shard(args.shard)
            print("".join(f"{c}\n" for c in split(read_commits(args.commits), k, n)), end="")
        else:
            print(f"shards.py: {merge(args.out, args.shards)}")
    except ShardError as exc:
        print(f"shards.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

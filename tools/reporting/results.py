"""asv's results directory: machines, results files (schema v2), benchmarks.json, commits.

Results schema v2 (asv/results.py): each ``results[name]`` is a positional row
described by ``result_columns`` and cut after its last non-null column; the
``result`` column is a list in the Cartesian-product order of the ``params``
column (last parameter fastest), ``NaN`` = skipped (n/a), ``null`` = failed, a
whole ``null`` result = every combination failed.  Parameter values are repr
strings.

Why not ``asv.results.Results.load``: it raises AttributeError / TypeError (not
asv's UserError) on a ``results`` that is not an object, silently zips a row that
is an object, never checks that a row holds one value per parameter combination,
and re-reads the file, so validating what it returns would mean parsing twice.
The reader below is the one place that turns such files into one-line errors
naming the file.  Its JSON is plain ``json`` (``asv.util.load_json`` is the same
``json.loads`` with a message naming the absolute path, which we would rewrite).
"""

from __future__ import annotations

import datetime
import itertools
import json
import math
import os
import re
from dataclasses import dataclass

from asv.results import get_filename as asv_get_filename

from .commits import git_rev_parse
from .errors import ReportError
from .inputs import check_known, host_machine
from .metrics import is_num, metric_kind, param_display, split_name

RESULTS_SCHEMA = 2


@dataclass
class Row:
    """One benchmark's results in one result file."""

    name: str
    params: list  # list of lists of repr strings
    values: list  # one entry per combination (float, NaN or None)
    version: str | None
    stats: list | None = None  # per combination: asv's statistics {ci_99_a, ..., repeat} or None
    samples: list | None = None  # per combination: the raw samples (asv run --record-samples) or None

    def combos(self):
        return list(itertools.product(*self.params))


@dataclass
class ResultFile:
    path: str
    machine: str
    env_name: str
    commit_hash: str
    date: int | None
    python: str | None
    rows: dict  # name -> Row

    @property
    def short(self) -> str:
        return self.commit_hash[:8]

    @property
    def date_str(self) -> str:
        if not isinstance(self.date, (int, float)):
            return "?"
        dt = datetime.datetime.fromtimestamp(self.date / 1000, tz=datetime.timezone.utc)
        return dt.strftime("%Y-%m-%d %H:%M")


def load_json_file(path: str, what: str = "JSON file"):
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise ReportError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise ReportError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ReportError(f"corrupt {what} {path}: {exc}") from None


def _read_results_json(path: str) -> dict:
    d = load_json_file(path, "results file")
    if not isinstance(d, dict):
        raise ReportError(f"corrupt results file {path}: not a JSON object")
    version = d.get("version")
    if version != RESULTS_SCHEMA:
        raise ReportError(
            f"unsupported results file {path}: schema version {version!r} (expected 2; "
            "run `asv update`)"
        )
    return d


def _header(d: dict, path: str) -> tuple:
    """(result_columns, results, commit_hash, env_name, machine) of a results file."""
    try:
        columns = d["result_columns"]
        results = d["results"]
        commit_hash = d["commit_hash"]
        env_name = d["env_name"]
        machine = (d.get("params") or {}).get("machine")
    except KeyError as exc:
        raise ReportError(f"corrupt results file {path}: missing key {exc}") from None
    if not isinstance(columns, list) or not isinstance(results, dict) or not isinstance(commit_hash, str):
        raise ReportError(f"corrupt results file {path}: unexpected structure")
    if d.get("date") is not None and not is_num(d.get("date")):
        raise ReportError(f"corrupt results file {path}: bad date {d.get('date')!r}")
    if "result" not in columns:
        raise ReportError(f"corrupt results file {path}: no 'result' column")
    if machine is None:
        machine = os.path.basename(os.path.dirname(os.path.abspath(path)))
    return columns, results, commit_hash, env_name, machine


def _parse_row(name: str, raw, columns: list, path: str) -> Row:
    if not isinstance(raw, list):
        raise ReportError(f"corrupt results file {path}: row {name!r} is not a list")
    # rows are cut after their last non-null column: pad before zipping
    cols = dict(zip(columns, list(raw) + [None] * (len(columns) - len(raw)), strict=False))
    params = cols.get("params") or []
    if not isinstance(params, list) or not all(isinstance(p, list) for p in params):
        raise ReportError(f"corrupt results file {path}: bad params for {name!r}")
    n_comb = 1
    for p in params:
        n_comb *= len(p)
    result = cols.get("result")
    if result is None:
        values = [None] * n_comb  # everything failed (e.g. build failure)
    elif isinstance(result, list) and len(result) == n_comb:
        values = list(result)
    else:
        raise ReportError(
            f"corrupt results file {path}: {name!r} has {len(result) if isinstance(result, list) else 'no'}"
            f" results for {n_comb} parameter combinations"
        )
    if any(v is not None and not isinstance(v, (int, float)) for v in values):
        raise ReportError(f"corrupt results file {path}: non-numeric result for {name!r}")
    row = Row(name=name, params=params, values=values, version=cols.get("version"),
              stats=_parse_stats(name, cols, n_comb, path),
              samples=_per_combo(name, "samples", cols.get("samples"), n_comb, path,
                                 lambda v: v is None or (isinstance(v, list) and None not in v
                                                         and all(map(_is_stat, v)))))
    _check_values(row, path)
    return row


#: asv's statistics columns (asv/results.py Results.save writes ``stats_<key>``), for timing
#: benchmarks with several samples: numbers (NaN, +-Infinity for too few samples) or null.
STATS_KEYS = ("ci_99_a", "ci_99_b", "q_25", "q_75", "number", "repeat")


def _is_stat(v) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _per_combo(name: str, column: str, col, n_comb: int, path: str, ok=_is_stat) -> list:
    """One entry per parameter combination (a null column: None for each), else an error."""
    if col is None:
        return [None] * n_comb
    if not isinstance(col, list) or len(col) != n_comb or not all(ok(v) for v in col):
        raise ReportError(f"corrupt results file {path}: bad {column} column for {name!r}")
    return col


def _parse_stats(name: str, cols: dict, n_comb: int, path: str) -> list:
    """Per combination: {key: value} of the stats_* columns present (asv's stats dict), or None."""
    stats = [{} for _ in range(n_comb)]
    for key in STATS_KEYS:
        col = _per_combo(name, f"stats_{key}", cols.get(f"stats_{key}"), n_comb, path, _is_stat)
        for s, v in zip(stats, col, strict=False):
            if v is not None:
                s[key] = v
    return [s or None for s in stats]


#: What a measured value must be, by metric kind (values.metric_kind); NaN is n/a and
#: null is failed, both fine.  Any other kind (track_*) only has to be finite.
VALID_VALUES = {
    "time": (lambda v: v > 0, "a time must be a finite number > 0"),
    "throughput": (lambda v: v >= 0, "a throughput must be a finite number >= 0"),
    "memory": (lambda v: v >= 0, "a memory size must be a finite number >= 0"),
    "peakmem": (lambda v: v >= 0, "a memory size must be a finite number >= 0"),
}


def _check_values(row: Row, path: str):
    """Infinity anywhere, or a time <= 0, a negative throughput / memory: bad input, named."""
    check, rule = VALID_VALUES.get(metric_kind(split_name(row.name)[1]), (lambda v: True, "a result must be finite"))
    for combo, v in zip(row.combos(), row.values, strict=False):
        if is_num(v) and not (math.isfinite(v) and check(v)):
            where = f"({', '.join(param_display(p) for p in combo)})" if combo else ""
            raise ReportError(f"bad value in results file {path}: {row.name}{where} = {v!r} ({rule})")


def parse_result_file(path: str) -> ResultFile:
    d = _read_results_json(path)
    columns, results, commit_hash, env_name, machine = _header(d, path)
    rows = {name: _parse_row(name, raw, columns, path) for name, raw in results.items()}
    return ResultFile(path=path, machine=machine, env_name=str(env_name), commit_hash=commit_hash,
                      date=d.get("date"), python=d.get("python"), rows=rows)


def param_names(row: Row, benchmarks: dict) -> list:
    names = (benchmarks.get(row.name) or {}).get("param_names") or []
    if not isinstance(names, list) or len(names) != len(row.params) or not all(isinstance(n, str) for n in names):
        names = [f"param{i + 1}" for i in range(len(row.params))]
    return names


def load_benchmarks(results_dir: str, required: bool = True) -> dict | None:
    """benchmarks.json of a results directory: {name: metadata} (asv's Benchmarks.load
    needs a full asv Config and an environment; only the JSON is needed here)."""
    path = os.path.join(results_dir, "benchmarks.json")
    if not os.path.isfile(path):
        if required:
            raise ReportError(
                f"benchmarks.json missing in {results_dir} (run `asv run` or `asv run --bench just-discover`)"
            )
        return None
    d = load_json_file(path, "benchmarks.json")
    if not isinstance(d, dict):
        raise ReportError(f"corrupt benchmarks.json {path}: not a JSON object")
    return {k: v for k, v in d.items() if k != "version" and isinstance(v, dict)}


class ResultsDB:
    """The results directory: machines, their result files, benchmarks.json."""

    def __init__(self, results_dir: str, need_benchmarks: bool = True):
        self.results_dir = results_dir
        if not os.path.isdir(results_dir):
            raise ReportError(f"no results directory {results_dir} (run `asv run` first, or pass --results/--config)")
        dirs = [e for e in os.listdir(results_dir) if os.path.isdir(os.path.join(results_dir, e))]
        # a machine = a subdirectory with machine.json or result files
        self.machines = sorted(e for e in dirs if any(f.endswith(".json") for f in self._listing(e)))
        self.machines_with_results = [
            m for m in self.machines if any(f.endswith(".json") and f != "machine.json" for f in self._listing(m))
        ]
        if not self.machines_with_results:
            raise ReportError(f"no results in {results_dir}")
        self.benchmarks = load_benchmarks(results_dir, required=need_benchmarks)
        self._cache: dict = {}
        self.warnings: list[str] = []
        self.notes: list[str] = []  # what a default chose, said on stderr

    def _listing(self, machine: str) -> list:
        return os.listdir(os.path.join(self.results_dir, machine))

    def pick_machine(self, machine: str | None) -> str:
        if machine is None:
            if len(self.machines_with_results) == 1:
                return self.machines_with_results[0]
            host = host_machine()
            if host not in self.machines_with_results:
                raise ReportError(
                    f"results for several machines ({', '.join(self.machines_with_results)}), none of "
                    "them this host's (~/.asv-machine.json): pick one with --machine"
                )
            others = ", ".join(m for m in self.machines_with_results if m != host)
            self.notes.append(f"machine {host!r} (this host's, as asv picks it; also here: {others})")
            return host
        if machine not in self.machines:
            raise ReportError(
                f"no results for machine {machine!r} in {self.results_dir} "
                f"(machines: {', '.join(self.machines) or 'none'})"
            )
        return machine

    def files(self, machine: str) -> tuple[list[ResultFile], list[BadFile]]:
        """All readable result files of a machine, and the unreadable ones."""
        if machine in self._cache:
            return self._cache[machine]
        mdir = os.path.join(self.results_dir, machine)
        good, bad = [], []
        for fn in sorted(os.listdir(mdir)):
            if not fn.endswith(".json") or fn in ("machine.json", "benchmarks.json"):
                continue
            try:
                good.append(parse_result_file(os.path.join(mdir, fn)))
            except ReportError as exc:
                bad.append(BadFile.of(os.path.join(mdir, fn), str(exc)))
        if self.benchmarks is not None:
            check_known(good, self.benchmarks, self.results_dir)
        self._cache[machine] = (good, bad)
        return good, bad

    def select(self, machine: str, commit: str | None, env: str | None, repo: str | None) -> ResultFile:
        good, bad = self.files(machine)
        bad = [b for b in bad if b.matches_env(env)]
        cands = [f for f in good if env is None or f.env_name == env]
        if commit is None:
            # an unreadable file may well be the newest: never fall back to an older commit
            refuse_unreadable(bad, "it may hold the newest results: fix or remove it, or pick one with --commit")
        if env is not None and not cands and not bad:
            envs = sorted({f.env_name for f in good})
            raise ReportError(
                f"no results for environment {env!r} on machine {machine!r} (environments: {', '.join(envs) or 'none'})"
            )
        if commit is None:
            if not cands:
                raise ReportError(f"no results for machine {machine!r}")
            newest = max(cands, key=lambda f: (f.date or 0))
            cands = [f for f in cands if f.commit_hash == newest.commit_hash]
        else:
            if not good and not bad:
                raise ReportError(f"no results for machine {machine!r}")
            full = resolve_commit(commit, {f.commit_hash for f in cands}, repo, bad,
                                  where=f" on machine {machine!r}" + (f", environment {env!r}" if env else ""))
            cands = [f for f in cands if f.commit_hash == full]
        if len(cands) > 1:
            raise ReportError(
                f"commit {cands[0].short} has results for several environments "
                f"({', '.join(sorted(f.env_name for f in cands))}): pick one with --env"
            )
        return cands[0]


@dataclass
class BadFile:
    """A results file that could not be read (asv names them <hash8>-<env>.json)."""

    path: str
    hash8: str
    env_part: str
    error: str

    @classmethod
    def of(cls, path: str, error: str) -> "BadFile":
        stem = os.path.basename(path)[:-len(".json")]
        hash8, _, env_part = stem.partition("-")
        return cls(path=path, hash8=hash8.lower(), env_part=env_part, error=error)

    def matches_env(self, env: str | None) -> bool:
        # asv's own file naming (long environment names are hashed)
        return env is None or self.env_part == os.path.basename(asv_get_filename("m", "0" * 8, env))[9:-5]

    def matches_commit(self, spec: str, full: str | None) -> bool:
        """Could this file be the results of `spec` (a hash prefix) or of commit `full`?"""
        if full is not None and full[:8].lower() == self.hash8:
            return True
        spec = spec.lower()
        if not re.fullmatch(r"[0-9a-f]{4,40}", spec):
            return False
        return self.hash8.startswith(spec) if len(spec) <= 8 else spec.startswith(self.hash8)


def refuse_unreadable(bad: list, advice: str):
    """Bad input: an unreadable results file where a command would have read it."""
    if bad:
        more = f" (and {len(bad) - 1} more unreadable results file(s))" if len(bad) > 1 else ""
        raise ReportError(f"{bad[0].error}{more}; {advice}")


def resolve_commit(spec: str, hashes: set, repo: str | None, bad: list | None = None,
                   where: str = "") -> str:
    """Full hash or unique prefix of a commit with results; else a git name via `repo`.

    An unreadable results file that `spec` could also mean is an error naming it, even
    when a readable file matches: picking the readable one would hide the other."""
    spec_l = spec.lower()
    full = None
    if re.fullmatch(r"[0-9a-f]{1,3}", spec_l) and not (repo and git_rev_parse(repo, spec)):
        matches = sorted(h for h in hashes if h.lower().startswith(spec_l))
        if matches:  # as git: a prefix shorter than 4 characters is never taken
            raise ReportError(f"commit prefix {spec!r} is too short (at least 4 characters)"
                              + (f" and ambiguous: {', '.join(m[:12] for m in matches)}" if len(matches) > 1 else ""))
    if re.fullmatch(r"[0-9a-f]{4,40}", spec_l):
        matches = sorted(h for h in hashes if h.lower().startswith(spec_l))
        if len(matches) > 1:
            raise ReportError(
                f"commit prefix {spec!r} is ambiguous: {', '.join(m[:12] for m in matches)}"
            )
        full = matches[0] if matches else None
    if full is None and repo is not None:
        full = git_rev_parse(repo, spec)
    hit = [b for b in bad or [] if b.matches_commit(spec, full)]
    if hit:
        refuse_unreadable(hit, f"commit {spec!r} may mean it")
    if full is not None and full in hashes:
        return full
    raise ReportError(f"no results for commit {spec!r}{where}")

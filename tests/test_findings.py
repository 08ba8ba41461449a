"""The PRD's questions answered from the results (issue 12), the Phase 1 method benchmark and
the history's steps beyond the noise floor (issue 10 item 5).

Fixtures: ``tests/report_fixtures/prd`` (written by ``make_prd.py``: the suites' real class
names, six commits, the newest one with the full profile, a planted 2x step in file ingest and
noisy controls); ``tests/report_fixtures/crafted`` (no suite names: every finding says it was not
measured).  The Phase 1 method benchmark runs on the stand-in stac-manager.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from benchmarks import file_ingest
from benchmarks.lib import settings
from benchmarks.lib.checks import ResultMismatch
from benchmarks.lib.subject import ingest_module

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "report_fixtures"
sys.path.insert(0, str(FIXTURES))
from test_report import run_cli, strict_json  # noqa: E402

import make_prd  # noqa: E402
from tools.reporting import analyse, findings, level_shifts, results

N = 60
PRD = FIXTURES / "prd"
NEWEST = make_prd.COMMITS[-1][0]


@pytest.fixture
def prd(tmp_path):
    dst = tmp_path / "prd"
    shutil.copytree(PRD, dst)
    return dst


def report(results_dir, commit=None):
    return analyse.build_report(results.ResultsDB(str(results_dir)), commit=commit)


def by_key(rep):
    return {f["key"]: f for f in rep["findings"]}


# --- the fixture ------------------------------------------------------------------------------

def test_the_committed_fixture_is_what_make_prd_writes(tmp_path):
    make_prd.write(tmp_path / "prd")
    written = sorted(p.relative_to(tmp_path / "prd") for p in (tmp_path / "prd").rglob("*.json"))
    assert written == sorted(p.relative_to(PRD) for p in PRD.rglob("*.json"))
    for rel in written:
        assert (tmp_path / "prd" / rel).read_text() == (PRD / rel).read_text(), rel


# --- Phase 1 method: the benchmark ------------------------------------------------------------

def test_phase1_method_is_a_full_profile_directory_module():
    cls = file_ingest.Phase1Method
    assert issubclass(cls, file_ingest.DirectoryModule) and cls.source == "directory"
    assert cls.profile is None and vars(cls)["version"] == "1"
    assert cls.params == [settings.N_ITEMS, ["module"], [1], ["plain", "tracemalloc"]]
    assert cls.param_names == ["n_items", "strategy", "concurrency", "timing"]


@pytest.mark.parametrize("timing", ["plain", "tracemalloc"])
def test_phase1_method_on_the_standin(standin_at, timing):
    standin_at("c3_current")
    bench = file_ingest.Phase1Method()
    roots = bench.setup_cache()
    bench.setup(roots, N, "module", 1, timing)
    try:
        bench.time_run()
        assert bench.track_throughput() > 0 and bench.last_wall > 0
        assert not tracemalloc.is_tracing()
    finally:
        bench.teardown()


def test_phase1_method_is_na_where_the_directory_module_is(standin_at):
    standin_at("c2_old_context")
    bench = file_ingest.Phase1Method()
    with pytest.raises(NotImplementedError):
        bench.setup(bench.setup_cache(), N, "module", 1, "plain")


def _wrapped_module(monkeypatch, change):
    """Make the benchmark's IngestModule yield ``change(items)`` and record tracemalloc's state."""
    real_cls, fields = ingest_module()
    seen = {"tracing": []}

    class Wrapped:
        def __init__(self, config):
            seen["built_while_tracing"] = tracemalloc.is_tracing()
            self.inner = real_cls(config)

        async def fetch(self, context):
            items = [item async for item in self.inner.fetch(context)]
            for item in change(items):
                seen["tracing"].append(tracemalloc.is_tracing())
                yield item

    monkeypatch.setattr(file_ingest, "ingest_module", lambda: (Wrapped, fields))
    return seen


def test_phase1_method_traces_the_counting_loop_only(standin_at, monkeypatch):
    standin_at("c3_current")
    seen = _wrapped_module(monkeypatch, lambda items: items)
    bench = file_ingest.Phase1Method()
    roots = bench.setup_cache()
    for timing, tracing in (("tracemalloc", True), ("plain", False)):
        seen["tracing"].clear()
        bench.setup(roots, N, "module", 1, timing)
        try:
            bench.time_run()
        finally:
            bench.teardown()
        assert seen["tracing"] == [tracing] * N
        assert seen["built_while_tracing"] is False  # the module is built outside, as in Phase 1
        assert not tracemalloc.is_tracing()


@pytest.mark.parametrize("change,match", [(lambda items: items[:-1], "1 lost"),
                                          (lambda items: items + items[:1], "duplicated")])
def test_phase1_method_still_fails_on_a_lost_or_duplicated_item(standin_at, monkeypatch, change, match):
    standin_at("c3_current")
    bench = file_ingest.Phase1Method()
    roots = bench.setup_cache()
    bench.setup(roots, N, "module", 1, "tracemalloc")
    _wrapped_module(monkeypatch, change)
    try:
        with pytest.raises(ResultMismatch, match=match):
            bench.time_run()
        assert not tracemalloc.is_tracing()
    finally:
        bench.teardown()


# --- the findings on the full profile ---------------------------------------------------------

def test_every_question_is_answered_from_the_full_profile(prd):
    rep = report(prd)
    f = by_key(rep)
    assert list(f) == ["q1_time_shares", "q2_processes", "q3_workers", "q4_formats", "phase2", "phase1_method",
                       "faults"]
    assert all(x["measured"] for x in f.values()), [k for k, x in f.items() if not x["measured"]]
    # Q1: the stage shares of the module row, with and without checkpoints
    shares = {d["params"]["checkpoint"]: d["shares_pct"] for d in f["q1_time_shares"]["data"]["pipeline"]}
    assert shares == {str(k): v for k, v in make_prd.SHARES.items()}
    # Q2: best processes / best threads / loop, with their memory
    q2 = f["q2_processes"]["data"]["file_ingest.Directory"]
    best = {s: max((c for (st, c) in make_prd.FILE_HARNESS if st == s), key=lambda c: make_prd.FILE_HARNESS[(s, c)])
            for s in ("processes", "threads")}
    assert q2["processes"]["concurrency"] == best["processes"] and q2["threads"]["concurrency"] == best["threads"]
    assert q2["processes"]["throughput"] == make_prd.FILE_HARNESS[("processes", best["processes"])]
    assert q2["loop"]["memory_mb"] == make_prd.FILE_MEM["loop"]
    assert "processes beat the GIL" in f["q2_processes"]["text"]
    # Q3: the recommended-workers logic of each scenario, per latency and per fsync
    q3 = {(d["class"], tuple(sorted(d["params"].items()))): d["recommended"] for d in f["q3_workers"]["data"]["scenarios"]}
    for s in rep["scenarios"]:
        if s["benchmark_class"] in ("file_ingest.Directory", "api_ingest.Search", "output.ItemFiles"):
            assert q3[(s["benchmark_class"], tuple(sorted(s["params"].items())))] == s["recommended"]
    assert len(q3) == 5  # file; API at 0 and 50 ms; output with and without fsync
    # Q4: items/s per format, against stac-manager's JSON at its default buffer
    q4 = f["q4_formats"]["data"]
    assert q4["reference"] == pytest.approx(1850)
    assert {r["format"] for r in q4["rows"]} >= {"FeatureCollection (one file)", "NDJSON (one file)",
                                                 "Parquet (one file)", "stac-geoparquet (one file)"}


def test_phase2_phase1_and_faults_findings(prd):
    f = by_key(report(prd))
    (directory,) = f["phase2"]["data"]["scenarios"]
    for lv in directory["levels"]:
        c = lv["concurrency"]
        harness = {s: v for (s, cc), v in make_prd.FILE_HARNESS.items() if cc == c and not s.startswith("ceiling")}
        assert lv["best_harness"]["throughput"] == max(harness.values())
        assert lv["module_pct_of_harness"] == pytest.approx(100 * make_prd.FILE_MODULE[("module", c)]
                                                           / max(harness.values()))
    assert "`worker_strategy=queue` (`module_queue`) is faster at 2 of 2 levels" in f["phase2"]["text"]
    assert "`api_ingest.Search` (latency_ms=0; latency_ms=50)" in f["phase2"]["text"]  # n/a there: said so
    p1 = f["phase1_method"]["data"]
    assert (p1["suite"], p1["tracemalloc"]) == (make_prd.FILE_MODULE[("module", 1)], 1557)
    assert p1["ratio"] == pytest.approx(4169 / 1557)
    assert "2.7x slower" in f["phase1_method"]["text"] and "tracemalloc" in f["phase1_method"]["text"]
    runs = {(e["strategy"], e["concurrency"], e["fault"]): e for e in f["faults"]["data"]["runs"]}
    for fault in make_prd.FAULTS:
        assert runs[("module", 1, fault)]["delivered"] == 0.6 and runs[("module", 1, fault)]["outcome"] == "gave up"
        assert runs[("pystac_client", 1, fault)]["delivered"] == 1.0
    assert runs[("rustac", 1, "drop")]["delivered"] == 0.0 and runs[("rustac", 1, "429")]["outcome"] == "600 ms"
    assert ("module", 10, "429") not in runs  # n/a: no Phase 2 in API mode, not a run


def test_findings_follow_the_results_not_constants(prd):
    newest = next((prd / make_prd.MACHINE).glob(f"{NEWEST[:8]}-*.json"))
    data = json.loads(newest.read_text())
    combos = data["results"]["file_ingest.Directory.track_throughput"]
    names = [(s, c) for s in make_prd.FILE_H for c in make_prd.C]
    combos[0][names.index(("'processes'", "5"))] = 5000.0  # now slower than the best threads row
    newest.write_text(json.dumps(data))
    f = by_key(report(prd))
    assert f["q2_processes"]["data"]["ratio"] == pytest.approx(5000 / 6000)
    assert "processes lose to threads" in f["q2_processes"]["text"]


def test_history_profile_commit_says_what_is_not_measured(prd):
    f = by_key(report(prd, commit="33333333"))
    assert f["q1_time_shares"]["measured"] and "With checkpoint=True: not measured at this commit" \
        in f["q1_time_shares"]["text"]
    for key in ("q2_processes", "q3_workers", "phase1_method"):
        assert not f[key]["measured"] and findings.NOT_MEASURED in f[key]["text"]
    assert f["q4_formats"]["measured"] and "harness writers" in f["q4_formats"]["text"]
    assert not f["phase2"]["measured"] and f["phase2"]["text"].startswith("This commit has no Phase 2")


def test_findings_open_the_markdown_report(prd):
    from test_report import check_report_invariants

    md = run_cli("report", "--results", prd).stdout
    head, _, rest = md.partition("### Findings")
    assert head.startswith("## Benchmark report") and "\n### " not in head
    section = rest.split("\n### ", 1)[0]
    assert section.count(f"(commit `{NEWEST[:8]}`)") == 7 and "**Best Performance**" not in section
    # a fault run that gave up is a row with what it delivered, not an n/a footnote
    faults = md.split("### api_ingest.Faults — n_items=1000, fault=429")[1].split("\n### ")[0]
    assert any(line.startswith("| module ") and "0.600" in line for line in faults.splitlines())
    check_report_invariants(prd)


def test_no_suite_names_every_finding_is_not_measured():
    rep = report(FIXTURES / "crafted")
    assert not any(f["measured"] for f in rep["findings"])
    assert all(findings.NOT_MEASURED in f["text"] or "no Phase 2" in f["text"] for f in rep["findings"])


# --- history --steps ---------------------------------------------------------------------------

def _git(repo, *args, date=None):
    env = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date} if date else {}
    import os
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **env}).stdout.strip()


@pytest.fixture(scope="module")
def git_history(tmp_path_factory):
    """make_prd's six commits as a real git repository, and their results under its hashes."""
    root = tmp_path_factory.mktemp("steps")
    repo = root / "stac-manager"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "bench@example.invalid")
    _git(repo, "config", "user.name", "tests")
    commits = []
    for i, (_, date, subject) in enumerate(make_prd.COMMITS):
        (repo / "n.txt").write_text(str(i))
        _git(repo, "add", "n.txt")
        _git(repo, "commit", "-q", "-m", subject, date=f"@{date // 1000} +0000")
        commits.append((_git(repo, "rev-parse", "HEAD"), date, subject))
    return repo, make_prd.write(root / "results", commits), commits


def steps_json(*args):
    proc = run_cli("history", "--steps", *args, "--json", "-")
    assert proc.returncode == 0, proc.stderr
    return {s["suite"]: s for s in strict_json(proc.stdout)["suites"]}


def _moves(noise):
    return [max(b / a, a / b) for a, b in itertools.pairwise(noise)]


def test_steps_find_the_planted_2x_step_beyond_noisy_controls(git_history):
    repo, results_dir, commits = git_history
    suites = steps_json("--results", results_dir, "--repo", repo)
    assert set(suites) == {"file_ingest", "api_ingest", "output", "pipeline"}
    for name, s in suites.items():  # the noise floor is read off the controls
        # (read off n_items / time_run: the fixture rounds times and throughputs apart)
        assert s["noise_floor"] == pytest.approx(max(_moves(make_prd.CONTROL_NOISE[name])), rel=1e-3)
    file_steps = suites["file_ingest"]["steps"]
    assert [(st["commit"], st["subject"]) for st in file_steps] == [commits[3][:3:2], commits[5][:3:2]]
    assert all(st["series"] == "DirectoryModule (module × 1)" for st in file_steps)
    assert file_steps[0]["ratio"] == pytest.approx(0.5 * 0.98 / 1.03, rel=1e-3)
    # API: a 1.27x move, beyond the factor (1.1) but within the API controls' noise floor
    api = suites["api_ingest"]
    moved = [h["values"]["SearchModule (module × 1, latency_ms=0)"] for h in api["history"]]
    assert 1.1 < max(_moves(moved)) < api["noise_floor"] and api["steps"] == []
    assert all(s["steps"] == [] for name, s in suites.items() if name != "file_ingest")
    md = run_cli("history", "--steps", "file_ingest", "--results", results_dir, "--repo", repo).stdout
    assert "Ingest: validate every item with pystac" in md and "2.10x slower" in md


def test_steps_factor_and_missing_controls(git_history, tmp_path):
    _, results_dir, commits = git_history
    assert steps_json("file_ingest", "--results", results_dir, "--factor", "2.5")["file_ingest"]["steps"] == []
    # without the controls there is no noise floor: the factor alone, and the API's 1.27x is a step
    bare = tmp_path / "bare"
    shutil.copytree(results_dir, bare)
    for p in (bare / make_prd.MACHINE).glob("*-*.json"):
        data = json.loads(p.read_text())
        data["results"] = {k: v for k, v in data["results"].items() if ".Control." not in k}
        p.write_text(json.dumps(data))
    api = steps_json("api_ingest", "--results", bare)["api_ingest"]
    assert api["noise_floor"] is None and api["threshold"] == 1.1
    assert [st["commit"] for st in api["steps"]] == [commits[2][0]]
    assert "the factor (1.1) alone decides" in run_cli("history", "--steps", "--results", bare).stdout


@pytest.mark.parametrize("args,fragment", [
    ((), "history needs a benchmark"),
    (("--steps", "--where", "concurrency=1"), "--where does not apply to --steps"),
    (("file_ingest.Directory", "--factor", "2"), "--factor applies to --steps only"),
    (("--steps", "nosuch"), "no stac-manager throughput for suite 'nosuch'"),
    (("--steps", "--factor", "0.5"), "--factor must be a finite number > 1"),
])
def test_steps_usage_errors_are_one_line(args, fragment):
    from test_report import assert_one_line_error

    assert_one_line_error(run_cli("history", *args, "--results", PRD), fragment)


def test_steps_series_and_noise_floor_units():
    files = results.ResultsDB(str(PRD)).files(make_prd.MACHINE)[0]
    files.sort(key=lambda f: f.date)
    bench = results.ResultsDB(str(PRD)).benchmarks
    values = level_shifts.commit_values(files[-1], bench)
    # n_items / time_run (every profile has it), not track_throughput (a full-profile extra)
    assert values[("file_ingest", "subject", "Phase1Method (module × 1, timing=tracemalloc)")] == pytest.approx(1557, rel=1e-3)
    assert ("file_ingest", "control", "Control (loop × 1)") in values
    assert not any(label.startswith("Directory (") for _, _, label in values)  # harness rows are no series


def test_steps_a_move_the_controls_made_too_is_the_machine():
    """Subject and Control both 2x slower at one commit: no step; the subject alone: a step."""
    from types import SimpleNamespace

    files = [SimpleNamespace(commit_hash=f"{i:040x}", date=i, date_str=f"d{i}") for i in range(4)]
    key_s, key_c = ("file_ingest", "subject", "S"), ("file_ingest", "control", "C")
    per_file = [{key_s: 100.0, key_c: 50.0}, {key_s: 50.0, key_c: 25.0},   # both halve: the machine
                {key_s: 50.0, key_c: 25.0}, {key_s: 25.0, key_c: 25.0}]    # the subject alone halves
    found = level_shifts._series_steps(files, per_file, "file_ingest", "S", ["C"], 1.5, None)
    assert [(st["commit"], st["ratio"], st["control_ratio"], st["net_ratio"]) for st in found] == [
        (files[3].commit_hash, 0.5, 1.0, 0.5)]
    # with no control measured at that pair, the raw move decides
    bare = [{k: v for k, v in pf.items() if k != key_c} for pf in per_file]
    assert len(level_shifts._series_steps(files, bare, "file_ingest", "S", ["C"], 1.5, None)) == 2


def test_level_shifts_use_asvs_step_detection_net_of_the_controls():
    """A lasting 2x drop is one level shift; a single disturbed run is none; the controls' own
    shift over the same commits cancels it (the machine)."""
    from types import SimpleNamespace

    files = [SimpleNamespace(commit_hash=f"{i:040x}", date=i, date_str=f"d{i}") for i in range(16)]
    key_s, key_c = ("output", "subject", "S"), ("output", "control", "C")
    wobble = [1.0, 1.03, 0.98, 1.01, 0.99, 1.02, 0.97, 1.0] * 2
    level = [100.0] * 8 + [50.0] * 8
    per_file = [{key_s: lv * w, key_c: 40.0 * w2} for lv, w, w2 in zip(level, wobble, reversed(wobble), strict=True)]
    per_file[3][key_s] = 30.0  # one disturbed run: no lasting change
    found = level_shifts._series_shifts(files, per_file, "output", "S", ["C"], 1.1, None)
    assert [(sh["commit"], sh["commits_after"]) for sh in found] == [(files[8].commit_hash, 8)]
    assert found[0]["ratio"] == pytest.approx(0.5, rel=0.05) and found[0]["net_ratio"] == pytest.approx(0.5, rel=0.05)
    for i in range(8, 16):  # the control dropped with it: the machine, not stac-manager
        per_file[i][key_c] /= 2
    assert level_shifts._series_shifts(files, per_file, "output", "S", ["C"], 1.1, None) == []


def _with_counts(src, dst, commits, counts):
    """``src``'s results with ``track_instructions`` rows added: ``counts`` maps a row
    (``suite.Class``, its params' values) to one value per commit of ``commits`` (None: no count)."""
    shutil.copytree(src, dst)
    bench_path = dst / "benchmarks.json"
    bench = json.loads(bench_path.read_text())
    files = [next((dst / make_prd.MACHINE).glob(f"{commit[:8]}-*.json")) for commit, _, _ in commits]
    for (cls, params), values in counts.items():
        name, like = f"{cls}.track_instructions", bench[f"{cls}.time_run"]
        bench[name] = dict(like, name=name, type="track", unit="instructions/item")
        combos = list(itertools.product(*like["params"]))
        for path, value in zip(files, values, strict=True):
            data = json.loads(path.read_text())
            cells = [value if combo == params and value is not None else math.nan for combo in combos]
            data["results"][name] = [cells, like["params"], like["version"]]
            path.write_text(json.dumps(data))
    bench_path.write_text(json.dumps(bench))
    return dst


def test_steps_list_every_instruction_change_of_two_percent(git_history, tmp_path):
    """Instruction counts need no noise floor: each change of 2 % or more between consecutive
    commits with a count is listed with its commit and subject; 1.5 % is not; a control's own
    change is listed as a control's; the largest changes lead."""
    repo, results_dir, commits = git_history
    directory = ("file_ingest.DirectoryModule", ("1000", "'module'", "1"))
    control = ("file_ingest.Control", ("1000", "'loop'", "1"))
    search = ("api_ingest.SearchModule", ("1000", "'module'", "1", "0"))
    dst = _with_counts(results_dir, tmp_path / "results", commits, {
        # +3 % at the 2nd commit, +1.5 % at the 3rd (not listed), none at the 4th, -10 % at the 5th
        directory: [1_000_000, 1_030_000, 1_045_450, None, 940_905, 940_905],
        control: [800_000] * 5 + [824_000],  # the suite's own loop changed at the 6th: +3 %
        search: [3_000_000] * 6})
    proc = run_cli("history", "--steps", "--results", str(dst), "--repo", str(repo), "--json", "-")
    assert proc.returncode == 0, proc.stderr
    data = strict_json(proc.stdout)
    changes = data["instructions"]["file_ingest"]["changes"]
    assert [(c["commit"], c["series"], round(c["ratio"], 3), c["role"]) for c in changes] == [
        (commits[1][0], "DirectoryModule (module × 1)", 1.03, "subject"),
        (commits[4][0], "DirectoryModule (module × 1)", 0.9, "subject"),  # against the 3rd: the 4th has none
        (commits[5][0], "Control (loop × 1)", 1.03, "control")]
    assert data["instructions"]["api_ingest"]["changes"] == []
    assert [c["commit"] for c in data["largest_instruction_changes"]] == [commits[4][0], commits[1][0]]
    md = data["markdown"]
    assert "## Instruction counts: every change of 2 % or more" in md and commits[4][2] in md
    assert "0.900x (10.0 % fewer)" in md and "Control (loop × 1) (control)" in md
    assert "### api_ingest: instructions per item" in md and "the counts are flat" in md

"""Tests for tools/report.py: PRD reports, the regression gate and the history view.

Three sources of results:
- ``tests/report_fixtures/crafted``: hand-made asv v2 results with every edge case
  (NaN skipped, null failed, whole-benchmark failure, stale version, a benchmark no
  longer in benchmarks.json, rows truncated after their last non-null column,
  parameterless benchmarks, a class without ``concurrency`` and without throughput).
- a real ``asv run`` of a throwaway project in tmp_path (two commits, the second one
  slower and with a newly failing benchmark).
- the suite's own end-to-end asv run: tests/test_e2e.py calls the ``check_*``
  helpers below on its results directory.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CRAFTED = Path(__file__).resolve().parent / "report_fixtures" / "crafted"
BASE = "aaaa1111" + "0" * 32
HEAD = "bbbb2222" + "0" * 32

from conftest import tool
from tools.reporting import analyse, errors, gate, metrics, render, results, rules

# --------------------------------------------------------------------------------------
# Reusable helpers (work on any asv results directory)
# --------------------------------------------------------------------------------------

def run_cli(*args, cwd=None):
    """Run tools/report.py as a subprocess; return CompletedProcess."""
    return subprocess.run([*tool("report"), *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == errors.EXIT_ERROR, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr
    assert len(err.splitlines()) == 1, err
    assert err.startswith("report.py: error: ")
    for frag in fragments:
        assert frag in err, err
    assert proc.stdout == ""


def strict_json(text):
    """json.loads that rejects NaN/Infinity: the JSON we write must be standard."""
    def bad(c):
        raise ValueError(f"non-standard JSON constant {c}")
    return json.loads(text, parse_constant=bad)


def raw_cells(result_file):
    """Independent minimal reader of one asv v2 result file: {(name, combo): value}."""
    d = json.loads(Path(result_file).read_text())
    cols = d["result_columns"]
    out = {}
    for name, row in d["results"].items():
        row = row + [None] * (len(cols) - len(row))
        c = dict(zip(cols, row, strict=True))
        combos = list(itertools.product(*c["params"]))
        values = c["result"] if c["result"] is not None else [None] * len(combos)
        assert len(values) == len(combos)
        for combo, v in zip(combos, values, strict=True):
            out[(name, combo)] = (v, c["version"])
    return out


def _result_files(results_dir, machine=None):
    results_dir = Path(results_dir)
    machines = [machine] if machine else [p.name for p in results_dir.iterdir() if p.is_dir()]
    return [f for m in machines for f in sorted((results_dir / m).glob("*.json"))
            if f.name != "machine.json"]


FINDING_KEYS = ["q1_time_shares", "q2_processes", "q3_workers", "q4_formats", "phase2", "phase1_method", "faults"]


def check_report_invariants(results_dir, machine=None, env=None, tmp_path=None):
    """Report every commit in results_dir and check it against the raw files.

    Returns the list of report dicts.  Checks: exit 0, strict JSON, PRD header and a
    Best Performance line per scenario, the baseline has speedup 1, the best row is
    never failed / n/a / ceiling, statuses agree with the raw NaN / null cells, stale
    rows are left out, recommended workers <= best workers.
    """
    bench = json.loads((Path(results_dir) / "benchmarks.json").read_text())
    reports = []
    for f in _result_files(results_dir, machine):
        data = json.loads(f.read_text())
        if env is not None and data["env_name"] != env:
            continue
        m = data["params"]["machine"]
        args = ["report", "--results", results_dir, "--machine", m, "--commit", data["commit_hash"],
                "--env", data["env_name"], "--json", "-"]
        proc = run_cli(*args)
        assert proc.returncode == 0, proc.stderr
        rep = strict_json(proc.stdout)
        md = run_cli(*args[:-2]).stdout
        raw = raw_cells(f)
        stale = {name for (name, _), (_, ver) in raw.items()
                 if name in bench and ver != bench[name].get("version")}
        assert set(rep["stale_ignored"]) == stale
        assert set(rep["removed_ignored"]) == {name for name, _ in raw if name not in bench}
        header = "| Strategy | Concurrency | Time (s) | Throughput (items/s) | Memory (MB) | Speedup |"
        for s in rep["scenarios"]:
            assert f"### {s['title']}" in md
            assert s["benchmark_class"] in s["title"]
            assert all(r["strategy"] for r in s["rows"])
            for r in s["rows"]:
                assert r["time_s"]["status"] in ("ok", "n/a", "failed", "missing")
                if r["is_baseline"]:
                    assert r["speedup"] == pytest.approx(1.0)
                    assert not r["failed"]
            if s["best"] is not None:
                best = [r for r in s["rows"] if r["strategy"] == s["best"]["strategy"]
                        and r["concurrency"] == s["best"]["concurrency"]]
                assert len(best) == 1 and not best[0]["failed"] and not best[0]["is_ceiling"]
                assert best[0]["time_s"]["status"] in ("ok", "missing")
                if s["best"]["speedup"] is not None:
                    others = [r["speedup"] for r in s["rows"]
                              if r["speedup"] is not None and not r["is_ceiling"]]
                    assert s["best"]["speedup"] == pytest.approx(max(others))
            if s["recommended"] is not None:
                assert s["recommended"]["speedup"] >= 0.9 * s["best"]["speedup"] - 1e-9
                assert s["recommended"]["concurrency"] <= s["best"]["concurrency"]
            if s["verdict"]:
                assert s["verdict"] in {label for _, label in rules.VERDICT_BANDS}
        assert md.count("**Best Performance**") == len(rep["scenarios"])
        # the Findings open the report, each with its commit, answered or "not measured", never missing
        assert [f["key"] for f in rep["findings"]] == FINDING_KEYS and all(f["text"] for f in rep["findings"])
        assert md.index("### Findings") < min([md.index(f"### {s['title']}") for s in rep["scenarios"]] or [len(md)])
        assert md.count(f"(commit `{rep['commit'][:8]}`)") == len(FINDING_KEYS)
        assert md.replace(" ", "").count(header.replace(" ", "")) == len(rep["scenarios"])
        # every table row of a scenario agrees with the raw cell status
        for s in rep["scenarios"]:
            tname = s["benchmarks"].get("time")
            if not tname:
                continue
            # a scenario X holds the rows of class X and of XModule (stac-manager's rows)
            fulls = [f"{cls}.{tname}" for cls in (s["benchmark_class"], s["benchmark_class"] + "Module")
                     if f"{cls}.{tname}" in bench]
            assert fulls, s["title"]
            for r in s["rows"]:
                for (name, combo), (v, _) in raw.items():
                    if name not in fulls:
                        continue
                    pn = bench[name]["param_names"]
                    named = {k: metrics.param_display(p) for k, p in zip(pn, combo, strict=True)}
                    if named["strategy"] != r["strategy"]:
                        continue
                    if "concurrency" in named and metrics.param_value(combo[pn.index("concurrency")]) != r["concurrency"]:
                        continue
                    if any(named.get(k) != v2 for k, v2 in s["params"].items()):
                        continue
                    expected = "failed" if v is None else "n/a" if (isinstance(v, float) and math.isnan(v)) else "ok"
                    assert r["time_s"]["status"] == expected, (name, combo)
                    if expected == "ok":
                        assert r["time_s"]["value"] == pytest.approx(v)
        reports.append(rep)
    assert reports, f"no result files in {results_dir}"
    return reports


def check_gate_self_compare(results_dir, machine=None):
    """A result file against itself is refused (exit 2: nothing compared); against a copy
    under another commit hash, the gate passes with zero changes."""
    for f in _result_files(results_dir, machine):
        assert_one_line_error(run_cli("compare", f, f), "same results", "nothing was compared")
        with tempfile.TemporaryDirectory() as tmp:
            d = json.loads(Path(f).read_text())
            d["commit_hash"] = "f" * 40
            copy = Path(tmp) / f.parent.name / f"ffffffff-{f.name.split('-', 1)[1]}"
            copy.parent.mkdir()
            copy.write_text(json.dumps(d))
            proc = run_cli("compare", f, copy, "--json", "-")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        cmp = strict_json(proc.stdout)
        assert cmp["counts"]["regressed"] == cmp["counts"]["failed"] == cmp["counts"]["removed"] == 0
        assert cmp["counts"]["improved"] == 0 and not cmp["gate_failed"]


# --------------------------------------------------------------------------------------
# Crafted edge cases
# --------------------------------------------------------------------------------------

@pytest.fixture
def crafted(tmp_path):
    dst = tmp_path / "results"
    shutil.copytree(CRAFTED, dst)
    return dst


def scenario(rep, title):
    return next(s for s in rep["scenarios"] if s["title"] == title)


def row(s, strategy, conc):
    return next(r for r in s["rows"] if r["strategy"] == strategy and r["concurrency"] == conc)


def test_parse_truncated_nan_null_and_whole_failure():
    rf = results.parse_result_file(str(CRAFTED / "box" / "aaaa1111-existing-py3.12.json"))
    # track_mem row was cut right after 'version': values must still be read
    mem = rf.rows["ingest.Dir.track_mem"]
    assert mem.version == "v-mem" and mem.values[0] == 5.0
    assert metrics.cell_status(mem.values[1]) == "n/a"
    assert metrics.cell_status(mem.values[7]) == "failed"
    # whole-benchmark failure: result null, no params -> one failed combination
    broken = rf.rows["misc.time_broken"]
    assert broken.values == [None] and broken.combos() == [()]
    # parameterless benchmark: one value, no params
    assert rf.rows["misc.time_import"].values == [0.5]
    assert rf.commit_hash == BASE and rf.machine == "box"


def test_report_crafted_base(crafted):
    db = results.ResultsDB(str(crafted))
    rep = analyse.build_report(db, commit="aaaa")
    assert rep["commit"] == BASE
    ing = scenario(rep, "ingest.Dir — n_items=100")
    assert ing["baseline"]["strategy"] == "module" and ing["baseline"]["concurrency"] == 1
    # best: threads@10 (10/2.4 = 4.17x); processes@10 has a faster time (1.0 s) but its
    # throughput failed, so the row is failed and must not win
    assert (ing["best"]["strategy"], ing["best"]["concurrency"]) == ("threads", 10)
    assert ing["best"]["speedup"] == pytest.approx(10 / 2.4)
    assert ing["verdict"] == "I/O-bound"
    # 10/2.6 = 3.85 >= 0.9 * 4.17 -> 5 workers are enough
    assert ing["recommended"]["concurrency"] == 5
    assert row(ing, "processes", 10)["failed"] and row(ing, "processes", 10)["speedup"] is None
    assert row(ing, "module", 5)["time_s"]["status"] == "n/a"
    assert row(ing, "processes", 5)["time_s"]["status"] == "failed"
    # % of ceiling: best ceiling throughput is 111 items/s
    assert row(ing, "threads", 10)["pct_of_ceiling"] == pytest.approx(100 * 41.7 / 111)
    assert row(ing, "ceiling_read", 10)["pct_of_ceiling"] is None
    assert ing["ceiling"]["concurrency"] == 10
    # track_mem (MB) is the memory column; track_share_ingest is carried as an extra
    assert row(ing, "threads", 5)["memory_mb"]["value"] == 7.5
    assert row(ing, "threads", 5)["extras"]["track_share_ingest"]["value"] == 45.0
    assert row(ing, "threads", 5)["extras"]["track_share_ingest"]["unit"] == "%"
    # no concurrency param, no throughput benchmark, peakmem fallback, 'loop' baseline
    pj = scenario(rep, "pipeline.Run — n_items=50, fmt=json")
    assert pj["baseline"]["strategy"] == "loop"
    assert row(pj, "threads", 1)["throughput_items_s"] == {"value": 50.0, "status": "ok", "derived": True}
    assert row(pj, "loop", 1)["memory_mb"]["value"] == pytest.approx(50.0)
    assert pj["verdict"] is None and pj["concurrency_gain"] is None  # nothing ran concurrently
    pq = scenario(rep, "pipeline.Run — n_items=50, fmt=parquet")
    assert pq["best"]["speedup"] == pytest.approx(4 / 3.5) and pq["verdict"] is None
    # stale (version changed) and removed (no longer in benchmarks.json) rows are ignored, each said apart
    assert rep["stale_ignored"] == ["ingest.Dir.time_old", "misc.track_count"]
    assert rep["removed_ignored"] == ["ingest.Dir.time_removed"]
    names = {o["benchmark"]: o for o in rep["other_benchmarks"]}
    assert set(names) == {"misc.time_import", "misc.time_broken"}
    assert names["misc.time_broken"]["status"] == "failed"


def test_report_markdown_prd_format(crafted):
    proc = run_cli("--results", crafted, "--commit", "aaaa1111")
    assert proc.returncode == 0, proc.stderr
    md = proc.stdout
    assert "### ingest.Dir — n_items=100" in md
    lines = md.splitlines()
    hdr = next(line for line in lines if line.startswith("| Strategy"))
    cols = [c.strip() for c in hdr.strip("|").split("|")]
    assert cols[:6] == ["Strategy", "Concurrency", "Time (s)", "Throughput (items/s)", "Memory (MB)", "Speedup"]
    assert "% of ceiling" in cols and "share_ingest (%)" in cols
    mod = next(line for line in lines if line.startswith("| module ") and "| 1 " in line)
    assert "baseline" in mod
    assert "**Best Performance**: 10 workers with 4.2x speedup (`threads`)" in md
    assert "**Verdict**: I/O-bound" in md and "**Recommended workers**: 5" in md
    assert "**Best Performance**: 1 worker with 2.0x speedup (`threads`)" in md
    proc_rows = [line for line in lines if line.startswith("| processes")]
    assert "failed" in proc_rows[1]
    # rows that are n/a throughout are listed under the table, not drawn as rows
    assert not any(line.startswith("| module ") and "| 5 " in line for line in lines)
    assert "not shown: module at 5" in md
    assert "_Ignored 2 stale result(s) whose benchmark version no longer matches benchmarks.json: " \
        "ingest.Dir.time_old, misc.track_count._" in md
    assert "_Ignored 1 result(s) of benchmarks no longer in benchmarks.json (removed from the suite): " \
        "ingest.Dir.time_removed._" in md


def test_report_default_is_newest_and_outputs_files(crafted, tmp_path):
    out, js = tmp_path / "r.md", tmp_path / "r.json"
    proc = run_cli("report", "--results", crafted, "--output", out, "--json", js)
    assert proc.returncode == 0 and proc.stdout == ""
    data = strict_json(js.read_text())
    assert data["commit"] == HEAD  # newest by date
    assert out.read_text().startswith("## Benchmark report — commit `bbbb2222`")
    ing = scenario(data, "ingest.Dir — n_items=100")
    # in head processes@1 failed; module@1 memory became n/a but the row is still baseline
    assert row(ing, "processes", 1)["failed"]
    assert ing["baseline"]["strategy"] == "module"
    assert row(ing, "module", 1)["memory_mb"]["status"] == "n/a"


def test_baseline_falls_back_when_module_failed(crafted):
    p = crafted / "box" / "aaaa1111-existing-py3.12.json"
    d = json.loads(p.read_text())
    d["results"]["ingest.Dir.time_run"][0][0] = None  # module@1 failed
    d["results"]["ingest.Dir.track_throughput"][0][0] = None
    p.write_text(json.dumps(d))
    rep = analyse.build_report(results.ResultsDB(str(crafted)), commit="aaaa")
    ing = scenario(rep, "ingest.Dir — n_items=100")
    # no module/loop/sequential: first concurrency-1 row with a number
    assert (ing["baseline"]["strategy"], ing["baseline"]["concurrency"]) == ("threads", 1)
    assert row(ing, "module", 1)["speedup"] is None


def test_single_row_scenario_has_no_verdict(crafted):
    bench = json.loads((crafted / "benchmarks.json").read_text())
    params = [["'module'"], ["1"], ["8", "64"]]
    bench["output.ModuleJson.time_run"] = {"name": "output.ModuleJson.time_run", "params": params,
                                           "param_names": ["strategy", "concurrency", "buffer_size"],
                                           "type": "time", "unit": "seconds", "version": "v-mj"}
    (crafted / "benchmarks.json").write_text(json.dumps(bench))
    p = crafted / "box" / "aaaa1111-existing-py3.12.json"
    d = json.loads(p.read_text())
    d["results"]["output.ModuleJson.time_run"] = [[0.5, 0.25], params, "v-mj"]
    p.write_text(json.dumps(d))
    rep = analyse.build_report(results.ResultsDB(str(crafted)), commit="aaaa")
    s8 = scenario(rep, "output.ModuleJson — buffer_size=8")
    assert s8["baseline"]["strategy"] == "module" and s8["best"]["speedup"] == 1.0
    assert s8["verdict"] is None and s8["recommended"] is None
    assert scenario(rep, "output.ModuleJson — buffer_size=64")["best"]["time"] == 0.25
    md = render.render_report(rep)
    block = md.split("### output.ModuleJson — buffer_size=8")[1].split("###")[0]
    assert "**Best Performance**: 1 worker with 1.0x speedup (`module`)" in block
    assert "**Verdict**" not in block


def _add_benchmark(crafted, name, param_names, params, values, commit="aaaa1111", unit="seconds"):
    """Add a benchmark to benchmarks.json and its row to one crafted results file."""
    bench = json.loads((crafted / "benchmarks.json").read_text())
    bench[name] = {"name": name, "params": params, "param_names": param_names, "unit": unit,
                   "type": "time" if unit == "seconds" else "track", "version": f"v-{name}"}
    (crafted / "benchmarks.json").write_text(json.dumps(bench))
    p = next((crafted / "box").glob(f"{commit}-*.json"))
    d = json.loads(p.read_text())
    d["results"][name] = [values, params, f"v-{name}"]
    p.write_text(json.dumps(d))


def test_module_class_joins_its_harness_scenario_and_control_stands_alone(crafted):
    # the suites' layout: stac-manager's rows in XModule, harness rows and ceilings in X,
    # the suite's noise floor in Control
    names = ["n_items", "strategy", "concurrency"]
    _add_benchmark(crafted, "api.SearchModule.time_run", names,
                   [["10"], ["'module'"], ["1", "4"]], [8.0, 2.0])
    _add_benchmark(crafted, "api.Search.time_run", names,
                   [["10"], ["'aiohttp_sequential'", "'aiohttp_offset'", "'ceiling_fetch'"], ["1", "4"]],
                   [4.0, float("nan"), float("nan"), 1.0, 0.5, 0.25])
    _add_benchmark(crafted, "api.Control.time_run", names, [["10"], ["'loop'"], ["1"]], [3.0])
    rep = analyse.build_report(results.ResultsDB(str(crafted)), commit="aaaa")
    titles = [s["title"] for s in rep["scenarios"]]
    assert "api.Search — n_items=10" in titles and "api.Control — n_items=10" in titles
    assert not any("SearchModule" in t for t in titles)
    s = scenario(rep, "api.Search — n_items=10")
    assert s["benchmark_class"] == "api.Search"
    # stac-manager's rows first, harness rows, ceilings last; module@1 is the baseline
    assert [(r["strategy"], r["concurrency"]) for r in s["rows"]] == [
        ("module", 1), ("module", 4), ("aiohttp_sequential", 1), ("aiohttp_sequential", 4),
        ("aiohttp_offset", 1), ("aiohttp_offset", 4), ("ceiling_fetch", 1), ("ceiling_fetch", 4)]
    assert s["baseline"]["strategy"] == "module"
    assert row(s, "aiohttp_offset", 4)["speedup"] == pytest.approx(8.0 / 1.0)
    assert s["ceiling"]["strategy"] == "ceiling_fetch" and s["best"]["strategy"] == "aiohttp_offset"
    c = scenario(rep, "api.Control — n_items=10")
    assert [r["strategy"] for r in c["rows"]] == ["loop"] and c["baseline"]["strategy"] == "loop"
    md = render.render_report(rep)
    block = md.split("### api.Search — n_items=10")[1].split("###")[0]
    assert "| module " in block and "| aiohttp_offset " in block
    # history of the scenario (named either way) has both classes' rows
    for target in ("api.Search", "api.SearchModule"):
        proc = run_cli("history", target, "--results", crafted, "--json", "-")
        assert proc.returncode == 0, proc.stderr
        (entry,) = strict_json(proc.stdout)["rows"]
        assert {r["strategy"] for r in entry["scenario"]["rows"]} >= {"module", "aiohttp_offset"}
    check_report_invariants(crafted)


def test_strategy_kinds_from_the_table_or_the_old_name_rules(monkeypatch):
    table = rules.load_strategy_table()
    assert table is not None and table.__file__.endswith(os.path.join("benchmarks", "lib", "strategies.py"))
    info = rules.strategy_info
    assert info("module").kind == "subject" and info("module").baseline_rank == 0
    assert info("concurrent_ingest").kind == "hybrid"
    assert info("pystac_client") == ("harness", True, 1)  # sequential harness: baseline after module
    assert info("threads") == ("harness", False, None)
    assert info("ceiling_server").kind == "ceiling"
    # without the table: the names the report always knew
    monkeypatch.setattr(rules, "load_strategy_table", lambda: None)
    assert info("module") == ("subject", False, 0) and info("module_queue").kind == "subject"
    assert info("loop") == ("harness", True, 1) and info("sequential") == ("harness", True, 1)
    assert info("ceiling_read").kind == "ceiling" and info("threads") == ("harness", False, None)
    assert info("pystac_client") == ("harness", False, None)
    assert analyse.scenario_class("file_ingest.DirectoryModule") == "file_ingest.Directory"
    assert analyse.scenario_class("file_ingest.Control") == "file_ingest.Control"
    assert analyse.scenario_class("output.ModuleJson") == "output.ModuleJson"
    assert analyse.scenario_class("m.Module") == "m.Module"


def test_gate_crafted(crafted):
    proc = run_cli("compare", "aaaa", "bbbb", "--results", crafted, "--json", "-")
    assert proc.returncode == errors.EXIT_REGRESSION, proc.stderr
    cmp = strict_json(proc.stdout)
    by = {}
    for e in cmp["entries"]:
        by.setdefault(e["category"], []).append((e["benchmark"], e["params"]))
    t5 = "strategy=threads, concurrency=5, n_items=100"
    p1 = "strategy=processes, concurrency=1, n_items=100"
    # threads is a harness strategy: its slowdown is the machine's (a control), not a regression
    assert "regressed" not in by
    assert sorted(by["control"]) == [("ingest.Dir.time_run", t5), ("ingest.Dir.track_throughput", t5)]
    assert {e["role"] for e in cmp["entries"] if e["benchmark"] == "misc.time_import"} == {"subject"}
    assert cmp["drift"]["throughput"]["drift"] == pytest.approx(38.5 / 28)
    assert cmp["drift"]["time"]["worst"]["params"] == t5
    assert sorted(by["failed"]) == [("ingest.Dir.time_run", p1),
                                     ("ingest.Dir.track_mem", "strategy=module, concurrency=1, n_items=100"),
                                     ("ingest.Dir.track_throughput", p1)]
    assert by["improved"] == [("misc.time_import", "")]
    assert by["incomparable"] == [("misc.track_count", "")]
    assert ("misc.time_broken", "") in by["not_measured"]
    # failed vs became n/a are told apart
    statuses = {(e["benchmark"], e["after_status"]) for e in cmp["entries"] if e["category"] == "failed"}
    assert ("ingest.Dir.track_mem", "n/a") in statuses and ("ingest.Dir.time_run", "failed") in statuses
    # throughput direction: a drop is a regression, time: a rise
    tp = next(e for e in cmp["entries"] if e["benchmark"] == "ingest.Dir.track_throughput" and e["params"] == t5)
    assert tp["better"] == "higher" and tp["ratio"] == pytest.approx(28 / 38.5)


def test_gate_markdown_and_thresholds(crafted):
    md = run_cli("compare", "aaaa1111", "bbbb2222", "--results", crafted).stdout
    assert "**Gate: FAILED** — 3 failed / became n/a." in md
    assert "### Control rows that moved (not gated" in md and "### Failed / became n/a" in md
    assert "### Regressions" not in md and "<details><summary>Unchanged" in md
    assert "| throughput | 6 " in md and "1.38x worse" in md
    md2 = run_cli("compare", "aaaa1111", "bbbb2222", "--results", crafted, "--only-changed").stdout
    assert "<details>" not in md2 and "### Improvements" in md2
    # a factor above 1.375 (time 2.6 -> 3.5, throughput 38.5 -> 28): the controls did not move
    cmp = strict_json(run_cli("compare", "aaaa", "bbbb", "--results", crafted, "--factor", "1.4",
                              "--json", "-").stdout)
    assert cmp["counts"]["control"] == 0 and cmp["counts"]["failed"] == 3 and cmp["gate_failed"]
    # reversed direction: failures become "now measured"; a subject row got slower
    rev = run_cli("compare", "bbbb", "aaaa", "--results", crafted, "--json", "-")
    cmp = strict_json(rev.stdout)
    assert rev.returncode == 1  # misc.time_import got slower 0.3 -> 0.5
    assert cmp["counts"]["control"] == 2 and cmp["counts"]["fixed"] == 3
    assert [e["benchmark"] for e in cmp["entries"] if e["category"] == "regressed"] == ["misc.time_import"]


def test_gate_passes_and_allow_na(crafted):
    p = crafted / "box" / "bbbb2222-existing-py3.12.json"
    d = json.loads(p.read_text())
    r = d["results"]
    r["ingest.Dir.time_run"][0][4] = 2.6   # undo the slowdown
    r["ingest.Dir.track_throughput"][0][4] = 38.5
    r["ingest.Dir.time_run"][0][6] = 11.0  # undo the failure
    r["ingest.Dir.track_throughput"][0][6] = 9.1
    r["misc.time_import"][0][0] = 0.5
    p.write_text(json.dumps(d))
    proc = run_cli("compare", "aaaa", "bbbb", "--results", crafted)
    assert proc.returncode == 1 and "1 failed / became n/a" in proc.stdout  # track_mem became n/a
    proc = run_cli("compare", "aaaa", "bbbb", "--results", crafted, "--allow-na")
    assert proc.returncode == 0, proc.stdout
    assert "**Gate: passed**" in proc.stdout


def test_gate_on_result_files(crafted):
    a = crafted / "box" / "aaaa1111-existing-py3.12.json"
    b = crafted / "box" / "bbbb2222-existing-py3.12.json"
    proc = run_cli("compare", a, b, "--only-changed")
    assert proc.returncode == 1
    assert "`ingest.Dir.time_run`" in proc.stdout
    check_gate_self_compare(crafted)


def test_history_benchmark_and_scenario(crafted):
    proc = run_cli("history", "ingest.Dir.time_run", "--results", crafted,
                   "-w", "strategy=threads", "-w", "concurrency=5", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    h = strict_json(proc.stdout)
    assert [r["commit"] for r in h["rows"]] == [BASE, HEAD]
    vals = [list(r["values"].values())[0]["value"] for r in h["rows"]]
    assert vals == [2.6, 3.5]
    md = run_cli("history", "ingest.Dir.time_run", "--results", crafted, "-w", "concurrency=5").stdout
    lines = [line for line in md.splitlines() if line.startswith("| `")]
    assert lines[0].startswith("| `aaaa1111`") and lines[1].startswith("| `bbbb2222`")
    assert "strategy=threads" in md and "concurrency=5, n_items=100" in md
    md = run_cli("history", "pipeline.Run", "--results", crafted, "-w", "fmt=json").stdout
    rows = [line for line in md.splitlines() if line.startswith("| `")]
    assert len(rows) == 2 and "fmt=parquet" not in md
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[2:] == ["n_items=50, fmt=json", "threads × 1", "2.0x", "50.0", "n/a", "1"]


def test_config_with_comments(crafted, tmp_path):
    conf = tmp_path / "asv.conf.json"
    conf.write_text(textwrap.dedent("""\
        {
            // comment, like the suite's asv.conf.json
            "version": 1,
            "project": "x", /* block */
            "repo": "https://example.invalid/x.git",
            "results_dir": "results",
        }
    """))
    proc = run_cli("--config", conf, "--commit", "aaaa")
    assert proc.returncode == 0, proc.stderr
    # and from the working directory, without --config
    proc = run_cli("--commit", "bbbb", cwd=tmp_path)
    assert proc.returncode == 0 and "`bbbb2222`" in proc.stdout


def test_invariants_on_crafted(crafted):
    reps = check_report_invariants(crafted)
    assert len(reps) == 2


# ---- bad input: one line, exit 2, never a traceback ---------------------------------

def test_error_no_results_dir(tmp_path):
    assert_one_line_error(run_cli("--results", tmp_path / "nope"), "no results directory")


def test_error_empty_results_dir(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run_cli("--results", tmp_path / "empty"), "no results in")
    assert_one_line_error(run_cli("compare", "a", "b", "--results", tmp_path / "empty"), "no results in")


def test_error_unknown_commit_and_machine(crafted):
    assert_one_line_error(run_cli("--results", crafted, "--commit", "deadbeef"), "no results for commit 'deadbeef'")
    assert_one_line_error(run_cli("compare", "aaaa", "cafe", "--results", crafted), "'cafe'")
    assert_one_line_error(run_cli("--results", crafted, "--machine", "nope"), "no results for machine 'nope'")
    assert_one_line_error(run_cli("--results", crafted, "--env", "conda-py3.9"), "conda-py3.9")
    assert_one_line_error(run_cli("history", "nope.Nope", "--results", crafted), "unknown benchmark")


def test_error_ambiguous_prefix(crafted):
    src = crafted / "box" / "aaaa1111-existing-py3.12.json"
    d = json.loads(src.read_text())
    d["commit_hash"] = "aaaa1112" + "0" * 32
    (crafted / "box" / "aaaa1112-existing-py3.12.json").write_text(json.dumps(d))
    assert_one_line_error(run_cli("--results", crafted, "--commit", "aaaa"), "ambiguous")
    assert run_cli("--results", crafted, "--commit", "aaaa1112").returncode == 0


def test_error_corrupt_json(crafted):
    bad = crafted / "box" / "bbbb2222-existing-py3.12.json"
    bad.write_text(bad.read_text()[:500])
    # the corrupt file is asked for: error naming it
    assert_one_line_error(run_cli("--results", crafted, "--commit", "bbbb"), "corrupt results file", "bbbb2222")
    assert_one_line_error(run_cli("compare", "aaaa", "bbbb", "--results", crafted), "corrupt")
    assert_one_line_error(run_cli("compare", crafted / "box" / "aaaa1111-existing-py3.12.json", bad), "corrupt")
    # not asked for: an unreadable file may hold the newest results, never fall back
    # to an older commit (issue 11); a commit that is not it still reports
    assert_one_line_error(run_cli("--results", crafted), "corrupt results file", "bbbb2222", "--commit")
    assert run_cli("--results", crafted, "--commit", "aaaa").returncode == 0
    (crafted / "box" / "aaaa1111-existing-py3.12.json").write_text("{not json")
    assert_one_line_error(run_cli("--results", crafted), "corrupt results file", "1 more unreadable")


def test_error_corrupt_benchmarks_json_and_config(crafted, tmp_path):
    (crafted / "benchmarks.json").write_text("[1, 2")
    assert_one_line_error(run_cli("--results", crafted), "corrupt benchmarks.json")
    (crafted / "benchmarks.json").unlink()
    assert_one_line_error(run_cli("--results", crafted), "benchmarks.json missing")
    conf = tmp_path / "asv.conf.json"
    conf.write_text("{ broken")
    assert_one_line_error(run_cli("--config", conf), "corrupt asv config")


def test_error_malformed_rows(crafted):
    p = crafted / "box" / "aaaa1111-existing-py3.12.json"
    d = json.loads(p.read_text())
    d["results"]["ingest.Dir.time_run"][0] = [1.0, 2.0]  # 2 values for 12 combinations
    p.write_text(json.dumps(d))
    assert_one_line_error(run_cli("--results", crafted, "--commit", "aaaa"), "2 results for 12")
    d["version"] = 1
    p.write_text(json.dumps(d))
    assert_one_line_error(run_cli("--results", crafted, "--commit", "aaaa"), "schema version 1")
    del d["version"], d["results"]
    d["version"] = 2
    p.write_text(json.dumps(d))
    assert_one_line_error(run_cli("--results", crafted, "--commit", "aaaa"), "missing key 'results'")


def test_error_machine_without_results(crafted):
    (crafted / "newbox").mkdir()
    (crafted / "newbox" / "machine.json").write_text('{"machine": "newbox", "version": 1}')
    # the default still picks the only machine that has results
    assert run_cli("--results", crafted).returncode == 0
    assert_one_line_error(run_cli("--results", crafted, "--machine", "newbox"), "no results for machine 'newbox'")
    assert_one_line_error(run_cli("compare", "aaaa", "bbbb", "--results", crafted, "--machine", "newbox"),
                          "newbox")
    shutil.copytree(crafted / "box", crafted / "otherbox")
    assert_one_line_error(run_cli("--results", crafted), "several machines", "--machine")


@pytest.mark.parametrize("mutate", [
    lambda d: d.update(results=[]),
    lambda d: d.update(result_columns=["params", "version"]),
    lambda d: d.update(commit_hash=None),
    lambda d: d["results"].update({"misc.time_import": {"result": 1}}),
    lambda d: d["results"]["ingest.Dir.time_run"].__setitem__(1, "oops"),
    lambda d: d["results"]["misc.time_import"].__setitem__(0, ["x"]),
    lambda d: d.update(date="yesterday"),
    lambda d: d["results"]["ingest.Dir.time_run"].__setitem__(0, 3.0),
], ids=["results-list", "no-result-column", "commit-null", "row-dict", "params-str", "value-str",
        "date-str", "result-scalar"])
def test_malformed_structure_never_tracebacks(crafted, mutate):
    p = crafted / "box" / "aaaa1111-existing-py3.12.json"
    d = json.loads(p.read_text())
    mutate(d)
    p.write_text(json.dumps(d))
    for args in (("--commit", "aaaa"), ("compare", "aaaa", "bbbb"), ("history", "ingest.Dir")):
        args = (args[0], "--results", crafted, *args[1:]) if args[0] in ("compare", "history") else \
            ("--results", crafted, *args)
        proc = run_cli(*args)
        # the README promises exit 2 for a corrupt results file wherever a command reads it
        assert proc.returncode == 2, (args, proc.returncode, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_peakmem_fallback_and_track_mem_precedence(crafted):
    bench = json.loads((crafted / "benchmarks.json").read_text())
    meta = dict(bench["pipeline.Run.peakmem_run"], name="ingest.Dir.peakmem_run",
                params=bench["ingest.Dir.time_run"]["params"],
                param_names=bench["ingest.Dir.time_run"]["param_names"], version="v-ipeak")
    bench["ingest.Dir.peakmem_run"] = meta
    (crafted / "benchmarks.json").write_text(json.dumps(bench))
    p = crafted / "box" / "aaaa1111-existing-py3.12.json"
    d = json.loads(p.read_text())
    d["results"]["ingest.Dir.peakmem_run"] = [[123e6] * 12, meta["params"], "v-ipeak"]
    p.write_text(json.dumps(d))
    rep = analyse.build_report(results.ResultsDB(str(crafted)), commit="aaaa")
    ing = scenario(rep, "ingest.Dir — n_items=100")
    assert ing["benchmarks"]["memory"] == "track_mem"
    assert row(ing, "threads", 5)["memory_mb"]["value"] == 7.5
    assert row(ing, "threads", 5)["extras"]["peakmem_run"]["value"] == 123e6
    md = render.render_report(rep)
    assert "peakmem_run" not in md
    # without track_mem, peakmem (bytes) becomes the Memory (MB) column
    del d["results"]["ingest.Dir.track_mem"]
    p.write_text(json.dumps(d))
    rep = analyse.build_report(results.ResultsDB(str(crafted)), commit="aaaa")
    ing = scenario(rep, "ingest.Dir — n_items=100")
    assert row(ing, "threads", 5)["memory_mb"]["value"] == pytest.approx(123.0)


def test_error_bad_factor_and_where(crafted):
    assert_one_line_error(run_cli("compare", "aaaa", "bbbb", "--results", crafted, "--factor", "0.5"), "--factor")
    # NaN compares false with everything: it used to pass a 3x regression with exit 0
    for bad in ("nan", "NaN", "inf", "-inf", "1e400", "1", "1.0", "0", "-2", "abc", ""):
        assert_one_line_error(run_cli("compare", "aaaa", "bbbb", "--results", crafted, f"--factor={bad}"),
                              "--factor must be a finite number > 1", repr(bad) if bad in ("abc", "") else "got")
    assert run_cli("compare", "aaaa", "bbbb", "--results", crafted, "--factor", "1.01").returncode == 1
    # usage errors are bad input too: one line, exit 2
    assert_one_line_error(run_cli("compare", "aaaa", "bbbb", "--results", crafted, "--factor", "-inf"), "--factor")
    assert_one_line_error(run_cli("compare", "aaaa", "--results", crafted), "required")
    assert_one_line_error(run_cli("history", "ingest.Dir.time_run", "--results", crafted, "-w", "x"), "--where")
    assert_one_line_error(run_cli("history", "ingest.Dir.time_run", "--results", crafted, "-w", "strategy=zzz"),
                          "--where")
    assert_one_line_error(run_cli("history", "ingest.Dir", "--results", crafted, "--branch", "main"), "--branch")



# ---- issue 11: no lie gets through the gate or the report -----------------------------

def _passing_head(crafted):
    """Make the crafted head pass against the base under --allow-na (track_mem n/a only)."""
    p = crafted / "box" / "bbbb2222-existing-py3.12.json"
    d = json.loads(p.read_text())
    r = d["results"]
    r["ingest.Dir.time_run"][0][4], r["ingest.Dir.track_throughput"][0][4] = 2.6, 38.5
    r["ingest.Dir.time_run"][0][6], r["ingest.Dir.track_throughput"][0][6] = 11.0, 9.1
    r["misc.time_import"][0][0] = 0.5
    p.write_text(json.dumps(d))
    return p, d


def test_gate_fails_when_head_lost_benchmarks(crafted):
    p, d = _passing_head(crafted)
    assert run_cli("compare", "aaaa", "bbbb", "--results", crafted, "--allow-na").returncode == 0
    del d["results"]["ingest.Dir.track_share_ingest"]
    p.write_text(json.dumps(d))
    proc = run_cli("compare", "aaaa", "bbbb", "--results", crafted, "--allow-na")
    assert proc.returncode == 1, proc.stdout
    assert "**Gate: FAILED** — 12 removed" in proc.stdout and "| Removed " in proc.stdout
    assert "### Removed (in the base, missing from the head)" in proc.stdout
    proc = run_cli("compare", "aaaa", "bbbb", "--results", crafted, "--allow-na", "--allow-removed", "--json", "-")
    assert proc.returncode == 0, proc.stdout
    cmp = strict_json(proc.stdout)
    assert cmp["counts"]["removed"] == 12 and not cmp["gate_failed"] and cmp["allow_removed"]
    md = run_cli("compare", "aaaa", "bbbb", "--results", crafted, "--allow-na", "--allow-removed").stdout
    assert "**Gate: passed** — nothing regressed beyond the factor and the control drift; 12 removed " \
        "(allowed by --allow-removed)." in md
    # a head with no results at all
    d["results"] = {}
    p.write_text(json.dumps(d))
    proc = run_cli("compare", "aaaa", "bbbb", "--results", crafted, "--allow-na", "--json", "-")
    assert proc.returncode == 1 and strict_json(proc.stdout)["counts"]["removed"] == 83


@pytest.mark.parametrize("damage", ["truncated", "schema-1", "schema-3"])
def test_unreadable_newest_file_is_an_error_not_a_fallback(crafted, damage):
    p = crafted / "box" / "bbbb2222-existing-py3.12.json"
    if damage == "truncated":
        p.write_text(p.read_text()[:700])
    else:
        d = json.loads(p.read_text())
        d["version"] = int(damage[-1])
        p.write_text(json.dumps(d))
    what = "corrupt results file" if damage == "truncated" else f"schema version {damage[-1]}"
    assert_one_line_error(run_cli("--results", crafted), what, str(p))
    assert_one_line_error(run_cli("history", "ingest.Dir", "--results", crafted), what, str(p))
    assert_one_line_error(run_cli("history", "ingest.Dir.time_run", "--results", crafted), what, str(p))
    # another environment's unreadable file does not concern --env existing-py3.12
    other = crafted / "box" / "cccc3333-conda-py3.11.json"
    p.rename(other)
    assert run_cli("--results", crafted, "--env", "existing-py3.12").returncode == 0
    assert_one_line_error(run_cli("--results", crafted, "--env", "conda-py3.11"), str(other))


def test_prefix_matching_a_corrupt_file_names_it(crafted):
    good = crafted / "box" / "aaaa1111-existing-py3.12.json"
    corrupt = crafted / "box" / "aaaa1112-existing-py3.12.json"
    corrupt.write_text(good.read_text()[:300])
    assert_one_line_error(run_cli("--results", crafted, "--commit", "aaaa"), str(corrupt), "'aaaa'")
    assert_one_line_error(run_cli("compare", "aaaa", "bbbb", "--results", crafted), str(corrupt))
    assert run_cli("--results", crafted, "--commit", "aaaa1111").returncode == 0
    # the same commit in another environment, unreadable
    corrupt.rename(crafted / "box" / "aaaa1111-conda-py3.11.json")
    assert_one_line_error(run_cli("--results", crafted, "--commit", "aaaa1111"), "aaaa1111-conda-py3.11.json")
    assert run_cli("--results", crafted, "--commit", "aaaa1111", "--env", "existing-py3.12").returncode == 0


@pytest.mark.parametrize("bench, index, value, shown", [
    ("ingest.Dir.time_run", 0, math.inf, "inf"),
    ("ingest.Dir.time_run", 3, -1.5, "-1.5"),
    ("ingest.Dir.time_run", 4, 0.0, "0.0"),
    ("ingest.Dir.track_throughput", 0, -math.inf, "-inf"),
    ("ingest.Dir.track_throughput", 4, -2.0, "-2.0"),
    ("ingest.Dir.track_mem", 0, -1.0, "-1.0"),
    ("pipeline.Run.peakmem_run", 0, math.inf, "inf"),
    ("misc.track_count", 0, math.inf, "inf"),
])
def test_impossible_values_are_named(crafted, bench, index, value, shown):
    p = crafted / "box" / "aaaa1111-existing-py3.12.json"
    d = json.loads(p.read_text())
    d["results"][bench][0][index] = value
    p.write_text(json.dumps(d))  # json writes Infinity / -Infinity, as asv would read them
    for args in (("--results", crafted, "--commit", "aaaa"), ("compare", "aaaa", "bbbb", "--results", crafted),
                 ("compare", p, crafted / "box" / "bbbb2222-existing-py3.12.json"),
                 ("history", "ingest.Dir", "--results", crafted)):
        assert_one_line_error(run_cli(*args), "bad value", bench, f"= {shown} ", str(p))


def test_compare_refuses_the_same_results_twice(crafted):
    a = crafted / "box" / "aaaa1111-existing-py3.12.json"
    for args in (("aaaa", "aaaa1111"), (a, a), (a, "aaaa")):
        assert_one_line_error(run_cli("compare", *args, "--results", crafted), "same results", "nothing was compared")
    copy = crafted / "copy.json"
    shutil.copy(a, copy)  # another path, same machine / commit / environment
    assert_one_line_error(run_cli("compare", a, copy), "same results")
    assert "2 bad input, including base and head being the same results" in \
        run_cli("compare", "--help").stdout.replace("\n", " ").replace("  ", " ")


# ---- issue 12: a verdict that survives a noisy VM (control drift) ----------------------

def _drifted_head(crafted, factor_of):
    """Head = the base with every time (and memory) multiplied by ``factor_of(benchmark,
    strategy)`` and every throughput divided by it; nothing fails, nothing is removed."""
    _add_benchmark(crafted, "ingest.Control.time_loop", [], [], [2.0])  # a *.Control class, no strategy
    base = crafted / "box" / "aaaa1111-existing-py3.12.json"
    d = json.loads(base.read_text())
    d["commit_hash"], d["date"] = HEAD, d["date"] + 100000
    for name, raw in d["results"].items():
        kind = metrics.metric_kind(name.rsplit(".", 1)[1])
        if kind == "extra" or raw[0] is None:
            continue
        combos = list(itertools.product(*raw[1])) or [()]
        pnames = ["strategy"] if raw[1] and raw[1][0][0].startswith("'") else []
        for i, combo in enumerate(combos):
            strategy = metrics.param_value(combo[0]) if pnames else None
            m = factor_of(name, strategy)
            if raw[0][i] is not None and not math.isnan(raw[0][i]):
                raw[0][i] = raw[0][i] / m if kind == "throughput" else raw[0][i] * m
                for col in raw[5:9]:  # asv's 99% CI and quartiles move with the value
                    if col and col[i] is not None:
                        col[i] = col[i] / m if kind == "throughput" else col[i] * m
    (crafted / "box" / "bbbb2222-existing-py3.12.json").write_text(json.dumps(d))


def _subject(name, strategy):
    return strategy == "module" or (strategy is None and not name.startswith("ingest.Control."))


def test_drift_everything_moved_together_is_no_regression(crafted):
    # (a) the whole machine is 1.4x slower: controls and stac-manager alike
    _drifted_head(crafted, lambda name, strategy: 1.4)
    proc = run_cli("compare", "aaaa", "bbbb", "--results", crafted, "--json", "-")
    cmp = strict_json(proc.stdout)
    assert proc.returncode == 0, [e for e in cmp["entries"] if e["category"] == "regressed"]
    assert cmp["counts"]["regressed"] == 0 and cmp["counts"]["control"] > 0
    for kind in ("time", "throughput", "memory"):
        assert cmp["drift"][kind]["drift"] == pytest.approx(1.4) and cmp["drift"][kind]["rows"] >= 3
    # without the controls' drift the same numbers would fail the factor
    module_t1 = next(e for e in cmp["entries"] if e["benchmark"] == "ingest.Dir.time_run"
                     and e["params"].startswith("strategy=module, concurrency=1,"))
    assert module_t1["ratio"] == pytest.approx(1.4) and module_t1["category"] == "unchanged"


def test_drift_subject_slower_while_controls_held_is_a_regression(crafted):
    # (b) stac-manager 2x slower, the controls within 5 %
    moved = ("ingest.Dir.time_run", "ingest.Dir.track_throughput", "ingest.Dir.track_mem")
    _drifted_head(crafted, lambda name, strategy: 2.0 if strategy == "module" and name in moved else 1.05)
    proc = run_cli("compare", "aaaa", "bbbb", "--results", crafted, "--json", "-")
    assert proc.returncode == 1, proc.stdout
    cmp = strict_json(proc.stdout)
    regressed = {(e["benchmark"], e["params"]) for e in cmp["entries"] if e["category"] == "regressed"}
    m1 = "strategy=module, concurrency=1, n_items=100"
    assert regressed == {(name, m1) for name in moved}  # module ran at concurrency 1 only
    assert cmp["drift"]["time"]["drift"] == pytest.approx(1.05)
    assert cmp["drift"]["time"]["threshold"] == pytest.approx(1.1)  # max(factor, drift)
    md = run_cli("compare", "aaaa", "bbbb", "--results", crafted).stdout
    assert "**Gate: FAILED** — 3 got worse." in md and "### Control drift" in md


def test_drift_controls_alone_slower_passes_and_is_reported(crafted):
    # (c) only the controls (harness, ceiling, ingest.Control) are 3x slower
    _drifted_head(crafted, lambda name, strategy: 1.0 if _subject(name, strategy) else 3.0)
    proc = run_cli("compare", "aaaa", "bbbb", "--results", crafted, "--json", "-")
    assert proc.returncode == 0, proc.stdout
    cmp = strict_json(proc.stdout)
    assert cmp["counts"]["regressed"] == 0 and cmp["counts"]["improved"] == 0
    control = {(e["benchmark"], e["params"]) for e in cmp["entries"] if e["category"] == "control"}
    assert ("ingest.Control.time_loop", "") in control
    assert ("ingest.Dir.time_run", "strategy=threads, concurrency=5, n_items=100") in control
    assert all(e["role"] == "control" for e in cmp["entries"] if e["category"] == "control")
    assert cmp["drift"]["time"]["drift"] == pytest.approx(3.0)
    assert cmp["drift"]["time"]["worst"]["ratio"] == pytest.approx(3.0)
    md = run_cli("compare", "aaaa", "bbbb", "--results", crafted).stdout
    assert "**Gate: passed**" in md and "### Control drift" in md
    drift_rows = [line for line in md.splitlines() if line.startswith(("| time ", "| throughput ", "| memory "))]
    assert len(drift_rows) == 3 and all("3.00x worse" in line for line in drift_rows[:2]), drift_rows
    time_row = [c.strip() for c in drift_rows[0].strip("|").split("|")]
    assert time_row[1] == str(cmp["drift"]["time"]["rows"]) and time_row[2] == "3.00x" and time_row[4] == "3.00"


def test_drift_rows_without_controls_use_the_factor(crafted):
    # no control row measured on both sides: the factor alone decides, and the comment says so
    _drifted_head(crafted, lambda name, strategy: 1.0 if _subject(name, strategy) else 3.0)
    for f in (crafted / "box").glob("*.json"):
        d = json.loads(f.read_text())
        if "results" in d:
            d["results"] = {k: v for k, v in d["results"].items() if k.startswith("misc.")}
            f.write_text(json.dumps(d))
    cmp = strict_json(run_cli("compare", "aaaa", "bbbb", "--results", crafted, "--json", "-").stdout)
    assert cmp["drift"] == {}
    md = run_cli("compare", "aaaa", "bbbb", "--results", crafted).stdout
    assert "_No control rows measured on both sides: the factor alone decides._" in md

# ---- asv's statistical guard: a move inside the noise is not a regression ---------------

M1 = "strategy=module, concurrency=1, n_items=100"
STATS = {"ci_99_a": 5, "ci_99_b": 6, "q_25": 7, "q_75": 8, "number": 9, "repeat": 10, "samples": 11}


def _set_stats(path, name, index, value=None, **stats):
    """Set one cell's result and its asv statistics columns (STATS) in a crafted results file."""
    d = json.loads(path.read_text())
    raw = d["results"][name]
    raw += [None] * (len(d["result_columns"]) - len(raw))
    n = len(raw[0])
    if value is not None:
        raw[0][index] = value
    for key, v in stats.items():
        col = raw[STATS[key]] = raw[STATS[key]] or [None] * n
        col[index] = v
    path.write_text(json.dumps(d))


def _module_slower(crafted, base_ci, head_ci, head=20.0, **extra):
    """The base against a copy (the head) where stac-manager's ingest.Dir.time_run at concurrency 1
    went 10 s -> ``head`` s, each side with its 99% CI and quartiles; the controls did not move."""
    _drifted_head(crafted, lambda name, strategy: 1.0)
    base, hd = (next((crafted / "box").glob(f"{c}-*.json")) for c in ("aaaa1111", "bbbb2222"))
    for path, value, (lo, hi) in ((base, None, base_ci), (hd, head, head_ci)):
        _set_stats(path, "ingest.Dir.time_run", 0, value, ci_99_a=lo, ci_99_b=hi, q_25=lo, q_75=hi,
                   **{k: v[path is hd] for k, v in extra.items()})
    proc = run_cli("compare", "aaaa", "bbbb", "--results", crafted, "--factor", "1.5", "--json", "-")
    cmp = strict_json(proc.stdout)
    entry = next(e for e in cmp["entries"] if e["benchmark"] == "ingest.Dir.time_run" and e["params"] == M1)
    return proc, cmp, entry


def test_guard_overlapping_intervals_are_noise_not_a_regression(crafted):
    # (a) 2x slower, but the 99% intervals overlap: a loaded VM, not stac-manager
    proc, cmp, e = _module_slower(crafted, (6.0, 16.0), (12.0, 30.0))
    assert proc.returncode == 0, [x for x in cmp["entries"] if x["category"] == "regressed"]
    assert e["ratio"] == pytest.approx(2.0) and e["category"] == "noise"
    assert e["guard"] == {"method": "asv", "different": False, "base": [6.0, 16.0], "head": [12.0, 30.0]}
    assert cmp["counts"]["noise"] == 1 and cmp["counts"]["regressed"] == 0 and not cmp["gate_failed"]
    assert "Mann-Whitney" in cmp["noise_rule"]
    md = run_cli("compare", "aaaa", "bbbb", "--results", crafted, "--factor", "1.5").stdout
    assert "**Gate: passed**" in md
    outcome = {cells[0]: cells[1] for cells in ([c.strip() for c in line.strip("|").split("|")]
                                                for line in md.splitlines() if line.startswith("| "))}
    assert outcome["Moved, within noise (intervals overlap)"] == "1", md


def test_guard_disjoint_intervals_are_a_regression(crafted):
    # (b) 2x slower and the intervals are apart: a regression, as without the guard
    proc, cmp, e = _module_slower(crafted, (9.0, 11.0), (18.0, 22.0))
    assert proc.returncode == errors.EXIT_REGRESSION, proc.stderr
    assert e["category"] == "regressed" and cmp["counts"]["noise"] == 0
    assert e["guard"] == {"method": "asv", "different": True, "base": [9.0, 11.0], "head": [18.0, 22.0]}
    md = run_cli("compare", "aaaa", "bbbb", "--results", crafted, "--factor", "1.5").stdout
    assert "**Gate: FAILED** — 1 got worse." in md and "Moved, within noise" not in md


def test_guard_uses_the_samples_when_asv_recorded_them(crafted):
    # asv's Mann-Whitney U test on the raw samples decides, not the (here overlapping) intervals
    samples = ([10.0 + i / 100 for i in range(10)], [20.0 + i / 100 for i in range(10)])
    proc, cmp, e = _module_slower(crafted, (5.0, 25.0), (5.0, 25.0), samples=samples, repeat=(10, 10))
    assert proc.returncode == errors.EXIT_REGRESSION and e["category"] == "regressed"
    assert e["guard"]["method"] == "asv" and e["guard"]["different"] is True
    samples = ([10.0, 25.0] * 5, [20.0, 9.0] * 5)  # the same spread: not different
    proc, cmp, e = _module_slower(crafted, (9.0, 11.0), (18.0, 22.0), samples=samples, repeat=(10, 10))
    assert proc.returncode == 0 and e["category"] == "noise"


def test_guard_leaves_rows_without_statistics_alone(crafted):
    # (c) a single sample (asv's own exception, repeat 1) and a track_* row: the factor decides
    proc, cmp, e = _module_slower(crafted, (6.0, 16.0), (12.0, 30.0), repeat=(1, 1))
    assert proc.returncode == errors.EXIT_REGRESSION and e["category"] == "regressed"
    assert e["guard"] == {"method": None, "different": None, "base": None, "head": None}
    _drifted_head(crafted, lambda name, strategy: 2.0 if strategy == "module" else 1.0)
    cmp = strict_json(run_cli("compare", "aaaa", "bbbb", "--results", crafted, "--json", "-").stdout)
    by = {(e["benchmark"], e["params"]): e for e in cmp["entries"]}
    for name in ("ingest.Dir.track_throughput", "ingest.Dir.track_mem"):
        assert by[(name, M1)]["category"] == "regressed" and by[(name, M1)]["guard"]["method"] is None
    assert cmp["counts"]["noise"] == 0
    # unmoved rows and control rows are never asked
    assert "guard" not in by[("ingest.Dir.time_run", "strategy=module, concurrency=10, n_items=100")]
    assert all("guard" not in e for e in cmp["entries"] if e["role"] == "control")


def _side(value, **stats):
    return {"value": value, "stats": stats or None, "samples": None}


def test_guard_falls_back_to_the_ci_then_the_interquartile_range(monkeypatch):
    a, b = _side(1.0, ci_99_a=0.5, ci_99_b=1.5, q_25=0.9, q_75=1.1), _side(2.0, ci_99_a=1.2, ci_99_b=3.0,
                                                                            q_25=1.9, q_75=2.1)
    assert gate.noise_guard(a, b, 1.5)["method"] == "asv" and not gate.noise_guard(a, b, 1.5)["different"]
    monkeypatch.setattr(gate, "_asv_different", lambda *args: None)  # asv's helper cannot be called
    assert gate.noise_guard(a, b, 1.5) == {"method": "ci_99", "different": False,
                                           "base": [0.5, 1.5], "head": [1.2, 3.0]}
    for side in (a, b):
        del side["stats"]["ci_99_a"]
    assert gate.noise_guard(a, b, 1.5) == {"method": "iqr", "different": True,
                                           "base": [0.9, 1.1], "head": [1.9, 2.1]}
    assert gate.noise_guard(a, _side(2.0), 1.5)["method"] is None  # one side without statistics
    # an unbounded interval (too few samples) is kept, written as null in strict JSON
    inf = _side(2.0, ci_99_a=1.2, ci_99_b=math.inf, q_25=1.9, q_75=2.1)
    assert gate.noise_guard(_side(1.0, ci_99_a=0.5, ci_99_b=1.5), inf, 1.5)["head"] == [1.2, None]


def test_stats_columns_are_parsed_and_checked(crafted):
    p = crafted / "box" / "aaaa1111-existing-py3.12.json"
    row = results.parse_result_file(str(p)).rows["ingest.Dir.time_run"]
    assert row.stats[0] == {"ci_99_a": 10.0, "ci_99_b": 10.0, "q_25": 10.0, "q_75": 10.0, "number": 1, "repeat": 2}
    assert row.stats[1] is None and row.samples == [None] * 12
    assert results.parse_result_file(str(p)).rows["ingest.Dir.track_mem"].stats == [None] * 12
    d = json.loads(p.read_text())
    d["results"]["ingest.Dir.time_run"][6] = [1.0, 2.0]  # 2 upper bounds for 12 combinations
    p.write_text(json.dumps(d))
    assert_one_line_error(run_cli("compare", "aaaa", "bbbb", "--results", crafted), "bad stats_ci_99_b",
                          "ingest.Dir.time_run", str(p))


# --------------------------------------------------------------------------------------
# A real asv run
# --------------------------------------------------------------------------------------

BENCH_SRC = '''
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Ingest:
    params = (["module", "threads", "ceiling_read"], [1, 4], [20])
    param_names = ["strategy", "concurrency", "n_items"]
    number = 1
    repeat = 1
    rounds = 1
    warmup_time = 0

    def setup(self, strategy, concurrency, n_items):
        if strategy == "threads" and concurrency == 1:
            raise NotImplementedError("not a real combination")
        import toypkg
        # only `module` runs the package; threads and ceiling_read are harness / ceiling
        # controls (as in the suite): they do not depend on it
        self.delay = toypkg.DELAY if strategy == "module" else 0.001

    def time_run(self, strategy, concurrency, n_items):
        time.sleep(self.delay * n_items / concurrency)

    def track_throughput(self, strategy, concurrency, n_items):
        return concurrency / self.delay

    track_throughput.unit = "items/s"


def time_plain():
    pass


def time_flaky():
    import toypkg
    if toypkg.BROKEN:
        raise RuntimeError("broken on purpose")


def time_always_broken():
    raise RuntimeError("always broken")
'''


def _git(repo, *args, date=None):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo.parent / "home")}
    if date:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


@pytest.fixture(scope="module")
def real_asv(tmp_path_factory):
    """Two commits benchmarked by a real `asv run` in an existing environment."""
    base = tmp_path_factory.mktemp("asv_e2e")
    home = base / "home"
    home.mkdir()
    proj = base / "proj"
    (proj / "toypkg").mkdir(parents=True)
    (proj / "benchmarks").mkdir()
    (proj / "benchmarks" / "__init__.py").write_text("")
    (proj / "benchmarks" / "bench_toy.py").write_text(BENCH_SRC)
    (proj / "asv.conf.json").write_text(json.dumps({
        "version": 1, "project": "toypkg", "repo": ".", "branches": ["main"],
        "environment_type": "existing", "benchmark_dir": "benchmarks",
        "env_dir": ".asv/env", "results_dir": ".asv/results", "html_dir": ".asv/html",
    }))
    env = {**os.environ, "HOME": str(home)}
    asv = [sys.executable, "-m", "asv"]
    subprocess.run([*asv, "machine", "--yes", "--machine", "e2ebox"], cwd=proj, env=env,
                   check=True, capture_output=True)
    _git(proj, "init", "-q", "-b", "main")
    commits = []
    for i, (delay, broken) in enumerate(((0.001, False), (0.003, True))):
        (proj / "toypkg" / "__init__.py").write_text(f"DELAY = {delay}\nBROKEN = {broken}\n")
        _git(proj, "add", "-A")
        _git(proj, "commit", "-q", "-m", f"c{i}", date=f"2024-01-0{i + 1}T12:00:00+00:00")
        commit = _git(proj, "rev-parse", "HEAD")
        proc = subprocess.run(
            [*asv, "run", "-E", f"existing:{sys.executable}", "--machine", "e2ebox", "--quick",
             "--set-commit-hash", commit, "--show-stderr"],
            cwd=proj, env=env, capture_output=True, text=True, timeout=300)
        # asv run exits 2 when a benchmark failed (time_always_broken does)
        assert proc.returncode in (0, 2), proc.stdout + proc.stderr
        commits.append(commit)
    results = proj / ".asv" / "results"
    assert len(list((results / "e2ebox").glob("*-existing-*.json"))) == 2
    return {"proj": proj, "results": results, "commits": commits}


def test_real_asv_report(real_asv):
    reps = check_report_invariants(real_asv["results"])
    base = next(r for r in reps if r["commit"] == real_asv["commits"][0])
    assert base["machine"] == "e2ebox" and base["stale_ignored"] == []
    s = scenario(base, "bench_toy.Ingest — n_items=20")
    assert s["baseline"]["strategy"] == "module"
    assert row(s, "threads", 1)["time_s"]["status"] == "n/a"          # NotImplementedError
    assert row(s, "threads", 1)["throughput_items_s"]["status"] == "n/a"
    assert row(s, "module", 4)["throughput_items_s"]["value"] == pytest.approx(4000.0)
    assert s["best"]["concurrency"] == 4 and s["best"]["strategy"] != "ceiling_read"
    assert s["best"]["speedup"] > 2.0  # 20 ms vs 5 ms of sleep
    assert row(s, "module", 4)["pct_of_ceiling"] == pytest.approx(100.0)
    others = {o["benchmark"]: o["status"] for o in base["other_benchmarks"]}
    assert others == {"bench_toy.time_plain": "ok", "bench_toy.time_flaky": "ok",
                      "bench_toy.time_always_broken": "failed"}
    # run from the project directory: asv.conf.json is found, newest commit is used
    proc = run_cli(cwd=real_asv["proj"])
    assert proc.returncode == 0 and f"`{real_asv['commits'][1][:8]}`" in proc.stdout
    assert "| module " in proc.stdout and "**Best Performance**: 4 workers" in proc.stdout


def test_real_asv_gate(real_asv):
    c0, c1 = real_asv["commits"]
    proc = run_cli("compare", c0[:7], c1[:7], "--factor", "1.5", "--json", "-", cwd=real_asv["proj"])
    assert proc.returncode == 1, proc.stderr
    cmp = strict_json(proc.stdout)
    regressed = {(e["benchmark"], e["params"]) for e in cmp["entries"] if e["category"] == "regressed"}
    # throughput is computed, so module's 3x drop is deterministic; its sleeps triple too.
    # The controls (threads, ceiling_read) did not move: the drift leaves the factor alone.
    for conc in (1, 4):
        assert ("bench_toy.Ingest.track_throughput", f"strategy=module, concurrency={conc}, n_items=20") in regressed
    assert ("bench_toy.Ingest.time_run", "strategy=module, concurrency=1, n_items=20") in regressed
    assert not any("module" not in params for name, params in regressed if name.startswith("bench_toy.Ingest."))
    assert cmp["drift"]["throughput"]["drift"] == pytest.approx(1.0)
    failed = [(e["benchmark"], e["after_status"]) for e in cmp["entries"] if e["category"] == "failed"]
    assert failed == [("bench_toy.time_flaky", "failed")]
    assert ("bench_toy.time_always_broken", "") in {
        (e["benchmark"], e["params"]) for e in cmp["entries"] if e["category"] == "not_measured"}
    md = run_cli("compare", c0, c1, "--factor", "1.5", cwd=real_asv["proj"]).stdout
    assert "**Gate: FAILED**" in md and "`bench_toy.time_flaky`" in md
    # git names resolve through the asv.conf.json repo
    proc = run_cli("compare", "main~1", "main", "--factor", "1.5", cwd=real_asv["proj"])
    assert proc.returncode == 1 and "`bench_toy.Ingest.track_throughput`" in proc.stdout
    check_gate_self_compare(real_asv["results"])
    # the reverse direction improves and does not fail the gate on throughput
    rev = strict_json(run_cli("compare", c1, c0, "--factor", "1.5", "--json", "-",
                              cwd=real_asv["proj"]).stdout)
    assert not any(e["benchmark"].endswith("track_throughput") for e in rev["entries"]
                   if e["category"] == "regressed")


def test_real_asv_history(real_asv):
    c0, c1 = real_asv["commits"]
    proc = run_cli("history", "bench_toy.Ingest.track_throughput", "-w", "strategy=module",
                   "-w", "concurrency=1", "--branch", "--json", "-", cwd=real_asv["proj"])
    assert proc.returncode == 0, proc.stderr
    h = strict_json(proc.stdout)
    assert [r["commit"] for r in h["rows"]] == [c0, c1]
    vals = [next(iter(r["values"].values()))["value"] for r in h["rows"]]
    assert vals == [pytest.approx(1000.0), pytest.approx(1000 / 3)]
    md = run_cli("history", "bench_toy.Ingest", cwd=real_asv["proj"]).stdout
    assert md.index(c0[:8]) < md.index(c1[:8]) and "I/O-bound" in md
    assert_one_line_error(run_cli("history", "bench_toy.Ingest", "--branch", "nope", cwd=real_asv["proj"]),
                          "unknown branch")



def test_gate_ignores_sub_megabyte_memory_moves():
    # 0.07 MB -> 0.13 MB is a 1.7x "regression" of nothing; 10 MB -> 20 MB is not.
    assert gate._memory_noise("s.C.track_mem_mb", 0.07, 0.13)
    assert not gate._memory_noise("s.C.track_mem_mb", 10.0, 20.0)
    assert gate._memory_noise("s.C.peakmem_run", 100e6, 100.5e6)
    assert not gate._memory_noise("s.C.peakmem_run", 100e6, 160e6)
    assert not gate._memory_noise("s.C.time_run", 0.07, 0.13)


def _one_row_file(name, commit, value, params=(("'module'",), ("1",))):
    row = results.Row(name=name, params=[list(p) for p in params], values=[value], version="v")
    return results.ResultFile(path=f"/x/box/{commit[:8]}-e.json", machine="box", env_name="e",
                              commit_hash=commit, date=1, python="3.12", rows={name: row})


@pytest.mark.parametrize("name, before, after, floor_holds", [
    ("mod.XModule.track_mem_mb", 0.5, 1.2, True),      # 2.4x but 0.7 MB: under the 1 MB floor
    ("mod.XModule.track_mem_mb", 0.5, 1.6, False),     # 3.2x and 1.1 MB: a regression
    ("mod.XModule.peakmem_run", 0.4e6, 1.0e6, True),   # bytes: 0.6 MB
    ("mod.XModule.peakmem_run", 0.4e6, 1.5e6, False),
])
def test_gate_memory_floor(name, before, after, floor_holds):
    bench = {name: {"param_names": ["strategy", "concurrency"], "version": "v"}}
    cmp = gate.compare_results(_one_row_file(name, BASE, before), _one_row_file(name, HEAD, after), 1.1, bench)
    (entry,) = cmp["entries"]
    assert entry["category"] == ("unchanged" if floor_holds else "regressed"), entry
    assert cmp["gate_failed"] is (not floor_holds)


def _rows_file(commit, values, params=(("'module'",), ("1",))):
    rows = {name: results.Row(name=name, params=[list(p) for p in params], values=[v], version="v")
            for name, v in values.items()}
    return results.ResultFile(path=f"/x/box/{commit[:8]}-e.json", machine="box", env_name="e",
                              commit_hash=commit, date=1, python="3.12", rows=rows)


def test_gate_judges_instruction_counts_on_their_own_factor():
    """An instruction row regresses beyond its own factor (1.03), whatever the wall time and the
    controls' drift did; its wall-time row stands beside it; a Control's count is never gated."""
    names = ["s.XModule.time_run", "s.XModule.track_instructions", "s.YModule.track_instructions",
             "s.Control.time_run", "s.Control.track_instructions"]
    bench = {n: {"param_names": ["strategy", "concurrency"], "version": "v"} for n in names}
    base = _rows_file(BASE, dict(zip(names, [1.0, 1_000_000, 2_000_000, 1.0, 500_000], strict=True)))
    # the machine is 2x slower (control and subject time alike); X's count rose 4 %, Y's 2 %, the Control's 10 %
    head = _rows_file(HEAD, dict(zip(names, [2.0, 1_040_000, 2_040_000, 2.0, 550_000], strict=True)))
    cmp = gate.compare_results(base, head, 1.5, bench)
    cat = {e["benchmark"]: e["category"] for e in cmp["entries"]}
    assert cat == {"s.XModule.time_run": "unchanged", "s.XModule.track_instructions": "regressed",
                   "s.YModule.track_instructions": "unchanged", "s.Control.time_run": "control",
                   "s.Control.track_instructions": "control"}, cat
    assert cmp["gate_failed"] and cmp["instructions_factor"] == 1.03
    (x,) = [e for e in cmp["entries"] if e["benchmark"] == "s.XModule.track_instructions"]
    assert x["companion"] == {"benchmark": "s.XModule.time_run", "ratio": 2.0, "category": "unchanged"}
    md = render.render_compare(cmp)
    regressions = md.split("### Regressions", 1)[1].split("###", 1)[0]
    assert "`s.XModule.track_instructions`" in regressions and "2.00 (unchanged)" in regressions
    assert "factors of their own, 1.03 and 1.05" in md
    # a looser instruction factor lets the 4 % through
    assert not gate.compare_results(base, head, 1.5, bench, instructions_factor=1.05)["gate_failed"]


def test_gate_judges_allocation_peaks_on_their_own_factor_beside_rss():
    """An allocation peak (track_alloc_mb) that rose 6 % regresses (factor 1.05) though the RSS row fell
    (RSS moves without cause); its RSS row stands beside it; 4 % passes."""
    names = ["s.XModule.track_mem_mb", "s.XModule.track_alloc_mb", "s.YModule.track_alloc_mb"]
    bench = {n: {"param_names": ["strategy", "concurrency"], "version": "v"} for n in names}
    base = _rows_file(BASE, dict(zip(names, [29.7, 1.00, 2.00], strict=True)))
    head = _rows_file(HEAD, dict(zip(names, [1.5, 1.06, 2.08], strict=True)))
    cmp = gate.compare_results(base, head, 1.5, bench)
    cat = {e["benchmark"]: e["category"] for e in cmp["entries"]}
    assert cat["s.XModule.track_alloc_mb"] == "regressed" and cat["s.YModule.track_alloc_mb"] == "unchanged", cat
    assert cmp["alloc_factor"] == 1.05 and cmp["gate_failed"]
    (x,) = [e for e in cmp["entries"] if e["benchmark"] == "s.XModule.track_alloc_mb"]
    assert x["companion"]["benchmark"] == "s.XModule.track_mem_mb" and x["better"] == "lower"
    regressions = render.render_compare(cmp).split("### Regressions", 1)[1].split("###", 1)[0]
    assert "`s.XModule.track_alloc_mb`" in regressions and "`track_mem_mb` 0.05" in regressions
    assert not gate.compare_results(base, head, 1.5, bench, alloc_factor=1.07)["gate_failed"]

"""End to end: real asv, git and virtualenvs over the stand-in's four commits.

The stand-in's commits (tests/standin/README.md) decide what each benchmark must
report: a number where the API exists, n/a (NaN) where it does not, never a failure.
"""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import standin
from conftest import ROOT, read_results, tool

pytestmark = pytest.mark.e2e


def value(results, bench, *params):
    """The result of ``bench`` for params given as Python values (asv stores reprs)."""
    row = results[bench]
    key = tuple(repr(p) for p in params)
    assert key in row, f"{bench}{key} not in {list(row)[:5]}..."
    return row[key]


def is_number(v):
    return isinstance(v, (int, float)) and not math.isnan(v) and v > 0


def is_na(v):
    return isinstance(v, float) and math.isnan(v)


@pytest.fixture(scope="module")
def by_label(asv_run):
    # the main line asv ran (the side branches, standin.SIDE, are for the gate checks)
    return {label: read_results(asv_run["results"], asv_run["hashes"][label]) for label in standin.COMMITS}


#: Where the stand-in, like real stac-manager, gets a source wrong, the benchmark must fail:
#: it reads the stac-geoparquet layout as raw rows (c2 on), and a malformed file crashes its
#: directory ingest (c3 on).  (label of the first commit that fails, benchmark class)
EXPECTED_FAILURES = {"file_ingest.GeoParquetModule": "c2_old_context", "file_ingest.MalformedModule": "c3_current"}


def test_asv_run_fails_only_where_the_standin_is_broken(asv_run, by_label):
    log = asv_run["log"].read_text()
    assert asv_run["returncode"] in (0, 2), log[-4000:]
    failed = {(label, bench.rsplit(".", 1)[0]) for label, results in by_label.items()
              for bench, rows in results.items() for v in rows.values() if v is None}
    labels = standin.COMMITS
    expected = {(label, cls) for cls, first in EXPECTED_FAILURES.items() for label in labels[labels.index(first):]}
    assert failed == expected, sorted(failed ^ expected)


def test_every_commit_measured_every_suite(by_label):
    for label, results in by_label.items():
        suites = {name.split(".")[0] for name in results}
        assert {"file_ingest", "api_ingest", "output", "pipeline"} <= suites, (label, suites)


def newest(by_label):
    return by_label[standin.COMMITS[-1]]


def test_harness_strategies_run_on_the_newest_commit(by_label):
    # The prototypes need nothing from stac-manager: numbers everywhere, n/a only where
    # the design makes no sense (a sequential loop at 5 workers).  The full profile ran them.
    head = newest(by_label)
    for strategy in ("loop", "threads", "semaphore", "queue", "processes", "ceiling_parse"):
        assert is_number(value(head, "file_ingest.Directory.time_run", 60, strategy, 1)), strategy
    for strategy in ("threads", "semaphore", "queue", "processes"):
        assert is_number(value(head, "file_ingest.Directory.time_run", 60, strategy, 5)), strategy
    assert is_na(value(head, "file_ingest.Directory.time_run", 60, "loop", 5))
    assert is_number(value(head, "api_ingest.Search.time_run", 60, "pystac_client", 1, 0))
    # the harness writers: write throughput and memory (no memory with fsync, nor of a ceiling);
    # fsync at CONDITION_LEVELS (1 and 10) only
    assert is_number(value(head, "output.ItemFiles.track_throughput", 60, "threads", 1, True))
    assert is_na(value(head, "output.ItemFiles.track_throughput", 60, "threads", 5, True))
    assert is_number(value(head, "output.ItemFiles.track_throughput", 60, "threads", 5, False))
    assert is_number(value(head, "output.ItemFiles.track_mem_mb", 60, "threads", 5, False))
    assert is_na(value(head, "output.ItemFiles.track_mem_mb", 60, "threads", 1, True))
    assert is_na(value(head, "file_ingest.Directory.track_mem_mb", 60, "ceiling_parse", 1))
    assert is_number(value(head, "file_ingest.Directory.time_run", 60, "ceiling_parse", 1))


def test_controls_run_on_every_commit(by_label):
    # The history profile's noise floor: one subject-independent row per suite, everywhere.
    for label, results in by_label.items():
        assert is_number(value(results, "file_ingest.Control.time_run", 60, "loop", 1)), label
        assert is_number(value(results, "api_ingest.Control.time_run", 60, "aiohttp_sequential", 1, 0)), label
        assert is_number(value(results, "output.Control.time_run", 60, "loop", 1, False)), label
        assert is_number(value(results, "pipeline.Control.time_run", 60, "loop", 1, False)), label


def test_history_profile_skips_the_harness(asv_run, by_label):
    # Older commits ran the history profile only: no harness class was run there at all, and
    # of the history classes only the time and the memory increment.
    for label in standin.COMMITS[:-1]:
        assert "file_ingest.Directory.time_run" not in by_label[label], label
        assert "file_ingest.DirectoryModule.time_run" in by_label[label], label
        assert "file_ingest.DirectoryModule.track_mem_mb" in by_label[label], label
        assert "output.ModuleJson.track_throughput" not in by_label[label], label
        assert "output.ModuleJson.time_run" in by_label[label], label


def test_history_run_keeps_every_number_of_the_full_run(asv_run, by_label):
    # The history profile ran after the full profile on the newest commit: nothing erased.
    before, after = asv_run["head_after_full"], newest(by_label)
    assert before, "the full run recorded nothing"
    for bench, rows in before.items():
        assert bench in after, bench
        for params, v in rows.items():
            w = after[bench][params]
            assert (is_na(v) and is_na(w)) or v == w, (bench, params, v, w)


def test_newest_commit_has_every_measurement(by_label):
    head = newest(by_label)
    # Every row: the checked time and the memory increment; the write-timed suites add the write's
    # throughput, and their harness classes (full profile only) measure just that and the memory.
    both, write, harness_write = ("time_run", "track_mem_mb"), "track_throughput", ("track_throughput", "track_mem_mb")
    rows = [("file_ingest.DirectoryModule", (60, "module", 5), both),
            ("api_ingest.Search", (60, "aiohttp_offset", 5, 0), both),
            ("output.ItemFiles", (60, "processes", 5, False), harness_write),
            ("pipeline.Pipeline", (60, "concurrent_ingest", 5, False), harness_write),
            ("pipeline.PipelineModule", (60, "module", 5, True), (*both, write))]
    for bench, params, methods in rows:
        for method in methods:
            assert is_number(value(head, f"{bench}.{method}", *params)), (bench, method)
        measured = {name.rsplit(".", 1)[1] for name in head if name.rsplit(".", 1)[0] == bench}
        # stac-manager's rows: counted instructions and allocation peaks, both at one worker
        counted = {"track_instructions", "track_alloc_mb"} if bench.endswith("Module") else set()
        assert measured - {"track_share_" + s for s in ("ingest", "transform", "output", "checkpoint")} \
            == set(methods) | counted, (bench, measured)  # no peakmem_run: the import baseline is the peakmem row
        for method in counted:  # at 5 workers: n/a
            assert is_na(value(head, f"{bench}.{method}", *params)), (bench, method)
    # the hybrids: checkpoints at CONDITION_LEVELS only, their memory without checkpoints
    assert is_na(value(head, "pipeline.Pipeline.track_throughput", 60, "concurrent_ingest", 5, True))
    assert is_na(value(head, "pipeline.Pipeline.track_mem_mb", 60, "concurrent_ingest", 1, True))
    assert is_number(value(head, "pipeline.Pipeline.track_throughput", 60, "concurrent_ingest", 1, True))
    assert is_na(value(head, "pipeline.PipelineModule.track_share_checkpoint", 60, "module", 1, False))
    assert 0 < value(head, "pipeline.PipelineModule.track_share_checkpoint", 60, "module", 1, True) < 100
    for share in ("ingest", "transform", "output"):
        assert 0 < value(head, f"pipeline.PipelineModule.track_share_{share}", 60, "module", 1, False) < 100
    # The harness can always out-serve the fastest client (issue 3's 5x is checked at scale).
    headroom = head["api_ingest.ServerCapacity.track_headroom"]
    assert all(v > 1 for v in headroom.values()), headroom


def test_few_large_files_on_the_newest_commit(by_label):
    """The full profile's 5 Parquet files: stac-manager's module per file, sequential and at once; its
    directory mode n/a (a directory is item JSON files to it); the harness, and the loop's decode/parse split."""
    head, n_items = newest(by_label), 5 * 60  # the 5 files of 60 items
    for concurrency in (1, 5):
        assert is_na(value(head, "large_files.LargeParquetModule.time_run", n_items, "module", concurrency))
        for strategy in ("threads", "processes"):
            assert is_number(value(head, "large_files.LargeParquet.time_run", n_items, strategy, concurrency))
    for method in ("time_run", "track_mem_mb"):
        assert is_number(value(head, f"large_files.LargeParquetModule.{method}", n_items, "module_per_file", 5))
    for method in ("time_run", "track_decode_s", "track_parse_s"):
        assert is_number(value(head, f"large_files.LargeParquet.{method}", n_items, "loop", 1)), method
    assert is_na(value(head, "large_files.LargeParquet.track_parse_s", n_items, "threads", 5))
    assert is_na(value(head, "large_files.LargeParquet.time_run", n_items, "loop", 5))


def test_module_follows_the_api_history(by_label):
    bench = "file_ingest.{}Module.time_run"
    c1, c2, c3, c4 = (by_label[k] for k in ("c1_no_ingest", "c2_old_context", "c3_current", "c4_phase2"))
    # c1: no ingest module at all.
    for cls in ("Directory", "FeatureCollection", "Parquet", "CollectionRoot"):
        assert is_na(value(c1, bench.format(cls), 60, "module", 1)), cls
    # c2: old context path; files only, no directories.
    assert is_number(value(c2, bench.format("FeatureCollection"), 60, "module", 1))
    assert is_number(value(c2, bench.format("Parquet"), 60, "module", 1))
    assert is_na(value(c2, bench.format("Directory"), 60, "module", 1))
    assert is_na(value(c2, bench.format("CollectionRoot"), 60, "module", 1))
    # c3: current API, sequential only.
    for cls in ("Directory", "FeatureCollection", "Parquet", "CollectionRoot"):
        assert is_number(value(c3, bench.format(cls), 60, "module", 1)), cls
    assert is_na(value(c3, bench.format("Directory"), 60, "module", 5))
    assert is_na(value(c3, bench.format("Directory"), 60, "module_queue", 1))
    # c4: Phase 2 config accepted: the real thing at 5 workers, both worker strategies.
    assert is_number(value(c4, bench.format("Directory"), 60, "module", 5))
    assert is_number(value(c4, bench.format("Directory"), 60, "module_queue", 5))
    # stac-manager reads no ndjson at any commit.
    for results in (c2, c3, c4):
        assert is_na(value(results, bench.format("Ndjson"), 60, "module", 1))
    # Memory: the increment is MB, and the import baseline (bytes) exists once the module does.
    assert is_number(value(by_label[list(by_label)[-1]], "file_ingest.DirectoryModule.track_mem_mb", 60, "module", 1))
    assert is_na(c1["file_ingest.ImportBaseline.peakmem_import"][()])
    assert c3["file_ingest.ImportBaseline.peakmem_import"][()] > 10e6


def test_other_suites_follow_the_api_history(by_label):
    c1, c2, c3, c4 = (by_label[k] for k in ("c1_no_ingest", "c2_old_context", "c3_current", "c4_phase2"))
    for results in (c1, c2):  # no api mode, no OutputModule, no UpdateModule
        assert is_na(value(results, "api_ingest.SearchModule.time_run", 60, "module", 1, 0))
        assert is_na(value(results, "output.ModuleJson.time_run", 60, "module", 1, 100))
        assert is_na(value(results, "pipeline.PipelineModule.time_run", 60, "module", 1, False))
    for results in (c3, c4):
        assert is_number(value(results, "api_ingest.SearchModule.time_run", 60, "module", 1, 0))
        assert is_number(value(results, "output.ModuleJson.time_run", 60, "module", 1, 1000))
        assert is_number(value(results, "output.ModuleParquet.time_run", 60, "module", 1, 1000))
        assert is_number(value(results, "pipeline.PipelineModule.time_run", 60, "module", 1, False))
    # The history profile leaves the costliest parameter values to the full run (n/a by
    # design on history-only commits); the newest commit, run in full, has them.
    head = newest(by_label)
    assert is_na(value(c3, "pipeline.PipelineModule.time_run", 60, "module", 1, True))
    assert is_na(value(c3, "output.ModuleJson.time_run", 60, "module", 1, 100))
    assert is_number(value(head, "pipeline.PipelineModule.time_run", 60, "module", 1, True))
    assert is_number(value(head, "output.ModuleJson.time_run", 60, "module", 1, 100))
    # Phase 2 ingest concurrency inside the pipeline only where declared.
    assert is_na(value(c3, "pipeline.PipelineModule.time_run", 60, "module", 5, False))
    assert is_number(value(c4, "pipeline.PipelineModule.time_run", 60, "module", 5, False))
    # Under injected faults the harness clients retry to the exact set; stac-manager's api
    # mode (no retries in the stand-in, as in the real one) delivers part of it.
    for fault in ("429", "500", "drop"):
        assert value(newest(by_label), "api_ingest.Faults.track_delivered", 60, "aiohttp_offset", 10,
                     fault) == 1.0
        assert 0 <= value(newest(by_label), "api_ingest.FaultsModule.track_delivered", 60, "module", 1,
                          fault) <= 1


def test_results_state_the_scale(asv_run, by_label):
    # n_items is a parameter: series of different scales can never mix.
    for results in by_label.values():
        for bench, rows in results.items():
            if bench.startswith("file_ingest.") and "ImportBaseline" not in bench:
                assert {params[0] for params in rows} == {"60"}, bench


def test_publish_writes_a_dashboard(asv_run):
    assert asv_run["publish_returncode"] == 0
    html = asv_run["html"]
    assert (html / "index.html").is_file()
    index = json.loads((html / "index.json").read_text())
    assert "file_ingest.DirectoryModule.time_run" in index["benchmarks"]
    assert list(html.glob("graphs/**/file_ingest.DirectoryModule.time_run.json"))


def test_report_reads_the_real_results(asv_run):
    c4 = asv_run["hashes"][standin.COMMITS[-1]]
    proc = subprocess.run([*tool("report"), "--results",
                           str(asv_run["results"]), "--commit", c4[:10], "--json", "-"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    text = json.dumps(data)
    assert "file_ingest.Directory" in text and "module" in text and "ceiling_parse" in text


def test_gate_compares_two_real_commits(asv_run, tmp_path):
    hashes, data = asv_run["hashes"], tmp_path / "compare.json"
    proc = subprocess.run([*tool("report"), "compare",
                           hashes["c3_current"], hashes["c4_phase2"], "--results",
                           str(asv_run["results"]), "--factor", "1000", "--allow-na", "--json", str(data)],
                          capture_output=True, text=True, timeout=120)
    # A factor of 1000 tolerates any timing noise: the gate must pass and print its table ...
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Gate" in proc.stdout
    # ... and have compared the real rows: stac-manager's and the controls, both commits measured
    entries = json.loads(data.read_text())["entries"]
    seen = {(e["category"], e["role"]) for e in entries}
    assert ("unchanged", "control") in seen and ("unchanged", "subject") in seen, seen
    assert not [e for e in entries if e["category"] in ("failed", "regressed")]
    # c4_phase2 declares Phase 2's concurrency: its module rows above 1 worker were n/a at c3
    fixed = {(e["benchmark"], e["params"]) for e in entries if e["category"] == "fixed"}
    assert any(b == "file_ingest.DirectoryModule.time_run" and "concurrency=5" in p for b, p in fixed), fixed


def test_report_invariants_hold_on_real_results(asv_run, tmp_path):
    from test_report import check_gate_self_compare, check_report_invariants

    check_report_invariants(asv_run["results"], tmp_path=tmp_path)
    check_gate_self_compare(asv_run["results"])


def test_asv_check_is_clean(asv_run):
    # asv collects any time_/track_/peakmem_/mem_ function in benchmarks/ as a benchmark,
    # helpers included; `asv check` must find nothing to complain about on the stand-in.
    env_python = next((asv_run["dir"] / "env").glob("*/bin/python"))
    proc = subprocess.run([sys.executable, "-m", "asv", "check", "--config", "asv.conf.json",
                           "-E", f"existing:{env_python}"], cwd=asv_run["dir"], env=asv_run["env"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "check failed" not in proc.stdout, proc.stdout[-3000:]


@pytest.mark.timeout(1800)
def test_command_1_on_a_fresh_clone_prints_the_report_of_its_run(standin_repo, tmp_path):
    """The README's command 1 as a newcomer runs it: a copy of the project with its committed
    results, stac-manager mirrored into ./stac-manager, no asv machine yet (asv names it after this
    host): the report printed at the end is the report of that run, its machine and its commit.
    Only ``-- --quick --bench ...`` is added, to keep it to a few benchmarks."""
    repo, hashes = standin_repo
    proj, home = tmp_path / "stac-manager-benchmarks", tmp_path / "home"
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, text=True,
                             check=True).stdout.split("\0")
    for rel in filter(None, tracked):
        if (ROOT / rel).is_file():
            (proj / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, proj / rel)
    (proj / ".venv").symlink_to(ROOT / ".venv")  # tools/setup.sh then only re-installs the harness
    subprocess.run(["git", "clone", "-q", "--mirror", str(repo), str(proj / "stac-manager")], check=True)
    committed = {p.name for p in (proj / "results").iterdir() if p.is_dir()}
    readme = (ROOT / "README.md").read_text()
    command = next(line for line in readme.splitlines() if line.startswith("bash tools/setup.sh && ")
                   and "tools.bench" in line)
    command += " -- --quick --bench '^file_ingest\\.(DirectoryModule|Control)\\.time_run'"
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = dict(os.environ, HOME=str(home), PATH=path,
               PIP_CACHE_DIR=os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")))
    env.pop("PYTHONPATH")  # a newcomer's shell: the copy's own tools, found from its root
    proc = subprocess.run(["bash", "-c", command], cwd=proj, env=env, capture_output=True, text=True,
                          timeout=1700)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    (machine,) = [k for k in json.loads((home / ".asv-machine.json").read_text()) if k != "version"]
    assert machine not in committed and {machine, *committed} <= {p.name for p in (proj / "results").iterdir()}
    newest = hashes[standin.COMMITS[-1]]
    setup, _, report = proc.stdout.partition("## Benchmark report")
    assert setup.startswith("setup.sh: .venv ready") and setup.count("\n") == 1, proc.stdout[:3000]
    assert report.startswith(f" — commit `{newest[:8]}`\n\nMachine `{machine}`,"), report[:3000]
    assert "file_ingest.Directory" in report


@pytest.mark.timeout(1200)
def test_asv_records_instruction_counts(asv_run, tmp_path):
    """Real asv, counts on: ``track_instructions`` and ``track_alloc_mb`` of a history row are numbers
    (one valgrind pass and one native pass for the commit), the same row at 5 workers n/a, a harness
    class has none."""
    work, newest = asv_run["dir"], asv_run["hashes"][standin.COMMITS[-1]]
    conf = json.loads((work / "asv.conf.json").read_text())
    conf["results_dir"] = str(tmp_path / "results")  # the fixture's env, results of their own
    (work / "counts.conf.json").write_text(json.dumps(conf, indent=2))
    env = dict(asv_run["env"], STAC_BENCH_COUNTS="1", STAC_BENCH_DATA_DIR=str(tmp_path / "data"))
    proc = subprocess.run([sys.executable, "-m", "asv", "run", "--config", "counts.conf.json", "--machine", "e2e",
                           "--quick", "--show-stderr", "--bench", r"file_ingest\.(DirectoryModule|Control)\.",
                           f"{newest}^!"], cwd=work, env=env, capture_output=True, text=True, timeout=1100)
    assert proc.returncode == 0, proc.stdout[-4000:]
    got = read_results(tmp_path / "results", newest)
    module = value(got, "file_ingest.DirectoryModule.track_instructions", 60, "module", 1)
    control = value(got, "file_ingest.Control.track_instructions", 60, "loop", 1)
    assert 1e5 < control < module < 1e8, (control, module)
    assert is_na(value(got, "file_ingest.DirectoryModule.track_instructions", 60, "module", 5))
    assert is_number(value(got, "file_ingest.DirectoryModule.time_run", 60, "module", 1))
    # the allocation peaks came with the counts: stac-manager's run allocates more than the plain loop
    alloc = value(got, "file_ingest.DirectoryModule.track_alloc_mb", 60, "module", 1)
    assert 0 < value(got, "file_ingest.Control.track_alloc_mb", 60, "loop", 1) < alloc < 100, alloc
    assert is_na(value(got, "file_ingest.DirectoryModule.track_alloc_mb", 60, "module", 5))
    suite = json.loads((tmp_path / "results" / "benchmarks.json").read_text())
    assert "file_ingest.Directory.track_instructions" not in suite  # the harness rows have no count

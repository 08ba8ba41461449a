"""The report's scaling tables (``tools/reporting/scaling.py``) on crafted results of the scale selection:
the verdict rules at their thresholds, failed and n/a sizes, the Markdown, the chart and the JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import tool
from tools.reporting import analyse, charts, render, scaling
from tools.reporting.results import ResultsDB

CRAFTED = Path(__file__).resolve().parent / "report_fixtures" / "crafted"
SIZES = [1000, 10000, 100000]
NAN = float("nan")


# --- the rules ----------------------------------------------------------------------------------

@pytest.mark.parametrize("per_item,verdict", [
    ({1000: 100.0, 10000: 100.0, 100000: 100.0}, "linear"),
    ({1000: 100.0, 100000: 150.0}, "linear"),  # at the factor
    ({1000: 100.0, 100000: 151.0}, "per-item cost grows 1.51x from 1K to 100K"),
    ({1000: 100.0, 10000: 400.0, 100000: 2000.0}, "per-item cost grows 20.00x from 1K to 100K"),
    ({60: 10.0, 240: 30.0}, "per-item cost grows 3.00x from 60 to 240"),
    ({1000: 300.0, 100000: 100.0}, "linear"),  # a fixed cost amortised
    ({1000: 100.0}, None),
])
def test_time_verdict(per_item, verdict):
    assert scaling.time_verdict(per_item) == verdict


@pytest.mark.parametrize("peaks,verdict", [
    ({1000: 20.0, 10000: 200.0, 100000: 2000.0}, "memory grows with n: holds the items (20.0 KB an item)"),
    ({1000: 20.0, 100000: 465.5}, "memory grows with n: holds the items (4.5 KB an item)"),  # at ITEM_KB
    ({1000: 20.0, 100000: 465.0},
     "memory grows with n: 4.49 KB an item, less than an item (per-item bookkeeping)"),
    ({1000: 0.65, 10000: 14.4, 100000: 111.0},  # stac-manager's directory ingest: a path per item
     "memory grows with n: 1.11 KB an item, less than an item (per-item bookkeeping)"),
    ({1000: 40.0, 10000: 42.0, 100000: 44.9}, "memory bounded: streams"),  # under 5 MB in all
    ({1000: 40.0, 100000: 45.0}, "memory grows with n: 0.05 KB an item, less than an item (per-item bookkeeping)"),
    ({1000: 30.0, 100000: 10.0}, "memory bounded: streams"),
    ({100000: 500.0}, None),
])
def test_memory_verdict(peaks, verdict):
    assert scaling.memory_verdict(peaks) == verdict


def test_size_labels_and_suites():
    assert [scaling.n_label(n) for n in (60, 240, 1000, 10000, 100000, 1500)] == ["60", "240", "1K", "10K", "100K",
                                                                                 "1500"]
    assert scaling.suite_of("scale.FileParquet") == "file ingest"
    assert scaling.suite_of("scale.OutputJson") == "output" and scaling.suite_of("scale.ApiSearch") == "API search"
    assert scaling.suite_of("scale.Pipeline") == "pipeline" and scaling.suite_of("scale.Other") == "other"


# --- crafted results ----------------------------------------------------------------------------

def add(results_dir, cls, param_names, params, times, mems, commit="aaaa1111"):
    """``scale.<cls>`` time_run and track_mem_mb rows (one value per size) in one crafted results file."""
    bench = json.loads((results_dir / "benchmarks.json").read_text())
    p = next((results_dir / "box").glob(f"{commit}-*.json"))
    data = json.loads(p.read_text())
    for method, values, unit in (("time_run", times, "seconds"), ("track_mem_mb", mems, "MB")):
        name = f"scale.{cls}.{method}"
        bench[name] = {"name": name, "params": params, "param_names": param_names, "unit": unit,
                       "type": "time" if unit == "seconds" else "track", "version": "1"}
        data["results"][name] = [values, params, "1"]
    (results_dir / "benchmarks.json").write_text(json.dumps(bench))
    p.write_text(json.dumps(data))


def add_count(results_dir, name, param_names, params, values, commit="aaaa1111"):
    """A history row's ``track_instructions`` (instructions an item costs) in the crafted results file."""
    bench = json.loads((results_dir / "benchmarks.json").read_text())
    p = next((results_dir / "box").glob(f"{commit}-*.json"))
    data = json.loads(p.read_text())
    bench[f"{name}.track_instructions"] = {"name": f"{name}.track_instructions", "params": params,
                                           "param_names": param_names, "unit": "instructions", "type": "track",
                                           "version": "1"}
    data["results"][f"{name}.track_instructions"] = [values, params, "1"]
    (results_dir / "benchmarks.json").write_text(json.dumps(bench))
    p.write_text(json.dumps(data))


@pytest.fixture
def crafted(tmp_path):
    dst = tmp_path / "results"
    shutil.copytree(CRAFTED, dst)
    sizes = [repr(n) for n in SIZES]
    file_params = [sizes, ["'module'"], ["1"]]
    # a linear streaming reader; one that holds its items; one whose per-item cost grows; one failed at 100K
    add(dst, "FileDirectory", ["n_items", "strategy", "concurrency"], file_params,
        [0.3, 3.1, 33.0], [20.0, 22.0, 24.0])
    add(dst, "FileFeatureCollection", ["n_items", "strategy", "concurrency"], file_params,
        [0.2, 2.0, 21.0], [40.0, 400.0, 4000.0])
    add(dst, "OutputJson", ["n_items", "strategy", "concurrency", "buffer_size"], [*file_params, ["1000"]],
        [1.0, 20.0, 400.0], [30.0, 35.0, 60.0])
    add(dst, "Pipeline", ["n_items", "strategy", "concurrency", "checkpoint"], [*file_params, ["False"]],
        [3.0, 31.0, None], [50.0, 60.0, NAN])
    add(dst, "FileNdjson", ["n_items", "strategy", "concurrency"], file_params, [NAN] * 3, [NAN] * 3)
    # the history rows' counts (any n_items; the scale row's other params): the queue's and 5 workers' are not it
    add_count(dst, "file_ingest.DirectoryModule", ["n_items", "strategy", "concurrency"],
              [["1000"], ["'module'", "'module_queue'"], ["1", "5"]], [2.5e6, NAN, 9e6, NAN])
    add_count(dst, "output.ModuleJson", ["n_items", "strategy", "concurrency", "buffer_size"],
              [["1000"], ["'module'"], ["1"], ["1", "1000"]], [7e6, NAN])  # buffer_size=1000: n/a
    return dst


def report(results_dir):
    return analyse.build_report(ResultsDB(str(results_dir)), commit="aaaa1111")


def rows_by_name(rep):
    return {r["row"]: r for s in rep["scaling"] for r in s["rows"]}


def test_the_tables_hold_per_item_numbers_and_verdicts(crafted):
    rep = report(crafted)
    assert [s["suite"] for s in rep["scaling"]] == ["file ingest", "output", "pipeline"]
    assert all(s["sizes"] == SIZES for s in rep["scaling"])
    rows = rows_by_name(rep)
    directory = rows["FileDirectory"]
    assert directory["cells"][1000]["us_per_item"] == pytest.approx(300.0)
    assert directory["cells"][100000]["us_per_item"] == pytest.approx(330.0)
    assert directory["cells"][1000]["mb_per_1k"] == pytest.approx(20.0)
    assert directory["cells"][100000]["mb_per_1k"] == pytest.approx(0.24)
    assert (directory["time_verdict"], directory["memory_verdict"]) == ("linear", "memory bounded: streams")
    assert directory["instructions_per_item"] == 2.5e6 and rows["OutputJson"]["instructions_per_item"] is None
    fc = rows["FileFeatureCollection"]
    assert (fc["time_verdict"], fc["memory_verdict"]) == ("linear", "memory grows with n: holds the items (40.0 KB an item)")
    assert rows["OutputJson"]["time_verdict"] == "per-item cost grows 4.00x from 1K to 100K"
    assert rows["OutputJson"]["params"] == {"strategy": "module", "concurrency": "1", "buffer_size": "1000"}
    pipeline = rows["Pipeline"]  # failed at 100K: judged on 1K and 10K, the failure shown
    assert pipeline["cells"][100000]["time_status"] == "failed" and pipeline["cells"][100000]["mem_status"] == "n/a"
    assert pipeline["time_verdict"] == "linear"
    assert pipeline["memory_verdict"] == "memory grows with n: 1.11 KB an item, less than an item (per-item bookkeeping)"
    ndjson = rows["FileNdjson"]
    assert ndjson["time_verdict"] is None and ndjson["memory_verdict"] is None


def test_the_scale_rows_leave_the_scenario_tables(crafted):
    rep = report(crafted)
    assert not [s for s in rep["scenarios"] if s["benchmark_class"].startswith("scale.")]
    assert not [o for o in rep["other_benchmarks"] if o["benchmark"].startswith("scale.")]
    plain = crafted.parent / "plain"
    shutil.copytree(CRAFTED, plain)
    assert "scaling" not in report(plain)  # no scale rows, no section (the other reports are as they were)


def test_the_markdown_and_the_cli(crafted, tmp_path):
    text = render.render_report(report(crafted))
    assert "### Scaling" in text and "#### file ingest" in text and "#### pipeline" in text
    assert cells(text, "`FileDirectory`") == ["`FileDirectory`", "300", "310", "330", "20.0", "2.20", "0.240",
                                               "2.50 M", "linear", "memory bounded: streams"]
    assert cells(text, "`OutputJson`")[7] == "—" and cells(text, "`FileFeatureCollection`")[7] == "—"
    assert cells(text, "`Pipeline`")[3] == "failed" and cells(text, "`Pipeline`")[6] == "n/a"
    out = tmp_path / "r.md"
    proc = subprocess.run([*tool("report"), "--results", str(crafted), "--commit", "aaaa1111",
                           "--output", str(out), "--json", str(tmp_path / "r.json")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    body = out.read_text()
    for suite in ("file_ingest", "output", "pipeline"):
        assert f"](r_charts/scaling-{suite}.png)" in body
        assert (tmp_path / "r_charts" / f"scaling-{suite}.png").stat().st_size > 1000
    data = json.loads((tmp_path / "r.json").read_text())
    assert {r["row"] for s in data["scaling"] for r in s["rows"]} == set(rows_by_name(report(crafted)))


def cells(markdown, first):
    """The cells of the table line whose first cell starts with ``first``."""
    for line in markdown.splitlines():
        found = [c.strip() for c in line.strip().strip("|").split("|")]
        if found[0].startswith(first):
            return found
    raise AssertionError(f"no line {first!r}")


def test_the_chart_draws_a_line_per_row_with_a_number(crafted):
    suite = next(s for s in report(crafted)["scaling"] if s["suite"] == "file ingest")
    assert scaling_labels(charts.scaling_series(suite, "us_per_item")) == ["FileDirectory", "FileFeatureCollection"]
    fig = charts.scaling_figure(suite)
    try:
        left, right = fig.axes
        assert [ln.get_label() for ln in left.get_lines()] == ["FileDirectory", "FileFeatureCollection"]
        assert list(left.get_lines()[0].get_xdata()) == SIZES
        assert list(right.get_lines()[1].get_ydata()) == pytest.approx([40.0, 40.0, 40.0])
    finally:
        charts.pyplot().close(fig)


def scaling_labels(series):
    return sorted(series)


# --- disk against memory (tools/reporting/diskmem.py) ----------------------------------------------

def add_one(results_dir, name, param_names, params, values, unit="items/s", commit="aaaa1111"):
    bench = json.loads((results_dir / "benchmarks.json").read_text())
    bench[name] = {"name": name, "params": params, "param_names": param_names, "unit": unit, "type": "track",
                   "version": "1"}
    (results_dir / "benchmarks.json").write_text(json.dumps(bench))
    p = next((results_dir / "box").glob(f"{commit}-*.json"))
    data = json.loads(p.read_text())
    data["results"][name] = [values, params, "1"]
    p.write_text(json.dumps(data))


def test_each_memory_row_beside_its_disk_twin(tmp_path):
    dst = tmp_path / "results"
    shutil.copytree(CRAFTED, dst)
    module = ["n_items", "strategy", "concurrency", "buffer_size"]
    add_one(dst, "output.ModuleJson.track_throughput", module, [["1000"], ["'module'"], ["1"], ["100", "1000"]],
            [900.0, 1000.0])
    add_one(dst, "output.ModuleJsonMemory.track_throughput", module, [["1000"], ["'module'"], ["1"], ["1000"]],
            [4000.0])
    files = ["n_items", "strategy", "concurrency", "fsync"]
    add_one(dst, "output.ItemFiles.track_throughput", files,
            [["1000"], ["'loop'", "'threads'"], ["1", "5"], ["False", "True"]], [5000.0, 250.0] + [NAN] * 6)
    add_one(dst, "output.ItemFilesMemory.track_throughput", files, [["1000"], ["'loop'"], ["1"], ["False", "True"]],
            [4000.0, NAN])  # memory slower (noise), and one n/a
    add_one(dst, "output.LonelyMemory.track_throughput", files, [["1000"], ["'loop'"], ["1"], ["False"]], [1.0])
    rep = report(dst)
    pairs = {(p["row"], tuple(p["params"].values())): p for p in rep["disk_memory"]}
    assert set(pairs) == {("output.ModuleJson", ("module", 1, 1000)), ("output.ItemFiles", ("loop", 1, False))}
    json_pair = pairs["output.ModuleJson", ("module", 1, 1000)]
    assert (json_pair["disk"], json_pair["memory"], json_pair["n_items"]) == (1000.0, 4000.0, 1000)
    assert json_pair["disk_share"] == pytest.approx(0.75)
    assert pairs["output.ItemFiles", ("loop", 1, False)]["disk_share"] == pytest.approx(-0.25)
    text = render.render_report(rep)
    assert "### Disk against memory" in text
    assert cells(text, "`output.ModuleJson`")[1:] == ["strategy=module, concurrency=1, buffer_size=1000", "1,000",
                                                      "4,000", "75%"]
    assert cells(text, "`output.ItemFiles`")[-1] == "-25%"
    assert "disk_memory" not in report(crafted_plain(tmp_path))


def crafted_plain(tmp_path):
    plain = tmp_path / "plain"
    shutil.copytree(CRAFTED, plain)
    return plain

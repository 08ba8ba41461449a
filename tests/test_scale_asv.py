"""``tools.bench scale`` for real: asv builds the stand-in's newest commit and runs the scale selection
at 60, 120 and 240 items in one run; the results hold one series per row with ``n_items`` as a
parameter, nothing else ran, and the report's scaling tables say what the numbers say."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import standin
from benchmarks import scale
from conftest import E2E_ENV, ROOT, asv_conf, read_results, tool
from tools.reporting import scaling

pytestmark = pytest.mark.e2e
SIZES = (60, 120, 240)
#: The rows and what the stand-in's newest commit gives at every size: a number, or n/a (no ndjson).
ROWS = {name: "n/a" if name == "FileNdjson" else "number" for name in (
    "FileDirectory", "FileFeatureCollection", "FileNdjson", "FileParquet", "FileCollection", "OutputJson",
    "OutputParquet", "Pipeline", "ApiSearch")}


@pytest.fixture(scope="module")
def scale_run(standin_repo, tmp_path_factory):
    """``python -m tools.bench scale main^!`` over the stand-in (one sample a benchmark), and its report."""
    repo, hashes = standin_repo
    work = tmp_path_factory.mktemp("asv-scale")
    conf = asv_conf(repo=str(repo), branches=["main"], benchmark_dir=str(ROOT / "benchmarks"),
                    env_dir=str(work / "env"), results_dir=str(work / "results"), html_dir=str(work / "html"))
    (work / "asv.conf.json").write_text(json.dumps(conf, indent=2))
    shutil.copy(ROOT / "constraints.txt", work / "constraints.txt")
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = dict(os.environ, **E2E_ENV, STAC_BENCH_SCALES=",".join(map(str, SIZES)), HOME=str(work / "home"),
               PATH=path, PIP_CACHE_DIR=os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")))
    env.pop("STAC_BENCH_PRELOAD_SCALES", None)  # tools.bench scale sets it
    subprocess.run([sys.executable, "-m", "asv", "machine", "--yes", "--machine", "e2e"], cwd=work, env=env,
                   check=True, capture_output=True, timeout=120)
    bench = subprocess.run([*tool("bench"), "scale", "main^!", "--config", "asv.conf.json", "--machine", "e2e",
                            "--", "--quick", "--show-stderr"], cwd=work, env=env, capture_output=True, text=True,
                           timeout=1500)
    (work / "bench.log").write_text(bench.stdout + bench.stderr)
    report = subprocess.run([*tool("report"), "--results", str(work / "results"), "--machine", "e2e",
                             "--json", "-", "--no-charts"], cwd=work, env=env, capture_output=True, text=True,
                            timeout=300)
    return {"bench": bench, "report": report, "work": work,
            "results": read_results(work / "results", hashes[standin.COMMITS[-1]])}


def test_the_run_passes_and_runs_the_selection_only(scale_run):
    assert scale_run["bench"].returncode == 0, (scale_run["work"] / "bench.log").read_text()[-3000:]
    results = scale_run["results"]
    assert set(results) == {f"scale.{row}.{m}" for row in ROWS for m in ("time_run", "track_mem_mb")}
    for row, want in ROWS.items():
        cls = getattr(scale, row)
        for method in ("time_run", "track_mem_mb"):
            values = results[f"scale.{row}.{method}"]
            assert sorted(int(combo[0]) for combo in values) == list(SIZES)  # one series, n_items its parameter
            assert all(combo[1:] == tuple(repr(p[0]) for p in cls.params[1:]) for combo in values)
            got = ["n/a" if isinstance(v, float) and math.isnan(v) else "number" if isinstance(v, float) else v
                   for v in values.values()]
            assert got == [want] * len(SIZES), (row, method, values)


def test_the_printed_report_has_a_scaling_table_per_suite(scale_run):
    out = scale_run["bench"].stdout
    assert "### Scaling" in out
    for suite in ("file ingest", "API search", "output", "pipeline"):
        assert f"#### {suite}" in out
    assert "µs/item 60" in out and "MB/1K items 240" in out


def test_the_verdicts_are_the_rules_on_the_numbers(scale_run):
    """Every row's per-item numbers and verdicts, recomputed from the raw results."""
    assert scale_run["report"].returncode == 0, scale_run["report"].stderr
    tables = json.loads(scale_run["report"].stdout)["scaling"]
    results = scale_run["results"]
    seen = set()
    for table in tables:
        assert table["sizes"] == list(SIZES)
        for r in table["rows"]:
            seen.add(r["row"])
            times = {int(c[0]): v for c, v in results[f"scale.{r['row']}.time_run"].items() if not math.isnan(v)}
            mems = {int(c[0]): v for c, v in results[f"scale.{r['row']}.track_mem_mb"].items() if not math.isnan(v)}
            per_item = {n: t * 1e6 / n for n, t in times.items()}
            for n in SIZES:
                assert r["cells"][str(n)]["us_per_item"] == pytest.approx(per_item.get(n), rel=1e-9, abs=0) \
                    if n in per_item else r["cells"][str(n)]["us_per_item"] is None
            assert r["time_verdict"] == scaling.time_verdict(per_item)
            assert r["memory_verdict"] == scaling.memory_verdict(mems)
            assert (r["time_verdict"] is None) == (ROWS[r["row"]] == "n/a")
    assert seen == set(ROWS)

"""Instruction counts under callgrind (``benchmarks.lib.instructions``), on the stand-in.

One valgrind process counts many rows; the counts must repeat across processes (0.5 %), be
linear in the item count (2 %), move when each item costs more, and say in one line why
they cannot be taken on a machine without valgrind or a C compiler.  Small scales: the
stand-in's file ingest is about a million instructions an item, 40x slower under valgrind.
"""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from benchmarks.lib import checks, datacache, instructions
from benchmarks.lib.settings import PROBE_ITEMS

N = 100
#: Per-item counts at N and 2N agree within this (a run's fixed cost, spread over fewer items).
LINEAR = 0.02
#: Counts of the same row in two processes agree within this.
SPREAD = 0.005
#: The planted per-item work: a loop of this many additions in the check's ``add`` (about 7 %
#: of the stand-in's file ingest per item: ten times the spread two processes may show,
#: ``SPREAD``; at 100 loops, 3.4 %, a loaded CI machine's 0.39 % spread failed it).
PLANT_LOOPS = 200
PLANT = f"""
from benchmarks.lib import checks

_add = checks.ItemCheck.add


def add(self, item):
    total = 0
    for i in range({PLANT_LOOPS}):
        total += i
    return _add(self, item)


checks.ItemCheck.add = add
"""

needs_valgrind = pytest.mark.skipif(instructions.unavailable() is not None,
                                    reason=f"no instruction counts here: {instructions.unavailable()}")


def rows(n, *names):
    specs = {"DirectoryModule": [n, "module", 1], "Control": [n, "loop", 1], "NdjsonModule": [n, "module", 1],
             "GeoParquetModule": [n, "module", 1]}
    return [instructions.row_spec(f"{name}@{n}", "benchmarks.file_ingest", name, specs[name], n) for name in names]


@pytest.fixture(scope="module")
def standin_src(standin_repo, tmp_path_factory):
    """The stand-in's ``src`` at the commit with the current ingest API (c4_phase2)."""
    repo, hashes = standin_repo
    work = tmp_path_factory.mktemp("instructions") / "stac-manager"
    subprocess.run(["git", "clone", "-q", str(repo), str(work)], check=True)
    subprocess.run(["git", "-C", str(work), "checkout", "-q", hashes["c4_phase2"]], check=True)
    return str(work / "src")


@pytest.fixture(scope="module")
def warm(bench_data_dir):
    """Datasets generated and their items' validity stored natively, before any valgrind process:
    a process validating (and storing) documents while another counts changes what that one reads."""
    for n in (PROBE_ITEMS, N, 2 * N):
        datacache.ensure_dataset(n)
        checks.prepare(n)


@pytest.fixture(scope="module")
def counted(standin_src, warm, tmp_path_factory):
    """Three counts at once (about 30 s of CPU on the stand-in): two processes at N (DirectoryModule,
    Control, an n/a row, a failing row), one at 2N, and one at N with planted per-item work.
    ``{"base": ..., "double": ..., "planted": ...}``, each ``count_rows``' answer."""
    if instructions.unavailable() is not None:
        pytest.skip(instructions.unavailable())
    plant = tmp_path_factory.mktemp("plant")
    (plant / "bench_plant.py").write_text(PLANT)
    paths = [standin_src, *sys.path]
    calls = {
        "base": dict(rows=rows(N, "DirectoryModule", "Control", "NdjsonModule", "GeoParquetModule"),
                     processes=2, jobs=2, paths=paths),
        "double": dict(rows=rows(2 * N, "DirectoryModule", "Control"), paths=paths),
        "planted": dict(rows=rows(N, "DirectoryModule", "Control"), paths=[str(plant), *paths],
                        preimport=(*instructions.PREIMPORT, "bench_plant")),
    }
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = {name: pool.submit(instructions.count_rows, **kw) for name, kw in calls.items()}
        return {name: future.result() for name, future in futures.items()}


@needs_valgrind
def test_counts_repeat_across_processes(counted):
    result, procs = counted["base"]
    assert len(procs) == 2 and all(p.returncode == 0 and p.error is None for p in procs), procs
    for name in ("DirectoryModule", "Control"):
        row = result[f"{name}@{N}"]
        assert row.error is None and row.skipped is None and len(row.counts) == 2, row
        assert row.spread <= SPREAD, f"{row.key}: {row.counts} differ by {row.spread:.3%}"
        assert 1e5 < row.per_item < 1e8, row  # a run of n items, not an empty or a setup-sized count


@needs_valgrind
def test_counts_are_linear_in_items(counted):
    base, double = counted["base"][0], counted["double"][0]
    for name in ("DirectoryModule", "Control"):
        small, large = base[f"{name}@{N}"].per_item, double[f"{name}@{2 * N}"].per_item
        assert abs(small / large - 1) <= LINEAR, f"{name}: {small:.0f} an item at {N}, {large:.0f} at {2 * N}"


@needs_valgrind
def test_n_a_and_failures_are_reported_not_counted(counted):
    result, _ = counted["base"]
    ndjson, geoparquet = result[f"NdjsonModule@{N}"], result[f"GeoParquetModule@{N}"]
    assert ndjson.skipped and ndjson.per_item is None and ndjson.error is None, ndjson
    assert geoparquet.error and "ResultMismatch" in geoparquet.error and geoparquet.per_item is None, geoparquet
    assert "\n" not in geoparquet.error.strip() or len(geoparquet.error) < 2000


@needs_valgrind
def test_planted_per_item_work_shows(counted):
    """Extra Python work in the check's ``add`` (once per item): the count rises by several
    percent, ten times the spread or more, and by about what the loop costs."""
    before, planted = counted["base"][0], counted["planted"][0]
    for name in ("DirectoryModule", "Control"):
        base, more = before[f"{name}@{N}"], planted[f"{name}@{N}"]
        assert more.error is None, more.error
        rise = more.per_item / base.per_item - 1
        assert max(0.02, 10 * base.spread) < rise < 0.5, f"{name}: +{rise:.2%} (spread {base.spread:.3%})"
        assert 10 * PLANT_LOOPS < more.per_item - base.per_item < 1000 * PLANT_LOOPS


def test_import_never_raises_and_the_reason_is_one_line(monkeypatch, tmp_path):
    """No valgrind, no compiler, no header: one line each, and count_rows marks every row n/a."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("STAC_BENCH_DATA_DIR", str(tmp_path / "data"))  # no helper built here yet
    reason = instructions.unavailable()
    assert reason and "valgrind" in reason and "\n" not in reason

    tools = tmp_path / "tools"
    tools.mkdir()
    for name in ("valgrind", "setarch"):
        (tools / name).write_text("#!/bin/sh\nexit 0\n")
        (tools / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(tools))
    reason = instructions.unavailable()
    assert reason and "compiler" in reason and "\n" not in reason

    (tools / "gcc").write_text("#!/bin/sh\necho 'x.c:8:10: fatal error: valgrind/callgrind.h: No such file or "
                               "directory' >&2\necho 'compilation terminated.' >&2\nexit 1\n")
    (tools / "gcc").chmod(0o755)
    reason = instructions.unavailable()
    assert reason and instructions.HEADER in reason and "\n" not in reason
    assert not any(instructions.helper_dir().glob("*"))  # no half-built helper left behind

    result, procs = instructions.count_rows(rows(N, "DirectoryModule", "Control"))
    assert procs == []
    assert all(row.skipped == reason and row.per_item is None and row.error is None for row in result.values())


def test_the_module_imports_without_valgrind_on_path(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", "import benchmarks.lib.instructions as i; print(i.unavailable())"],
                          cwd=instructions.ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert len(done.stdout.strip().splitlines()) == 1 and "valgrind" in done.stdout


def test_dumps_are_read_by_name(tmp_path):
    (tmp_path / "cg.11.1").write_text("desc: Trigger: Client Request: row0.0\nevents: Ir\nsummary: 0\n\ntotals: 1234\n")
    (tmp_path / "cg.12.1").write_text("desc: Trigger: Client Request: row1.0\nevents: Ir\ntotals: 99\n")
    (tmp_path / "cg.12").write_text("desc: Trigger: Program termination\ntotals: 0\n")
    assert instructions.read_dumps(tmp_path) == {"row0.0": 1234, "row1.0": 99}

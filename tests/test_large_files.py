"""The few-large-files source and its rows (``benchmarks/large_files.py``): 5 Parquet files, checked whole."""

import os

import pyarrow.parquet as pq
import pytest

from benchmarks import large_files
from benchmarks.lib import itemgen, largefiles
from benchmarks.lib.checks import ItemCheck, ResultMismatch

N = 60
PER_FILE = 24


@pytest.fixture(scope="module")
def folder(bench_data_dir):
    return largefiles.ensure_files(N, PER_FILE)


@pytest.fixture(scope="module")
def cache(bench_data_dir):
    return large_files.LargeParquet().setup_cache()


def test_five_files_of_distinct_items_each_the_generators(folder):
    ids = []
    for k, path in enumerate(largefiles.paths(folder)):
        rows = pq.read_table(path).to_pylist()
        assert [r["id"] for r in rows] == [itemgen.item_id(j) for j in range(k * PER_FILE, (k + 1) * PER_FILE)]
        ids += [r["id"] for r in rows]
        # item j is the dataset's item j mod n under its own id: more items than the dataset has
        assert rows == [{**itemgen.make_item(j % N), "id": itemgen.item_id(j)}
                        for j in range(k * PER_FILE, (k + 1) * PER_FILE)]
    assert len(ids) == len(set(ids)) == largefiles.FILES * PER_FILE > N


def test_files_are_made_once_and_remade_when_incomplete(folder):
    stamps = [os.stat(p).st_mtime_ns for p in largefiles.paths(folder)]
    assert largefiles.ensure_files(N, PER_FILE) == folder
    assert [os.stat(p).st_mtime_ns for p in largefiles.paths(folder)] == stamps
    broken = largefiles.paths(folder)[3]
    with open(broken, "r+b") as fh:
        fh.truncate(100)
    largefiles.ensure_files(N, PER_FILE)
    assert pq.ParquetFile(broken).metadata.num_rows == PER_FILE
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".tmp-")]


def test_prd_scale_makes_files_of_the_prds_size(monkeypatch):
    assert largefiles.per_file(1000) == 1000
    monkeypatch.setenv("STAC_BENCH_SCALE", "prd")
    assert largefiles.per_file(10_000) == largefiles.PRD_PER_FILE == 110_000


def run_row(cls, cache, strategy, concurrency):
    bench = cls()
    bench.setup(cache, large_files.TOTAL[0], strategy, concurrency)
    try:
        bench.time_run()
    finally:
        bench.teardown()
    return bench


@pytest.mark.parametrize("strategy,concurrency", [("loop", 1), ("threads", 1), ("threads", 5),
                                                  ("processes", 5), ("ceiling_read", 1)])
def test_every_harness_row_runs_checked(cache, strategy, concurrency):
    bench = run_row(large_files.LargeParquet, cache, strategy, concurrency)
    assert bench.n == large_files.TOTAL[0] == largefiles.FILES * large_files.PER_FILE


@pytest.mark.parametrize("fault", ["lose", "duplicate", "mangle"])
@pytest.mark.parametrize("strategy", ["loop", "threads"])
def test_a_reader_that_loses_duplicates_or_mangles_fails(cache, monkeypatch, strategy, fault):
    read = largefiles.read_items

    def faulty(path):
        items = read(path)
        if path.endswith("part-2.parquet"):
            if fault == "lose":
                items.pop()
            elif fault == "duplicate":
                items.append(items[0])
            else:
                items[1]["properties"]["gsd"] = 99.0
        return items
    monkeypatch.setattr(largefiles, "read_items", faulty)
    with pytest.raises(ResultMismatch, match=r"lost|duplicated|differs"):
        run_row(large_files.LargeParquet, cache, strategy, 1 if strategy == "loop" else 5)


def test_the_ceiling_fails_when_a_file_changes_size(cache, tmp_path):
    bench = large_files.LargeParquet()
    bench.setup(cache, large_files.TOTAL[0], "ceiling_read", 1)
    bench.paths = bench.paths[1:]  # a file short
    with pytest.raises(ResultMismatch, match="bytes"):
        bench.time_run()


def test_decode_and_parse_times_are_the_loops_only(cache):
    bench = large_files.LargeParquet()
    bench.setup(cache, large_files.TOTAL[0], "loop", 1)
    assert bench.track_decode_s() > 0 and bench.track_parse_s() > 0
    skipped = {row[1:] for row in large_files.LargeParquet.track_parse_s.skip_params}
    assert ("loop", 1) not in skipped and ("threads", 5) in skipped and ("processes", 1) in skipped


def test_stac_manager_rows_on_the_standin(cache, standin_at):
    standin_at("c3_current")
    # a directory is read as item JSON files: 5 Parquet files in one are n/a, with the reason
    with pytest.raises(NotImplementedError, match="directory of Parquet files.*No JSON files"):
        large_files.LargeParquetModule().setup(cache, large_files.TOTAL[0], "module", 1)
    for concurrency in large_files.CONCURRENCY:
        run_row(large_files.LargeParquetModule, cache, "module_per_file", concurrency)


def test_a_module_that_drops_items_fails(cache, standin_at, monkeypatch):
    standin_at("c3_current")
    from stac_manager.modules import ingest

    fetch = ingest.IngestModule.fetch

    async def short(self, context):
        async for item in fetch(self, context):
            if not item["id"].endswith("7"):
                yield item
    monkeypatch.setattr(ingest.IngestModule, "fetch", short)
    with pytest.raises(ResultMismatch, match="lost"):
        run_row(large_files.LargeParquetModule, cache, "module_per_file", 5)


def test_expected_items_are_valid_and_distinct():
    expect = largefiles.expect(N)
    assert expect is largefiles.expect(N)  # the checks key their digests on this object
    check = ItemCheck(2 * N, expect=expect)
    check.add_all(expect(j) for j in range(2 * N))
    check.finish()


def test_rows_that_would_not_fit_in_memory_are_na(monkeypatch):
    """At the PRD's sizes 5 files at once hold about 22 GB: n/a with the numbers, not a swapping machine."""
    class Memory:
        available = 10e9
    monkeypatch.setattr(large_files.psutil, "virtual_memory", lambda: Memory)
    large_files.check_memory(110_000, "loop", 1)  # one file: 4.4 GB
    large_files.check_memory(110_000, "threads", 1)
    with pytest.raises(NotImplementedError, match=r"5 file\(s\) of 110,000 items at once hold about 22.0 GB; 10.0 GB"):
        large_files.check_memory(110_000, "threads", 5)
    large_files.check_memory(110_000, "processes", 1)  # a worker's items and their copy here: 8.8 GB
    large_files.check_memory(1000, "processes", 5)
    Memory.available = 8e9
    with pytest.raises(NotImplementedError, match="8.8 GB; 8.0 GB"):
        large_files.check_memory(110_000, "processes", 1)

"""The geoparquet and malformed sources: every strategy, stac-manager on the stand-in, the failures."""

import pytest

from benchmarks import file_ingest
from benchmarks.lib import datacache, itemgen, loaders, sources, subject
from benchmarks.lib.checks import ResultMismatch
from benchmarks.lib.runners import flatten

N = 60


@pytest.fixture(scope="module")
def root(bench_data_dir):
    return datacache.ensure_dataset(N)


# --- geoparquet --------------------------------------------------------------------------------

@pytest.mark.parametrize("strategy,concurrency", [("loop", 1), ("threads", 5), ("processes", 2),
                                                  ("ceiling_parse", 1), ("ceiling_read", 1)])
def test_geoparquet_harness_strategies(root, strategy, concurrency):
    bench = file_ingest.GeoParquet()
    bench.setup(bench.setup_cache(), N, strategy, concurrency)
    try:
        bench.time_run()
    finally:
        bench.teardown()


def test_geoparquet_check_is_not_loosened(root, monkeypatch):
    bench = file_ingest.GeoParquet()
    bench.setup(bench.setup_cache(), N, "loop", 1)
    real = loaders.geoparquet_items

    def rounded(table):  # a reader that loses precision on one item
        items = real(table)
        for item in items:
            if item["id"] == itemgen.item_id(7):
                item["bbox"] = [round(x, 2) for x in item["bbox"]]
        return items

    monkeypatch.setattr(loaders, "geoparquet_items", rounded)
    with pytest.raises(ResultMismatch, match="bench-item-000007 differs from the source: 'bbox'"):
        bench.time_run()


@pytest.mark.parametrize("label", ["c2_old_context", "c3_current"])
def test_geoparquet_module_fails_naming_what_differs(standin_at, label):
    # stac-manager (and the stand-in) read Parquet rows with to_pylist(): on stac-geoparquet
    # those are not items (WKB geometry, flattened properties, datetime objects).
    standin_at(label)
    bench = file_ingest.GeoParquetModule()
    bench.setup(bench.setup_cache(), N, "module", 1)
    try:
        with pytest.raises(ResultMismatch) as info:
            bench.time_run()
    finally:
        bench.teardown()
    message = str(info.value)
    assert "bench-item-000000" in message and "JSON cannot encode" in message
    assert "missing ['properties']" in message and "'datetime'" in message and "'bbox'" in message


# --- malformed files ---------------------------------------------------------------------------

BAD = 3


@pytest.mark.parametrize("strategy,concurrency", [("loop", 1), ("semaphore", 5), ("queue", 5), ("threads", 5),
                                                  ("processes", 2), ("ceiling_parse", 1)])
def test_malformed_every_strategy_delivers_the_good_and_counts_the_bad(root, strategy, concurrency):
    bench = file_ingest.Malformed()
    bench.setup(bench.setup_cache(), N, strategy, concurrency)
    try:
        bench.time_run()
        assert bench.bad_items == BAD == len(itemgen.malformed_files(N))  # the check demanded it
    finally:
        bench.teardown()


def test_only_stac_managers_count_of_bad_files_is_a_measurement():
    """A harness row passes only with the source's count (so it is not measured again); stac-manager's
    own count is the ``MalformedModule`` measurement."""
    assert file_ingest.Malformed.track_bad_items is None
    assert file_ingest.MalformedModule.track_bad_items.unit == "items"


def test_malformed_ceiling_read_has_no_count(root):
    bench = file_ingest.MalformedModule()
    bench.counts = False  # as ceiling_read sets it: it decodes nothing
    with pytest.raises(NotImplementedError, match="cannot tell a bad file"):
        bench.track_bad_items()
    bench = file_ingest.Malformed()
    bench.setup(bench.setup_cache(), N, "ceiling_read", 1)
    try:
        bench.time_run()
        assert bench.bad_items is None
    finally:
        bench.teardown()


def test_a_loader_that_crashes_names_the_file(root):
    units = sources.units("malformed", sources.source_path(root, "malformed"), N)
    with pytest.raises(loaders.MalformedInput, match=r"bench-item-000000-bad000\.json: JSONDecodeError"):
        flatten(map(loaders.load, units))  # was: a JSONDecodeError naming no file


def test_a_loader_that_drops_a_good_file_fails_naming_it(root, monkeypatch):
    bench = file_ingest.Malformed()
    bench.setup(bench.setup_cache(), N, "loop", 1)
    real = loaders.load_counted
    victim = str(sources.source_path(root, "malformed") / f"{itemgen.item_id(9)}.json")

    def drops(unit):
        return ([], [(unit[1], "dropped")]) if unit[1] == victim else real(unit)

    monkeypatch.setattr(loaders, "load_counted", drops)
    with pytest.raises(ResultMismatch, match=r"1 lost \[.*bench-item-000009 \(from .*bench-item-000009\.json\)"):
        bench.time_run()


def test_a_loader_that_counts_a_good_file_as_bad_fails(root, monkeypatch):
    bench = file_ingest.Malformed()
    bench.setup(bench.setup_cache(), N, "loop", 1)
    bench.bad = bench.bad[1:]  # the run now finds one bad file more than the source has
    with pytest.raises(ResultMismatch, match="counted 3 bad files, the source has 2"):
        bench.time_run()


@pytest.mark.parametrize("label", ["c1_no_ingest", "c2_old_context"])
def test_malformed_module_na_where_a_commit_reads_no_directory(standin_at, label):
    standin_at(label)
    bench = file_ingest.MalformedModule()
    with pytest.raises(NotImplementedError):
        bench.setup(bench.setup_cache(), N, "module", 1)


def test_malformed_module_na_without_a_failure_collector(standin_at, monkeypatch):
    standin_at("c3_current")
    monkeypatch.setattr(subject, "failure_collector", lambda: None)
    bench = file_ingest.MalformedModule()
    with pytest.raises(NotImplementedError, match="no FailureCollector"):
        bench.setup(bench.setup_cache(), N, "module", 1)


def _malformed_module(standin_at, label="c3_current", concurrency=1, strategy="module"):
    standin_at(label)
    bench = file_ingest.MalformedModule()
    bench.setup(bench.setup_cache(), N, strategy, concurrency)
    return bench


def test_malformed_module_that_crashes_fails_naming_the_files(standin_at):
    bench = _malformed_module(standin_at)  # the stand-in's json.loads raises on the first bad file
    with pytest.raises(ResultMismatch, match=r"stac-manager raised JSONDecodeError.*3 malformed files "
                                             r"\(bench-item-000000-bad000\.json"):
        bench.time_run()


def _patch_directory_reader(monkeypatch, collect):
    """The stand-in's directory reader made to skip bad files, logging them (as stac-manager does)
    or putting them in the FailureCollector (``collect``)."""
    import json

    import stac_manager.modules.ingest as ingest

    async def read(self, directory, context=None):
        for f in sorted(directory.glob("*.json")):
            try:
                item = json.loads(f.read_text())
                if not isinstance(item, dict) or "geometry" not in item:
                    raise ValueError("not a STAC item")
            except ValueError as exc:
                if collect:
                    self._context.failure_collector.add(f.name, exc, "ingest")
                continue
            yield item

    real_fetch = ingest.IngestModule.fetch

    async def fetch(self, context):
        self._context = context
        async for item in real_fetch(self, context):
            yield item

    monkeypatch.setattr(ingest.IngestModule, "_fetch_directory", read)
    monkeypatch.setattr(ingest.IngestModule, "fetch", fetch)


def test_malformed_module_that_only_logs_fails_loudly(standin_at, monkeypatch):
    bench = _malformed_module(standin_at)
    _patch_directory_reader(monkeypatch, collect=False)
    with pytest.raises(ResultMismatch, match="FailureCollector holds 0 failures .* logs them"):
        bench.time_run()


def test_malformed_module_that_collects_counts_exactly(standin_at, monkeypatch):
    bench = _malformed_module(standin_at)
    _patch_directory_reader(monkeypatch, collect=True)
    bench.time_run()
    assert bench.track_bad_items() == BAD


def test_malformed_module_that_yields_a_bad_file_fails_naming_the_files(standin_at, monkeypatch):
    import json

    async def lenient(self, directory):  # real stac-manager: a JSON array or object is yielded as is
        for f in sorted(directory.glob("*.json")):
            try:
                yield json.loads(f.read_text())
            except ValueError:
                continue

    bench = _malformed_module(standin_at)
    import stac_manager.modules.ingest as ingest
    monkeypatch.setattr(ingest.IngestModule, "_fetch_directory", lenient)
    with pytest.raises(ResultMismatch, match=r"got a list, not an item dict \[reading a directory with 3 "
                                             r"malformed files \(bench-item-000000-bad000\.json"):
        bench.time_run()


def test_a_loader_that_swaps_a_bad_file_for_a_good_one_fails(root, monkeypatch):
    bench = file_ingest.Malformed()
    bench.setup(bench.setup_cache(), N, "loop", 1)
    real = loaders.load_counted
    good = str(sources.source_path(root, "malformed") / f"{itemgen.item_id(9)}.json")

    def swaps(unit):  # counts a good file as bad and skips a bad one silently: the count stays 3
        if unit[1] == good:
            return real(unit)[0], [(unit[1], "wrongly bad")]
        if unit[1] == bench.bad[0]:
            return [], []
        return real(unit)

    monkeypatch.setattr(loaders, "load_counted", swaps)
    with pytest.raises(ResultMismatch, match=r"counted 3 bad files.*good files counted as bad \[.*000009\.json"):
        bench.time_run()

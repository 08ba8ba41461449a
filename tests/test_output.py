"""The output suite on small data against the stand-in stac-manager: exact items on disk, lossy writers caught."""

import json

import pytest

from benchmarks import output
from benchmarks.lib import formats, itemgen, readback, settings
from benchmarks.lib.checks import ResultMismatch

N = 60


@pytest.fixture
def standin_sm(standin_at, tmp_path, monkeypatch):
    """The stand-in's newest commit (c4_phase2) importable as ``stac_manager``; output below tmp."""
    standin_at("c4_phase2")
    monkeypatch.setenv("STAC_BENCH_OUT_DIR", str(tmp_path / "out"))


def _run(cls, *params):
    """setup, one run, teardown; return (benchmark, cache) or None when n/a."""
    bench = cls()
    cache = {N: itemgen.make_items(N)}
    try:
        bench.setup(cache, N, *params)
    except NotImplementedError:
        return None
    try:
        bench.run()
        assert bench.last_wall > 0
        assert bench.track_throughput(N, *params) > 0
    finally:
        bench.teardown(cache, N, *params)
    assert not any(bench_root_leftovers())
    return bench


def bench_root_leftovers():
    return list(settings.out_dir().iterdir())


@pytest.mark.parametrize("buffer_size", [7, 1000])
@pytest.mark.parametrize("cls_name", ["ModuleJson", "ModuleParquet"])
def test_module(standin_sm, cls_name, buffer_size):
    assert _run(getattr(output, cls_name), "module", 1, buffer_size) is not None


@pytest.mark.parametrize("strategy,concurrency,fsync", [
    ("loop", 1, False), ("loop", 1, True), ("threads", 5, False), ("semaphore", 10, True),
    ("queue", 20, False), ("processes", 2, False), ("ceiling_serialise", 1, False),
    ("ceiling_write", 1, False), ("ceiling_write", 1, True),
])
def test_item_files(standin_sm, strategy, concurrency, fsync):
    assert _run(output.ItemFiles, strategy, concurrency, fsync) is not None


@pytest.mark.parametrize("strategy,concurrency,fsync", [
    ("loop", 5, False), ("ceiling_write", 5, False), ("ceiling_serialise", 1, True), ("processes", 999, False),
    ("semaphore", 5, True), ("threads", 50, True),  # fsync only at CONDITION_LEVELS
])
def test_item_files_na(standin_sm, strategy, concurrency, fsync):
    assert _run(output.ItemFiles, strategy, concurrency, fsync) is None


@pytest.mark.parametrize("strategy", ["feature_collection", "ndjson", "parquet", "geoparquet",
                                      "ceiling_serialise", "ceiling_write"])
@pytest.mark.parametrize("fsync", [False, True])
def test_single_file(standin_sm, strategy, fsync):
    bench = _run(output.SingleFile, strategy, 1, fsync)
    if bench is None:
        assert strategy == "ceiling_serialise" and fsync or strategy == "geoparquet"


# --- the checks catch what a broken writer does ------------------------------------------------

def _items():
    return itemgen.make_items(N)


def _lossy_cases(tmp_path):
    items = _items()
    d = tmp_path / "files"
    d.mkdir()
    for item in items[:-1]:  # one lost
        formats.write_item_file((str(d), item, False))
    yield "lost file", lambda: readback.check_item_files(d, N)

    d2 = tmp_path / "mangled"
    d2.mkdir()
    for item in items:
        formats.write_item_file((str(d2), item, False))
    bad = dict(items[0], geometry={"type": "Point", "coordinates": [0, 0]})
    (d2 / f"{items[0]['id']}.json").write_text(json.dumps(bad))
    yield "mangled sample", lambda: readback.check_item_files(d2, N, keys=readback.SURVIVE)

    d3 = tmp_path / "stray"
    d3.mkdir()
    for item in items:
        formats.write_item_file((str(d3), item, False))
    (d3 / "x.json.tmp").write_text("{}")
    yield "stray temp file", lambda: readback.check_item_files(d3, N)

    # Two Parquet flushes to one file name: the second overwrites the first.
    d4 = tmp_path / "parquet"
    d4.mkdir()
    formats.write_parquet(items[:30], d4 / "items_20260101_000000.parquet")
    formats.write_parquet(items[30:], d4 / "items_20260101_000000.parquet")
    yield "overwritten parquet batch", lambda: readback.check_parquet_files(d4, N)

    nd = tmp_path / "dup.ndjson"
    formats.write_ndjson(items[:-1] + items[:1], nd)
    yield "duplicated ndjson line", lambda: readback.check_ndjson(nd, N)

    fc = tmp_path / "short.json"
    formats.write_feature_collection(items[1:], fc)
    yield "short feature collection", lambda: readback.check_feature_collection(fc, N)

    # Single faults the old spread sample (items 0, 3, 6, 9, ...) never saw: item 7.
    d5 = tmp_path / "unsampled"
    d5.mkdir()
    for item in items:
        formats.write_item_file((str(d5), item, False))
    (d5 / f"{items[7]['id']}.json").write_text(json.dumps(dict(items[7], assets={})))
    yield "empty assets outside the sample", lambda: readback.check_item_files(d5, N, keys=readback.SURVIVE)

    nd2 = tmp_path / "full-plus-dup.ndjson"
    formats.write_ndjson(items + items[7:8], nd2)
    yield "full ndjson plus one duplicate", lambda: readback.check_ndjson(nd2, N)

    fc2 = tmp_path / "null-bbox.json"
    formats.write_feature_collection(items[:7] + [dict(items[7], bbox=None)] + items[8:], fc2)
    yield "null bbox outside the sample", lambda: readback.check_feature_collection(fc2, N)

    pq2 = tmp_path / "changed.parquet"
    changed = [dict(i) for i in items]
    changed[7] = dict(items[7], properties={**items[7]["properties"], "platform": "landsat-9"})
    formats.write_parquet(changed, pq2)
    yield "changed property outside the sample", lambda: readback.check_parquet_files(pq2, N, keys=readback.SURVIVE)

    arr = tmp_path / "array.json"
    arr.write_text(json.dumps(items))
    yield "a JSON array, not a FeatureCollection", lambda: readback.check_feature_collection(arr, N)

    gp = tmp_path / "geo.parquet"
    formats.write_geoparquet(changed, gp)
    yield "geoparquet: changed property", lambda: readback.check_geoparquet(gp, N)

    d6 = tmp_path / "relinked-broken"
    d6.mkdir()
    for item in items:
        formats.write_item_file((str(d6), formats.relative_links(item), False))
    (d6 / f"{items[7]['id']}.json").write_text(json.dumps(dict(formats.relative_links(items[7]), stac_version=None)))
    yield "invalid STAC outside SURVIVE", lambda: readback.check_item_files(d6, N, keys=readback.SURVIVE)


def test_checks_catch_lossy_writers(standin_sm, tmp_path):
    for what, check in _lossy_cases(tmp_path):
        with pytest.raises(ResultMismatch):
            check()
            pytest.fail(f"{what} not caught")


def test_checks_pass_what_writers_write_faithfully(tmp_path):
    """The allowances: OutputModule's links, rustac's stac_version and spelling of instants."""
    items = _items()
    d = tmp_path / "relinked"
    d.mkdir()
    for item in items:
        formats.write_item_file((str(d), formats.relative_links(item), False))
    readback.check_item_files(d, N, keys=readback.SURVIVE)
    formats.write_geoparquet(items, tmp_path / "geo.parquet")
    readback.check_geoparquet(tmp_path / "geo.parquet", N)


def test_module_parquet_name_collision_fails(standin_sm, monkeypatch):
    """A module whose Parquet flushes share one file name (as stac-manager's per-second names can) fails."""
    import stac_manager.modules.output as sm_output


    def same_name_flush(self):
        from pathlib import Path

        import pyarrow as pa
        import pyarrow.parquet as pq
        if not self.buffer:
            return
        d = Path(self.config.base_dir) / "bench-collection" / "items"
        d.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(self.buffer), str(d / "items_20260101_000000.parquet"))
        self.items_written += len(self.buffer)
        self.buffer.clear()

    async def flush(self):
        same_name_flush(self)

    monkeypatch.setattr(sm_output.OutputModule, "_flush", flush)
    bench = output.ModuleParquet()
    cache = {N: _items()}
    bench.setup(cache, N, "module", 1, 1000)  # one flush: passes
    bench.teardown(cache, N, "module", 1, 1000)
    bench.setup(cache, N, "module", 1, 7)
    try:
        with pytest.raises(ResultMismatch, match="lost"):
            bench.run()
    finally:
        bench.teardown(cache, N, "module", 1, 7)

"""The strategy layer, the checks, the version shims and the file-ingest suite."""

import multiprocessing
import os
import sys
import time

import pytest

import benchmarks
from benchmarks import file_ingest
from benchmarks.lib import (
    checks,
    datacache,
    itemgen,
    loaders,
    runners,
    scenario,
    settings,
    sources,
    subject,
)
from benchmarks.lib.checks import ResultMismatch, check_items
from benchmarks.lib.runners import Runner, flatten

N = 60
#: Sources whose every file is an item (``malformed`` has bad files among them).
ITEM_SOURCES = [s.name for s in sources.TABLE if s.name != "malformed"]


def as_json(items):
    """Items as the check sees them: canonical JSON, timestamps spelled one way."""
    return [itemgen.canonical(checks.canonical_datetimes(item)) for item in items]


@pytest.fixture(scope="module")
def root(bench_data_dir):
    return datacache.ensure_dataset(N)


@pytest.mark.parametrize("source", ITEM_SOURCES)
@pytest.mark.parametrize("strategy,concurrency", [("loop", 1), ("semaphore", 5), ("queue", 5),
                                                  ("threads", 5), ("processes", 2)])
def test_every_strategy_yields_the_loop_items(root, source, strategy, concurrency):
    units = sources.units(source, sources.source_path(root, source), N)
    runner = Runner(strategy, concurrency)
    try:
        items = flatten(runner.map(loaders.load, units))
    finally:
        runner.close()
    # same items, same order, equal after decoding (geoparquet: up to the spelling of instants)
    assert as_json(items) == as_json(itemgen.make_items(N))
    if source != "geoparquet":
        assert items == itemgen.make_items(N)


@pytest.mark.parametrize("strategy,concurrency", [("loop", 1), ("semaphore", 5), ("queue", 5),
                                                  ("threads", 5), ("processes", 2)])
def test_each_streams_every_result_once(root, strategy, concurrency):
    units = sources.units("ndjson", sources.source_path(root, "ndjson"), N)
    runner = Runner(strategy, concurrency)
    got = []
    try:
        assert runner.each(loaders.load, units, got.append) is None  # keeps nothing itself
    finally:
        runner.close()
    assert sorted(got, key=lambda batch: batch[0]["id"]) == runner_free_batches(units)


def runner_free_batches(units):
    return [loaders.load(u) for u in units]


def test_item_check_streams_and_keeps_one_byte_per_item():
    items = iter(itemgen.make_items(N))  # a one-shot iterator: nothing to look at twice
    check = checks.ItemCheck(N, "stream")
    check.add_all(items)
    check.finish()
    assert len(check.seen) == N and not hasattr(check, "kept")
    with pytest.raises(ResultMismatch, match="not an item dict"):
        checks.ItemCheck(N).add(["not", "a", "dict"])


@pytest.mark.parametrize("source", ITEM_SOURCES)
def test_ceilings_cover_the_whole_source(root, source):
    units = sources.ceiling_units(source, sources.source_path(root, source), N)
    assert as_json(flatten(map(loaders.load_orjson, units))) == as_json(itemgen.make_items(N))
    on_disk = sum(p.stat().st_size for p in sources.source_path(root, source).rglob("*.json")) \
        if source in ("directory", "collection") else sources.source_path(root, source).stat().st_size
    if source == "collection":
        on_disk -= (sources.source_path(root, source) / "collection.json").stat().st_size
    assert sum(map(loaders.read_bytes, units)) == on_disk


def test_asyncio_strategies_really_run_n_at_once():
    # 10 units of 0.1 s: 5 workers take ~0.2 s, not 1 s; and no more than 5 ever overlap.
    for strategy in ("semaphore", "queue", "threads"):
        runner = Runner(strategy, 5)
        try:
            spans = runner.map(_sleepy, range(10))
        finally:
            runner.close()
        assert max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans) == 5, strategy


def test_amap_runs_coroutines_with_bounded_concurrency():
    import asyncio

    live = {"now": 0, "max": 0}

    async def fetch(i):
        live["now"] += 1
        live["max"] = max(live["max"], live["now"])
        await asyncio.sleep(0.01)
        live["now"] -= 1
        return i

    for strategy in ("loop", "semaphore", "queue"):
        live["max"] = 0
        runner = Runner(strategy, 1 if strategy == "loop" else 4)
        assert runner.amap(fetch, range(12)) == list(range(12))
        assert live["max"] == (1 if strategy == "loop" else 4)
    with pytest.raises(NotImplementedError):
        Runner("threads", 2).amap(fetch, [1])


def _sleepy(_):
    start = time.perf_counter()
    time.sleep(0.1)
    return start, time.perf_counter()


def test_levels_that_make_no_sense_are_na():
    with pytest.raises(NotImplementedError):
        Runner("loop", 5)
    with pytest.raises(NotImplementedError):
        Runner("processes", runners.MAX_PROCESSES + 1)
    with pytest.raises(ValueError):
        Runner("warp", 1)


def test_process_pool_is_spawned_and_closed():
    runner = Runner("processes", 2)
    procs = multiprocessing.active_children()
    assert len(procs) >= 2
    runner.close()
    runner.close()  # idempotent (teardown after a failed run)
    assert not any(p.is_alive() for p in procs)


def test_check_items_catches_lost_duplicated_and_mangled():
    items = itemgen.make_items(N)
    assert check_items(list(reversed(items)), N) is not None  # order does not matter
    with pytest.raises(ResultMismatch, match="1 lost"):
        check_items(items[1:], N)
    with pytest.raises(ResultMismatch, match="1 duplicated"):
        check_items(items[:-1] + [items[0]], N)
    broken = [dict(item) for item in items]
    del broken[5]["geometry"]
    with pytest.raises(ResultMismatch, match=r"differs from the source: missing \['geometry'\]"):
        check_items(broken, N)
    mangled = [dict(item) for item in items]
    mangled[0] = dict(mangled[0], bbox=[0, 0, 0, 0])
    with pytest.raises(ResultMismatch, match="differs from the source"):
        check_items(mangled, N)
    check_items(mangled, N, exact=False)  # deprecated: ids and structure only
    with pytest.raises(ResultMismatch, match="not a STAC item"):
        check_items(broken, N, exact=False)


def test_memory_increment_counts_child_processes():
    def child_allocates():
        ctx = multiprocessing.get_context("spawn")
        proc = ctx.Process(target=_hold_memory, args=(200,))
        proc.start()
        proc.join()

    assert scenario.peak_rss_increment_mb(child_allocates) > 150
    assert scenario.peak_rss_increment_mb(lambda: None) < 50


def test_memory_increment_sees_a_peak_that_holds_the_gil():
    """200 MB made and freed inside one C call (the GIL held throughout, as ``json.loads`` holds it
    while a FeatureCollection's items exist): the sampler thread cannot run; the kernel's peak sees it."""
    assert scenario.peak_rss_increment_mb(lambda: len(b"x" * (200 << 20))) > 150


def _hold_memory(mb):
    block = bytearray(mb * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    time.sleep(0.3)


# --- shims against the stand-in's history ------------------------------------------------

def test_no_ingest_module_is_na(standin_at):
    standin_at("c1_no_ingest")
    with pytest.raises(NotImplementedError, match="stac_manager.modules.ingest"):
        subject.ingest_module()
    ctx = subject.make_context()  # the old context path still works
    assert type(ctx).__module__ == "stac_manager.context" and ctx.data == {}


def test_old_context_path_and_files_only(standin_at, root):
    standin_at("c2_old_context")
    conf = subject.ingest_config({"mode": "file", "source": str(root / "items.json")}, "module", 1)
    assert conf == {"mode": "file", "source": str(root / "items.json")}
    check_items(subject.ingest_items(conf), N)
    with pytest.raises(NotImplementedError, match="cannot ingest a directory"):
        subject.probe_ingest({"mode": "file", "source": str(root / "items")}, "a directory")
    with pytest.raises(NotImplementedError, match="concurrency"):
        subject.ingest_config({"mode": "file", "source": "x"}, "module", 5)


def test_phase2_keys_only_where_declared(standin_at, tmp_path):
    standin_at("c3_current")
    with pytest.raises(NotImplementedError, match="worker_strategy"):
        subject.ingest_config({"mode": "file", "source": "x"}, "module_queue", 1)
    assert subject.make_context().failure_collector is not None
    cp = subject.checkpoint_manager(tmp_path)
    assert (tmp_path / "bench").is_dir() and hasattr(cp, "mark_completed")
    standin_at("c4_phase2")
    conf = subject.ingest_config({"mode": "file", "source": "x"}, "module_queue", 5)
    assert conf["concurrency"] == 5 and conf["worker_strategy"] == "queue"


@pytest.mark.parametrize("label,strategy,concurrency,expect", [
    ("c2_old_context", "module", 1, "n/a"),
    ("c3_current", "module", 1, "ok"),
    ("c3_current", "module", 5, "n/a"),
    ("c4_phase2", "module", 5, "ok"),
    ("c4_phase2", "module_queue", 5, "ok"),
])
def test_directory_benchmark_on_the_standin(standin_at, label, strategy, concurrency, expect):
    standin_at(label)
    bench = file_ingest.DirectoryModule()
    roots = bench.setup_cache()
    if expect == "n/a":
        with pytest.raises(NotImplementedError):
            bench.setup(roots, N, strategy, concurrency)
        return
    bench.setup(roots, N, strategy, concurrency)
    try:
        bench.time_run()
        assert_measures_one_run(bench)
    finally:
        bench.teardown()


def assert_measures_one_run(bench):
    """``track_mem_mb`` measures exactly one complete run of the benchmark (a float, in MB)."""
    runs, run = [], bench.run
    bench.run = lambda: runs.append(run()) or runs[-1]
    value = bench.track_mem_mb()
    bench.run = run
    assert isinstance(value, float) and len(runs) == 1, (value, len(runs))


def test_a_lossy_module_fails_loudly(standin_at, monkeypatch):
    standin_at("c3_current")
    bench = file_ingest.DirectoryModule()
    roots = bench.setup_cache()
    bench.setup(roots, N, "module", 1)
    real = subject.ingest_each

    def lossy(config, consume, context=None):  # drops the last item it sees
        seen = []
        real(config, seen.append, context)
        for item in seen[:-1]:
            consume(item)

    monkeypatch.setattr(file_ingest, "ingest_each", lossy)
    with pytest.raises(ResultMismatch, match="1 lost"):
        bench.time_run()


def test_every_benchmark_class_has_an_explicit_version():
    import importlib
    import inspect
    import pkgutil

    for info in pkgutil.iter_modules(benchmarks.__path__):
        module = importlib.import_module(f"benchmarks.{info.name}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or name.startswith("_") or inspect.isabstract(cls):
                continue
            if any(m.startswith(("time_", "peakmem_", "track_", "mem_")) for m in dir(cls)):
                assert "version" in vars(cls) or any("version" in vars(b) for b in cls.__mro__[1:-1]), name


def test_subject_and_harness_rows_live_in_separate_classes():
    # A history run (subject classes) must never record a harness row as n/a, and the
    # reverse: each strategy lives in exactly one class per source.
    from benchmarks.lib import strategies
    for harness, module in [(file_ingest.Directory, file_ingest.DirectoryModule),
                             (file_ingest.Parquet, file_ingest.ParquetModule)]:
        assert set(harness.params[1]).isdisjoint(module.params[1])
        assert {strategies.kind(s) for s in module.params[1]} == {strategies.SUBJECT}
        assert {strategies.kind(s) for s in harness.params[1]} <= set(strategies.CONTROL_KINDS)
        assert harness.param_names == module.param_names
        assert getattr(module, "profile", None) == "history" and getattr(harness, "profile", None) is None


def test_control_is_the_plain_loop(standin_at):
    bench = file_ingest.Control()
    roots = bench.setup_cache()
    bench.setup(roots, N, "loop", 1)
    try:
        bench.time_run()
    finally:
        bench.teardown()


# --- the cache under the suite: damaged data is healed, never blamed on a strategy or commit ---

def _item_file(root, i=4):
    return sources.source_path(root, "directory") / f"{itemgen.item_id(i)}.json"


def test_setup_cache_heals_a_truncated_probe_dataset(standin_at):
    standin_at("c3_current")
    bench = file_ingest.DirectoryModule()
    probe_root = datacache.ensure_dataset(settings.PROBE_ITEMS)
    victim = _item_file(probe_root, 1)
    victim.write_bytes(victim.read_bytes()[:50])  # was: `module` n/a, the commit blamed
    roots = bench.setup_cache()
    bench.setup(roots, N, "module", 1)
    try:
        bench.time_run()
    finally:
        bench.teardown()


def test_data_damaged_after_setup_cache_fails_setup_not_the_strategy(root):
    bench = file_ingest.Directory()
    roots = bench.setup_cache()
    victim = _item_file(root)
    data = victim.read_bytes()
    try:
        victim.write_bytes(data[:-10])
        with pytest.raises(datacache.DatasetError, match=victim.name):
            bench.setup(roots, N, "loop", 1)
    finally:
        victim.write_bytes(data)


@pytest.mark.parametrize("source", ["directory", "ndjson", "parquet", "collection"])
def test_ceiling_read_checks_what_it_read_against_the_manifest(root, source):
    bench = file_ingest.Directory()
    bench.source = source
    roots = bench.setup_cache()
    bench.setup(roots, N, "ceiling_read", 1)
    bench.time_run()
    path = sources.source_path(root, source)
    victim = _item_file(root) if source == "directory" else (
        path / "items" / f"{itemgen.item_id(4)}.json" if source == "collection" else path)
    data = victim.read_bytes()
    try:
        victim.write_bytes(data[:-10])  # was: passed (the bytes compared with themselves)
        with pytest.raises(ResultMismatch, match="the manifest says"):
            bench.time_run()
    finally:
        victim.write_bytes(data)
        bench.teardown()


def test_process_workers_import_the_suite_before_a_shadowing_module(tmp_path, monkeypatch):
    """asv's runner can leave its own folder (with an ``asv/benchmarks.py``) at ``sys.path[0]``: a
    spawned worker must still find this suite's ``benchmarks`` package, or every processes row fails."""
    (tmp_path / "benchmarks.py").write_text("raise ImportError('the shadow, not the suite')\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    runner = Runner("processes", 2)
    try:
        pids = runner.map(runners._noop, range(4))
    finally:
        runner.close()
    assert len(pids) == 4 and os.getpid() not in pids

"""The seeded generator and every writer."""

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from stac_pydantic import Collection, Item

from benchmarks.lib import checks, datacache, itemgen, sources
from benchmarks.lib.settings import SCALES, scale


def test_items_are_seeded_and_independent_of_order():
    assert itemgen.make_item(7) == itemgen.make_items(10)[7]
    assert itemgen.make_item(7) == itemgen.make_item(7)
    assert itemgen.make_item(7) != itemgen.make_item(8)
    assert itemgen.make_item(7, seed=1) != itemgen.make_item(7)


def test_items_are_valid_stac_and_about_5kb():
    items = itemgen.make_items(50)
    for item in items[::7]:
        Item.model_validate(item)
    sizes = [len(json.dumps(item, separators=(",", ":"))) for item in items]
    assert 3500 < min(sizes) and max(sizes) < 6500
    assert all(len(item["assets"]) == 5 for item in items)
    assert len({item["properties"]["datetime"] for item in items}) == 50
    Collection.model_validate(itemgen.make_collection(items))


PINNED_FINGERPRINT = "cc73ede3997ed3b2b92b44db93ce9903b527249f5eb2dbf1d8bfba585ec136f3"


def test_generator_is_pinned():
    # Changing the bytes must come with a GENERATOR_VERSION bump (it names the cache).
    digest = itemgen.fingerprint(itemgen.make_items(20))
    assert digest == PINNED_FINGERPRINT, digest


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return datacache.write_dataset(tmp_path_factory.mktemp("ds"), 60), itemgen.make_items(60)


def test_directory_and_collection_writers(dataset):
    root, items = dataset
    files = sorted((root / "items").glob("*.json"))
    assert [json.loads(f.read_text()) for f in files] == items
    coll = root / "collection"
    assert json.loads((coll / "collection.json").read_text())["id"] == itemgen.COLLECTION_ID
    assert [json.loads(f.read_text()) for f in sorted((coll / "items").glob("*.json"))] == items


def test_feature_collection_and_ndjson_writers(dataset):
    root, items = dataset
    fc = json.loads((root / "items.json").read_text())
    assert fc["type"] == "FeatureCollection" and fc["features"] == items
    lines = (root / "items.ndjson").read_text().splitlines()
    assert [json.loads(line) for line in lines] == items


def test_parquet_writer_round_trips_exactly(dataset):
    root, items = dataset
    pf = pq.ParquetFile(root / "items.parquet")
    assert pf.num_row_groups == 60 // itemgen.unit_size(60)
    assert pf.read().to_pylist() == items


def test_ensure_dataset_is_cached_and_identical(tmp_path, monkeypatch):
    monkeypatch.setenv("STAC_BENCH_DATA_DIR", str(tmp_path))
    first = datacache.ensure_dataset(12)
    digest = _tree_digest(first)
    stamp = (first / "dataset.json").stat().st_mtime_ns
    again = datacache.ensure_dataset(12)
    assert again == first and (again / "dataset.json").stat().st_mtime_ns == stamp
    # A fresh cache writes the same bytes.
    monkeypatch.setenv("STAC_BENCH_DATA_DIR", str(tmp_path / "other"))
    assert _tree_digest(datacache.ensure_dataset(12)) == digest
    assert not list(first.parent.glob(".tmp-*")), "temporary directories left behind"


def _tree_digest(root):
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_scale_knob(monkeypatch):
    monkeypatch.setenv("STAC_BENCH_SCALE", "prd")
    assert scale() == SCALES["prd"] == 10000
    monkeypatch.setenv("STAC_BENCH_SCALE", "250")
    assert scale() == 250
    monkeypatch.setenv("STAC_BENCH_SCALE", "huge")
    with pytest.raises(ValueError, match="STAC_BENCH_SCALE"):
        scale()


# --- the verified cache ----------------------------------------------------------------------

@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private cache with one 12-item dataset: ``(root, n)``."""
    monkeypatch.setenv("STAC_BENCH_DATA_DIR", str(tmp_path))
    return datacache.ensure_dataset(12), 12


def _heals(root, n, damage):
    """``damage(root)`` makes the dataset fail verification; ensure_dataset restores the exact bytes."""
    digest = _tree_digest(root)
    damage(root)
    with pytest.raises(datacache.DatasetError):
        datacache.verify(root, n)
    assert datacache.ensure_dataset(n) == root
    assert _tree_digest(root) == digest
    datacache.verify(root, n)


def test_a_deleted_item_file_is_noticed_and_regenerated(cache):
    _heals(*cache, lambda root: (root / "items" / f"{itemgen.item_id(3)}.json").unlink())


def test_a_truncated_file_is_noticed_and_regenerated(cache):
    def truncate(root):
        path = root / "items.ndjson"
        path.write_bytes(path.read_bytes()[:-100])
        with pytest.raises(datacache.DatasetError, match="changed size"):
            datacache.verify(root, 12, deep=False)  # sizes alone see it
    _heals(*cache, truncate)


def test_same_size_corruption_is_noticed(cache):
    def flip(root):
        path = root / "items" / f"{itemgen.item_id(5)}.json"
        data = bytearray(path.read_bytes())
        data[100] ^= 0x01
        path.write_bytes(bytes(data))
    _heals(*cache, flip)


def test_an_extra_file_is_noticed(cache):
    _heals(*cache, lambda root: (root / "items" / "stray.json").write_text("{}"))


def test_a_lying_manifest_is_not_accepted(cache):
    def lie(root):
        body = json.loads((root / "dataset.json").read_text())
        body["n_items"] = 5
        (root / "dataset.json").write_text(json.dumps(body))
    _heals(*cache, lie)


def test_a_consistent_lie_is_not_accepted(cache):
    # A manifest rewritten to match a truncated dataset (its own digest recomputed) still
    # lists fewer files than an n-item dataset has.
    def rewrite(root):
        (root / "items" / f"{itemgen.item_id(11)}.json").unlink()
        datacache.write_manifest(root, 12)
    _heals(*cache, rewrite)


def test_a_folder_without_manifest_is_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("STAC_BENCH_DATA_DIR", str(tmp_path))
    final = datacache.data_root() / "n12"
    final.mkdir(parents=True)
    (final / "half-written.json").write_text("{")
    root = datacache.ensure_dataset(12)  # was: ENOTEMPTY on every call
    assert root == final and not (root / "half-written.json").exists()
    datacache.verify(root, 12)


def test_abandoned_temporary_folders_are_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("STAC_BENCH_DATA_DIR", str(tmp_path))
    parent = datacache.data_root()
    parent.mkdir(parents=True)
    dead = _dead_pid()
    (parent / f".tmp-{dead}-n12-abc").mkdir()                  # its process is gone
    old = parent / f".tmp-{os.getpid()}-n12-old"                # alive, but hours old
    old.mkdir()
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    (parent / f".tmp-{os.getpid()}-n12-live").mkdir()           # a generation under way
    (parent / f".old-{dead}-n12-x").mkdir()
    datacache.ensure_dataset(12)
    assert sorted(p.name for p in parent.glob(".*-*") if p.is_dir()) == [f".tmp-{os.getpid()}-n12-live"]


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_generation_leaves_nothing_that_blocks_the_next(tmp_path, monkeypatch):
    monkeypatch.setenv("STAC_BENCH_DATA_DIR", str(tmp_path))
    code = ("import os, sys; sys.path.insert(0, %r); from benchmarks.lib import datacache\n"
            "datacache.write_manifest = lambda *a: os._exit(9)\n"
            "datacache.ensure_dataset(12)") % str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, STAC_BENCH_PRELOAD="0")
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 9
    parent = datacache.data_root()
    assert list(parent.glob(".tmp-*")) and not (parent / "n12").exists()
    root = datacache.ensure_dataset(12)
    datacache.verify(root, 12)
    assert not list(parent.glob(".tmp-*"))


def test_check_source_is_a_cheap_size_check(cache):
    root, _ = cache
    datacache.check_source(root, "directory")
    path = root / "items.json"
    path.write_bytes(path.read_bytes()[:10])
    datacache.check_source(root, "directory")  # another source: untouched
    with pytest.raises(datacache.DatasetError, match="items.json"):
        datacache.check_source(root, "feature_collection")


def test_stored_digests_are_the_canonical_items(cache):
    root, n = cache
    assert datacache.read_digests(root) == [(itemgen.item_digest(itemgen.make_item(i)), itemgen.native_digest(itemgen.make_item(i)))
                                          for i in range(n)]
    manifest = json.loads((root / "dataset.json").read_text())
    assert manifest["files"][datacache.DIGESTS][0] == 2 * n * itemgen.DIGEST_SIZE


# --- the geoparquet and malformed sources ---------------------------------------------------

def test_geoparquet_source_is_rustacs_layout_with_the_items_version(dataset):
    import rustac

    root, items = dataset
    path = sources.source_path(root, "geoparquet")
    meta = pq.ParquetFile(path).metadata
    assert {b"geo", b"stac-geoparquet"} <= set(meta.metadata)
    assert meta.num_row_groups == 60 // itemgen.unit_size(60)
    table = pq.read_table(path)
    assert set(table.column("stac_version").to_pylist()) == {"1.0.0"}
    assert table.schema.field("geometry").type == pa_binary()
    back = rustac.read_sync(str(path))["features"]
    assert [itemgen.canonical(checks.canonical_datetimes(b)) for b in back] == \
        [itemgen.canonical(i) for i in items]


def pa_binary():
    import pyarrow as pa
    return pa.binary()


def test_malformed_source_mixes_five_percent_bad_files(dataset):
    root, items = dataset
    path = sources.source_path(root, "malformed")
    bad = itemgen.malformed_files(60)
    assert len(bad) == 3 and sorted(set(bad.values())) == sorted(itemgen.MALFORMED_KINDS)
    assert len(itemgen.malformed_files(1000)) == 50
    assert [json.loads((path / f"{i['id']}.json").read_text()) for i in items] == items
    for name, kind in bad.items():
        data = (path / name).read_bytes()
        if kind == "truncated JSON":
            with pytest.raises(ValueError):
                json.loads(data)
        elif kind == "a JSON array":
            assert isinstance(json.loads(data), list)
        else:
            assert "geometry" not in json.loads(data)


RACER = """
import os, sys, time
sys.path.insert(0, {root!r})
from benchmarks.lib import datacache

real = datacache.write_dataset


def slow(path, n):
    print("generated", flush=True)
    time.sleep(1.0)  # long enough for the other process to reach the lock meanwhile
    return real(path, n)


datacache.write_dataset = slow
print("ready", flush=True)
while not os.path.exists({go!r}):
    time.sleep(0.01)
datacache.ensure_dataset(12)
"""


def test_two_processes_ensuring_one_dataset_generate_it_once(tmp_path, monkeypatch):
    """Two asv processes ask for the same missing dataset at once: the lock, and the check again
    under it, make one of them generate it and the other use it."""
    monkeypatch.setenv("STAC_BENCH_DATA_DIR", str(tmp_path / "data"))
    go = tmp_path / "go"
    script = RACER.format(root=str(Path(__file__).resolve().parents[1]), go=str(go))
    env = dict(os.environ, STAC_BENCH_PRELOAD="0")
    racers = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
              for _ in range(2)]
    try:
        assert [p.stdout.readline().strip() for p in racers] == ["ready", "ready"]
        go.touch()
        outs = [p.communicate(timeout=120)[0] for p in racers]
    finally:
        for p in racers:
            p.kill()
    assert [p.returncode for p in racers] == [0, 0]
    assert "".join(outs).count("generated") == 1, outs
    datacache.verify(datacache.data_root() / "n12", 12)

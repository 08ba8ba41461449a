"""The seeded generator and every writer."""

import hashlib
import json

import pyarrow.parquet as pq
import pytest
from stac_pydantic import Collection, Item

from benchmarks import SCALES, _scale, datagen


def test_items_are_seeded_and_independent_of_order():
    assert datagen.make_item(7) == datagen.make_items(10)[7]
    assert datagen.make_item(7) == datagen.make_item(7)
    assert datagen.make_item(7) != datagen.make_item(8)
    assert datagen.make_item(7, seed=1) != datagen.make_item(7)


def test_items_are_valid_stac_and_about_5kb():
    items = datagen.make_items(50)
    for item in items[::7]:
        Item.model_validate(item)
    sizes = [len(json.dumps(item, separators=(",", ":"))) for item in items]
    assert 3500 < min(sizes) and max(sizes) < 6500
    assert all(len(item["assets"]) == 5 for item in items)
    assert len({item["properties"]["datetime"] for item in items}) == 50
    Collection.model_validate(datagen.make_collection(items))


PINNED_FINGERPRINT = "cc73ede3997ed3b2b92b44db93ce9903b527249f5eb2dbf1d8bfba585ec136f3"


def test_generator_is_pinned():
    # Changing the bytes must come with a GENERATOR_VERSION bump (it names the cache).
    digest = datagen.fingerprint(datagen.make_items(20))
    assert digest == PINNED_FINGERPRINT, digest


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return datagen.write_dataset(tmp_path_factory.mktemp("ds"), 60), datagen.make_items(60)


def test_directory_and_collection_writers(dataset):
    root, items = dataset
    files = sorted((root / "items").glob("*.json"))
    assert [json.loads(f.read_text()) for f in files] == items
    coll = root / "collection"
    assert json.loads((coll / "collection.json").read_text())["id"] == datagen.COLLECTION_ID
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
    assert pf.num_row_groups == 60 // datagen.unit_size(60)
    assert pf.read().to_pylist() == items


def test_ensure_dataset_is_cached_and_identical(tmp_path, monkeypatch):
    monkeypatch.setenv("STAC_BENCH_DATA_DIR", str(tmp_path))
    first = datagen.ensure_dataset(12)
    digest = _tree_digest(first)
    stamp = (first / "dataset.json").stat().st_mtime_ns
    again = datagen.ensure_dataset(12)
    assert again == first and (again / "dataset.json").stat().st_mtime_ns == stamp
    # A fresh cache writes the same bytes.
    monkeypatch.setenv("STAC_BENCH_DATA_DIR", str(tmp_path / "other"))
    assert _tree_digest(datagen.ensure_dataset(12)) == digest
    assert not list(first.parent.glob(".n12-*")), "temporary directories left behind"


def _tree_digest(root):
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_scale_knob(monkeypatch):
    monkeypatch.setenv("STAC_BENCH_SCALE", "prd")
    assert _scale() == SCALES["prd"] == 10000
    monkeypatch.setenv("STAC_BENCH_SCALE", "250")
    assert _scale() == 250
    monkeypatch.setenv("STAC_BENCH_SCALE", "huge")
    with pytest.raises(ValueError, match="STAC_BENCH_SCALE"):
        _scale()

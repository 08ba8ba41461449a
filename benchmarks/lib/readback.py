"""Read back what a writer left on disk and check every item (``checks.ItemCheck``).

The count and id set must be exact (a lost, duplicated or overwritten item fails), every item
must equal the expected one on the keys that must survive (``SURVIVE``), and be valid STAC.
A stray file fails too.
"""

import os
from pathlib import Path

import orjson

from .checks import ItemCheck, ResultMismatch, canonical_datetimes, exact

#: What must survive any writer; stac-manager's OutputModule may legitimately rewrite ``links``.
SURVIVE = ("type", "id", "collection", "geometry", "bbox", "properties", "assets")


def _fail(label, msg):
    raise ResultMismatch(f"{label}: {msg}" if label else msg)


def _check(n_items, label, expect, keys, loose_props, normalise=None, origin=None, stand_in=False):
    return ItemCheck(n_items, label, expect=expect, keys=keys, loose_props=loose_props,
                     normalise=normalise, origin=origin, stand_in=stand_in)


def check_item_files(root, n_items, label="", expect=exact, keys=None, loose_props=(), stand_in=False):
    """Per-item JSON files anywhere below ``root`` (``collection.json`` aside): every item checked."""
    found, stray = {}, []
    for dirpath, _, names in os.walk(root):
        for name in names:
            if name == "collection.json":
                continue
            if name.endswith(".json"):
                found.setdefault(name[:-5], []).append(os.path.join(dirpath, name))
            else:
                stray.append(name)
    if stray:
        _fail(label, f"{len(stray)} stray files on disk, e.g. {sorted(stray)[:3]}")
    check = _check(n_items, label, expect, keys, loose_props,
                   origin=lambda iid: ", ".join(found.get(iid, ["?"])), stand_in=stand_in)
    for name, paths in found.items():
        for path in paths:
            item = orjson.loads(Path(path).read_bytes())
            if isinstance(item, dict) and item.get("id") != name:
                _fail(label, f"{path} holds item {item.get('id')!r}")
            check.add(item)
    check.finish()


def check_parquet_files(root, n_items, label="", expect=exact, keys=None, loose_props=()):
    """``root`` (a file) or every ``*.parquet`` below it: every row checked as an item."""
    import pyarrow.parquet as pq

    root = Path(root)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    stray = [p.name for p in files if p.suffix != ".parquet" and p.name != "collection.json"]
    if stray:
        _fail(label, f"{len(stray)} stray files on disk, e.g. {stray[:3]}")
    check = _check(n_items, label, expect, keys, loose_props)
    for path in (p for p in files if p.suffix == ".parquet"):
        check.add_all(pq.read_table(path).to_pylist())
    check.finish()


def check_ndjson(path, n_items, label="", expect=exact, keys=None, loose_props=()):
    check = _check(n_items, label, expect, keys, loose_props)
    for line in Path(path).read_bytes().splitlines():
        check.add(orjson.loads(line))
    check.finish()


def check_feature_collection(path, n_items, label="", expect=exact, keys=None, loose_props=()):
    doc = orjson.loads(Path(path).read_bytes())
    if not isinstance(doc, dict) or not isinstance(doc.get("features"), list):
        _fail(label, f"{path} is not a FeatureCollection")
    check = _check(n_items, label, expect, keys, loose_props)
    check.add_all(doc["features"])
    check.finish()


def check_geoparquet(path, n_items, label="", expect=exact, keys=None, loose_props=()):
    """A stac-geoparquet file read back by rustac: every item on ``SURVIVE`` keys.

    rustac writes ``stac_version`` 1.1.0 (not compared: outside ``SURVIVE``) and renders
    ``created``/``updated`` as ``+00:00`` (the same instants: normalised).
    """
    import rustac

    check = _check(n_items, label, expect, SURVIVE if keys is None else keys, loose_props,
                   normalise=canonical_datetimes)
    check.add_all(rustac.read_sync(str(path))["features"])
    check.finish()


SINGLE_FILE_CHECKS = {
    "feature_collection": check_feature_collection,
    "ndjson": check_ndjson,
    "parquet": check_parquet_files,
    "geoparquet": check_geoparquet,
}

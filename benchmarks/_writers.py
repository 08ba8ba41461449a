"""Output writers and on-disk checks shared by the output and pipeline suites.

Every writer is a top-level function (picklable under ``spawn``).  Per-item
writers take one *unit* ``(directory, item, fsync)`` and write
``<directory>/<id>.json`` in stac-manager's own per-item format
(``json.dumps(item, indent=2)``), so the harness designs are drop-in
replacements for ``OutputModule(format="json")``.  ``fsync=True`` flushes each
file to stable storage (and the directory once, at the end of a run).

The dataset generator (``datagen``) writes its sources with the same functions.

The checks read back what landed on disk and feed every item to ``_checks.ItemCheck``:
the count and id set must be exact (a lost, duplicated or overwritten item fails), every
item must equal the expected one on the fields that must survive, and be valid STAC.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

import orjson

from . import datagen
from ._checks import ID_PATTERN, ItemCheck, ResultMismatch, canonical_datetimes, exact  # noqa: F401 (re-exported)

#: What must survive any writer; stac-manager's OutputModule may legitimately rewrite ``links``.
SURVIVE = ("type", "id", "collection", "geometry", "bbox", "properties", "assets")


# --- output directories ------------------------------------------------------------------

def out_root():
    """Where runs write: ``STAC_BENCH_OUT_DIR``, else beside the dataset cache (a real disk, not tmpfs)."""
    root = os.environ.get("STAC_BENCH_OUT_DIR") or datagen.data_root().parent / "out"
    Path(root).mkdir(parents=True, exist_ok=True)
    return Path(root)


def make_root(label):
    """A per-benchmark temporary root (made in ``setup``, removed in ``teardown``)."""
    return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=out_root()))


def fresh_dir(root):
    """A new, empty directory below ``root`` for one run."""
    return Path(tempfile.mkdtemp(prefix="run-", dir=root))


def remove(path):
    shutil.rmtree(path, ignore_errors=True)


# --- serialisation and writing -------------------------------------------------------------

def dumps_item(item):
    """stac-manager's per-item JSON format (OutputModule json: ``json.dumps(item, indent=2)``)."""
    return json.dumps(item, indent=2).encode()


def dumps_compact(obj):
    """Compact JSON (the dataset's item files, FeatureCollection and ndjson lines)."""
    return json.dumps(obj, separators=(",", ":")).encode()


def write_file(path, data, fsync=False):
    """Write bytes; with ``fsync`` force them to stable storage before returning."""
    with open(path, "wb") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())


def fsync_path(path):
    """fsync a file, or a directory (making its new entries durable), by path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_item_file(unit):
    """Serialise one item and write ``<directory>/<id>.json``; return the id.

    ``unit``: ``(directory, item, fsync)`` in stac-manager's indented format, or
    ``(directory, item, fsync, "compact")`` in compact JSON (the dataset's files).
    """
    directory, item, fsync = unit[:3]
    dumps = dumps_compact if unit[3:] == ("compact",) else dumps_item
    write_file(os.path.join(directory, f"{item['id']}.json"), dumps(item), fsync)
    return item["id"]


def write_items_dir(items, path, fsync=False):
    """Every item as ``<path>/<id>.json``, compact JSON (the dataset's directory sources)."""
    os.makedirs(path, exist_ok=True)
    for item in items:
        write_item_file((str(path), item, fsync, "compact"))
    return path


def write_blob_file(unit):
    """Ceiling: write pre-serialised bytes ``(directory, id, data, fsync)``; return the id."""
    directory, iid, data, fsync = unit
    write_file(os.path.join(directory, f"{iid}.json"), data, fsync)
    return iid


def write_feature_collection(items, path, fsync=False):
    write_file(path, dumps_compact({"type": "FeatureCollection", "features": items}), fsync)
    return path


def write_ndjson(items, path, fsync=False):
    with open(path, "wb") as fh:
        for item in items:
            fh.write(dumps_compact(item))
            fh.write(b"\n")
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    return path


def write_parquet(items, path, fsync=False, row_group_size=None):
    """One row per item, nested columns (the layout of stac-manager's OutputModule parquet).

    Every generated item has the same keys, so ``to_pylist()`` round-trips exactly.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(items), str(path), row_group_size=row_group_size)
    if fsync:
        fsync_path(path)
    return path


def write_geoparquet(items, path, fsync=False):
    """stac-geoparquet (geometry as WKB, properties flattened), written by rustac."""
    import rustac

    rustac.write_sync(str(path), items, format="geoparquet")
    if fsync:
        fsync_path(path)


SINGLE_FILE = {
    "feature_collection": (write_feature_collection, "items.json"),
    "ndjson": (write_ndjson, "items.ndjson"),
    "parquet": (write_parquet, "items.parquet"),
    "geoparquet": (write_geoparquet, "items.parquet"),
}


def relative_links(item):
    """The links stac-manager's OutputModule gives an item in ``<collection>/items/``.

    A shallow copy: drop self/parent/collection links, add relative ones.
    """
    item = dict(item)
    links = [link for link in item.get("links", []) if link.get("rel") not in ("self", "parent", "collection")]
    links.append({"rel": "self", "href": f"./items/{item['id']}.json", "type": "application/json"})
    links.append({"rel": "parent", "href": "../collection.json", "type": "application/json"})
    links.append({"rel": "collection", "href": "../collection.json", "type": "application/json"})
    item["links"] = links
    return item


# --- checks ------------------------------------------------------------------------------

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

"""Output writers and on-disk checks shared by the output and pipeline suites.

Every writer is a top-level function (picklable under ``spawn``).  Per-item
writers take one *unit* ``(directory, item, fsync)`` and write
``<directory>/<id>.json`` in stac-manager's own per-item format
(``json.dumps(item, indent=2)``), so the harness designs are drop-in
replacements for ``OutputModule(format="json")``.  ``fsync=True`` flushes each
file to stable storage (and the directory once, at the end of a run).

The checks read back what landed on disk: the id set and count must be exact
(a lost, duplicated or overwritten item fails) and a spread sample must equal
the expected item on the fields that must survive.
"""

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import orjson

from . import datagen
from ._harness import ResultMismatch, _sample

#: What must survive any writer; stac-manager's OutputModule may legitimately rewrite ``links``.
SURVIVE = ("type", "id", "collection", "geometry", "bbox", "properties", "assets")
_ID = re.compile(rb'"id":\s*"([^"]*)"')


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


def _dumps_compact(obj):
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
    """Serialise one item and write ``<directory>/<id>.json``; return the id."""
    directory, item, fsync = unit
    write_file(os.path.join(directory, f"{item['id']}.json"), dumps_item(item), fsync)
    return item["id"]


def write_blob_file(unit):
    """Ceiling: write pre-serialised bytes ``(directory, id, data, fsync)``; return the id."""
    directory, iid, data, fsync = unit
    write_file(os.path.join(directory, f"{iid}.json"), data, fsync)
    return iid


def write_feature_collection(items, path, fsync=False):
    write_file(path, _dumps_compact({"type": "FeatureCollection", "features": items}), fsync)


def write_ndjson(items, path, fsync=False):
    with open(path, "wb") as fh:
        for item in items:
            fh.write(_dumps_compact(item))
            fh.write(b"\n")
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())


def write_parquet(items, path, fsync=False):
    """One row per item, nested columns (the layout of stac-manager's OutputModule parquet)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(items), str(path))
    if fsync:
        fsync_path(path)


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

def exact(i):
    """The expected item ``i``: the generated one."""
    return datagen.make_item(i)


def _fail(label, msg):
    raise ResultMismatch(f"{label}: {msg}" if label else msg)


def _check_ids(ids, n_items, label, what):
    expected = {datagen.item_id(i) for i in range(n_items)}
    got = set(ids)
    if len(ids) != n_items or got != expected:
        lost = sorted(expected - got)
        extra = sorted(x for x in got - expected if x is not None)
        _fail(label, f"{what}: expected {n_items} items, found {len(ids)}: {len(lost)} lost {lost[:3]}, "
                     f"{len(extra)} unexpected {extra[:3]}, {len(ids) - len(got)} duplicated")


def compare(got, want, label, keys=SURVIVE, loose_props=()):
    """Fail unless ``got`` equals ``want`` on ``keys`` (``None``: the whole item).

    ``loose_props``: properties a writer may legitimately rewrite (e.g. ``updated``).
    """
    if keys is None:
        if got != want:
            _fail(label, f"item {want['id']} read back differs from the input")
        return
    for key in keys:
        a, b = got.get(key), want.get(key)
        if key == "properties" and loose_props and isinstance(a, dict) and isinstance(b, dict):
            a = {k: v for k, v in a.items() if k not in loose_props}
            b = {k: v for k, v in b.items() if k not in loose_props}
        if a != b:
            _fail(label, f"item {want['id']}: {key!r} read back differs from the input")


def _sample_ids(n_items):
    return {datagen.item_id(i): i for i in _sample(n_items)}


def check_item_files(root, n_items, label="", expect=exact, keys=None, loose_props=()):
    """Per-item JSON files anywhere below ``root`` (``collection.json`` aside): exact ids, sample equal."""
    found, stray = {}, []
    for dirpath, _, names in os.walk(root):
        for name in names:
            if name == "collection.json":
                continue
            if name.endswith(".json"):
                iid = name[:-5]
                found.setdefault(iid, []).append(os.path.join(dirpath, name))
            else:
                stray.append(name)
    if stray:
        _fail(label, f"{len(stray)} stray files on disk, e.g. {sorted(stray)[:3]}")
    ids = [iid for iid, paths in found.items() for _ in paths]
    _check_ids(ids, n_items, label, "item files")
    for iid, i in _sample_ids(n_items).items():
        got = orjson.loads(Path(found[iid][0]).read_bytes())
        if got.get("id") != iid:
            _fail(label, f"{found[iid][0]} holds item {got.get('id')!r}")
        compare(got, expect(i), label, keys, loose_props)


def check_parquet_files(root, n_items, label="", expect=exact, keys=None, loose_props=()):
    """``root`` (a file) or every ``*.parquet`` below it: total rows and ids exact, sample rows equal."""
    import pyarrow.parquet as pq

    root = Path(root)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    stray = [p.name for p in files if p.suffix != ".parquet" and p.name != "collection.json"]
    if stray:
        _fail(label, f"{len(stray)} stray files on disk, e.g. {stray[:3]}")
    files = [p for p in files if p.suffix == ".parquet"]
    ids, per_file = [], []
    for path in files:
        col = pq.read_table(path, columns=["id"]).column("id").to_pylist()
        ids.extend(col)
        per_file.append((path, col))
    _check_ids(ids, n_items, label, f"rows in {len(files)} parquet files")
    wanted = _sample_ids(n_items)
    for path, col in per_file:
        hits = [iid for iid in col if iid in wanted]
        if hits:
            for got in pq.read_table(path, filters=[("id", "in", hits)]).to_pylist():
                compare(got, expect(wanted[got["id"]]), label, keys, loose_props)


def check_ndjson(path, n_items, label="", expect=exact, keys=None, loose_props=()):
    data = Path(path).read_bytes()
    lines = data.splitlines()
    ids = [m.decode() for m in _ID.findall(data)]
    if len(lines) != n_items:
        _fail(label, f"expected {n_items} lines, found {len(lines)}")
    _check_ids(ids, n_items, label, "ndjson lines")
    for i in _sample(n_items):
        got = orjson.loads(lines[i])
        compare(got, expect(i), label, keys, loose_props)


def check_feature_collection(path, n_items, label="", expect=exact, keys=None, loose_props=()):
    doc = orjson.loads(Path(path).read_bytes())
    features = doc.get("features", []) if isinstance(doc, dict) else []
    _check_ids([f.get("id") for f in features], n_items, label, "features")
    by_id = {f["id"]: f for f in features}
    for iid, i in _sample_ids(n_items).items():
        compare(by_id[iid], expect(i), label, keys, loose_props)


#: stac-geoparquet normalises these on a round trip (datetimes to +00:00, stac_version, bbox type).
GEOPARQUET_KEYS = ("type", "id", "collection", "geometry", "assets")


def check_geoparquet(path, n_items, label="", expect=exact, keys=None, loose_props=()):
    import pyarrow.parquet as pq

    ids = pq.read_table(path, columns=["id"]).column("id").to_pylist()
    _check_ids(ids, n_items, label, "stac-geoparquet rows")
    import rustac

    by_id = {f["id"]: f for f in rustac.read_sync(str(path))["features"]}
    stable = ("platform", "instruments", "eo:cloud_cover", "proj:epsg", "gsd")
    for iid, i in _sample_ids(n_items).items():
        got, want = by_id[iid], expect(i)
        compare(got, want, label, GEOPARQUET_KEYS)
        if any(got["properties"].get(k) != want["properties"].get(k) for k in stable):
            _fail(label, f"item {iid}: properties read back differ from the input")


SINGLE_FILE_CHECKS = {
    "feature_collection": check_feature_collection,
    "ndjson": check_ndjson,
    "parquet": check_parquet_files,
    "geoparquet": check_geoparquet,
}

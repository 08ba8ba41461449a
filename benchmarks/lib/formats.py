"""Serialisation and writers: the dataset's sources and the output suites' harness writers.

Every writer is a top-level function (picklable under ``spawn``).  Per-item
writers take one *unit* ``(directory, item, fsync)`` and write
``<directory>/<id>.json`` in stac-manager's own per-item format
(``json.dumps(item, indent=2)``), so the harness designs are drop-in
replacements for ``OutputModule(format="json")``.  ``fsync=True`` flushes each
file to stable storage (and the directory once, at the end of a run).

The dataset's sources (``sources.TABLE``) are written with the same functions, compact.
What landed on disk is read back and checked by ``readback``.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

from .itemgen import (
    dumps_compact,
    make_collection,
    malformed_bytes,
    malformed_files,
    unit_size,
)
from .settings import memory_base, out_dir

# --- output directories ------------------------------------------------------------------

def make_root(label, parent=None):
    """A per-benchmark temporary root below ``parent`` (default ``settings.out_dir()``; made in
    ``setup``, removed in ``teardown``)."""
    return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=out_dir() if parent is None else parent))


#: Filesystems that keep their files in memory.
MEMORY_FILESYSTEMS = ("tmpfs", "ramfs")


def filesystem_type(path, mounts="/proc/self/mounts"):
    """The type of the filesystem ``path`` is on (its longest mount point in ``mounts``), or None."""
    try:
        with open(mounts) as fh:
            table = [line.split()[1:3] for line in fh if len(line.split()) > 2]
    except OSError:
        return None
    where = os.path.realpath(path)
    found = [(len(point), kind) for point, kind in table
             if where == point or where.startswith(point.rstrip("/") + "/")]
    return max(found)[1] if found else None


def memory_dir():
    """A folder on a memory filesystem for the in-memory output rows (``settings.memory_base()``,
    default /dev/shm), created; NotImplementedError (n/a) naming why there is none."""
    base = memory_base()
    kind = filesystem_type(base) if os.path.isdir(base) else None
    if kind not in MEMORY_FILESYSTEMS:
        raise NotImplementedError(f"{base} is not a memory filesystem ({kind or 'no such folder, or no mount table'}"
                                  f"; set STAC_BENCH_MEMORY_DIR to a tmpfs): no in-memory writes here")
    root = Path(base) / "stac-manager-benchmarks"
    root.mkdir(exist_ok=True)
    return root


def fresh_dir(root):
    """A new, empty directory below ``root`` for one run."""
    return Path(tempfile.mkdtemp(prefix="run-", dir=root))


def remove(path):
    shutil.rmtree(path, ignore_errors=True)


# --- serialisation and writing -------------------------------------------------------------

def dumps_item(item):
    """stac-manager's per-item JSON format (OutputModule json: ``json.dumps(item, indent=2)``)."""
    return json.dumps(item, indent=2).encode()


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


# --- the dataset's sources that are more than one writer call ------------------------------

def write_parquet_source(items, path):
    """The nested Parquet source, cut into ``unit_size`` row groups (one harness work unit each)."""
    return write_parquet(items, path, row_group_size=unit_size(len(items)))


def write_geoparquet_source(items, path):
    """The stac-geoparquet layout as rustac writes it, cut into ``unit_size`` row groups.

    rustac 0.9 stamps ``stac_version`` 1.1.0 on every row without migrating anything
    else (``eo:bands`` stay): the items' own version is put back, so that what a reader
    returns can be compared with the generated items.  Row groups let the harness split
    the file like the nested Parquet source; the file metadata (``geo``,
    ``stac-geoparquet``) is kept.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    import rustac

    raw = Path(str(path) + ".rustac")
    rustac.write_sync(str(raw), items, format="geoparquet")
    meta = {k: v for k, v in pq.ParquetFile(raw).metadata.metadata.items() if k != b"ARROW:schema"}
    table = pq.read_table(raw)
    idx = table.schema.get_field_index("stac_version")
    versions = pa.array([item["stac_version"] for item in items]).dictionary_encode()
    table = table.set_column(idx, table.schema.field(idx), versions.cast(table.schema.field(idx).type))
    pq.write_table(table.replace_schema_metadata(meta), str(path), row_group_size=unit_size(len(items)))
    raw.unlink()
    return Path(path)


def write_malformed_dir(items, path):
    """The good item files plus ``itemgen.malformed_files(n)``."""
    write_items_dir(items, path)
    for name, kind in malformed_files(len(items)).items():
        (Path(path) / name).write_bytes(malformed_bytes(name, kind))
    return Path(path)


def write_collection_root(items, path):
    """A collection root: ``collection.json`` covering the items, and ``items/``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "collection.json").write_bytes(dumps_compact(make_collection(items)))
    write_items_dir(items, path / "items")
    return path

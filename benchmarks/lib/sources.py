"""Every on-disk source of a dataset, in one table that the generator, the cache, the loaders and
the suites read.

A source has a ``name`` (the suites' ``source``), a ``path`` below the dataset root, a ``write``
function ``(items, path)`` (``formats``), ``units(path, n)`` (the harness's work units,
``loaders``), ``ceiling_units(path, n)`` (what the ceilings read) and ``files(n)`` (the files it
holds, relative to the dataset root: the cache's manifest must list exactly these).  Adding a
source is one row here, its writer and, where it is new, its unit function; then a class per
strategy kind in ``file_ingest.py``.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import formats, loaders
from .itemgen import item_id, malformed_files


def _item_files(folder):
    return lambda n: {f"{folder}/{item_id(i)}.json" for i in range(n)}


def _one_file(rel):
    return lambda n: {rel}


@dataclass(frozen=True)
class Source:
    name: str
    path: str
    write: Callable
    units: Callable
    files: Callable
    ceiling_units: Callable = None


TABLE = (
    Source("directory", "items", formats.write_items_dir, loaders.file_units, _item_files("items")),
    Source("feature_collection", "items.json", formats.write_feature_collection, loaders.document_units,
           _one_file("items.json")),
    Source("ndjson", "items.ndjson", formats.write_ndjson, loaders.ndjson_units, _one_file("items.ndjson")),
    Source("parquet", "items.parquet", formats.write_parquet_source, loaders.row_group_units,
           _one_file("items.parquet"), loaders.parquet_file_units),
    Source("geoparquet", "items.geo.parquet", formats.write_geoparquet_source, loaders.geo_row_group_units,
           _one_file("items.geo.parquet"), loaders.geoparquet_file_units),
    Source("collection", "collection", formats.write_collection_root, loaders.collection_units,
           lambda n: {"collection/collection.json"} | _item_files("collection/items")(n)),
    Source("malformed", "malformed", formats.write_malformed_dir, loaders.file_units,
           lambda n: _item_files("malformed")(n) | {f"malformed/{b}" for b in malformed_files(n)}),
)
BY_NAME = {s.name: s for s in TABLE}


def get(name):
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown source {name!r}") from None


def source_path(root, name):
    """Where source ``name`` is in the dataset at ``root``."""
    return Path(root) / get(name).path


def units(name, path, n_items):
    """The work units of source ``name`` at ``path`` (an ``n_items`` dataset)."""
    return get(name).units(path, n_items)


def ceiling_units(name, path, n_items):
    """What the ceilings read of source ``name``: a Parquet file whole, else its work units."""
    source = get(name)
    return (source.ceiling_units or source.units)(path, n_items)


def write_sources(items, root):
    """Write every source of ``items`` below ``root``."""
    for source in TABLE:
        source.write(items, Path(root) / source.path)


def source_files(n):
    """Every file the sources of an ``n``-item dataset hold, relative to its root."""
    return set().union(*(source.files(n) for source in TABLE))

"""Work units and top-level loaders for the on-disk sources (picklable under spawn).

Each source splits into units that any strategy can map over:
``directory`` / ``collection`` one unit per item file; ``ndjson`` a byte range
of whole lines per ``datagen.unit_size(n)`` items; ``parquet`` one row
group; ``feature_collection`` one unit (one JSON document cannot be split).
"""

import json
from pathlib import Path

import orjson
import pyarrow.parquet as pq

from . import datagen


def units(source, path, n_items):
    path = Path(path)
    if source in ("directory", "collection"):
        files = path / "items" if source == "collection" else path
        return [("file", str(p)) for p in sorted(files.glob("*.json"))]
    if source == "ndjson":
        return [("lines", str(path), a, b) for a, b in _line_ranges(path, datagen.unit_size(n_items))]
    if source == "parquet":
        return [("row_group", str(path), i) for i in range(pq.ParquetFile(path).num_row_groups)]
    if source == "feature_collection":
        return [("collection_file", str(path))]
    raise ValueError(f"unknown source {source!r}")


def ceiling_units(source, path, n_items):
    """Units for the ceilings: a Parquet file is decoded whole, by pyarrow's threaded reader."""
    if source == "parquet":
        return [("parquet_file", str(path))]
    return units(source, path, n_items)


def _line_ranges(path, lines_per_unit):
    ranges, start, pos, count = [], 0, 0, 0
    with open(path, "rb") as fh:
        for line in fh:
            pos += len(line)
            count += 1
            if count == lines_per_unit:
                ranges.append((start, pos))
                start, count = pos, 0
    if pos > start:
        ranges.append((start, pos))
    return ranges


def _read(unit):
    kind, path = unit[0], unit[1]
    if kind == "lines":
        with open(path, "rb") as fh:
            fh.seek(unit[2])
            return fh.read(unit[3] - unit[2])
    return Path(path).read_bytes()


def _decode(unit, loads):
    data = _read(unit)
    if unit[0] == "file":
        return [loads(data)]
    if unit[0] == "lines":
        return [loads(line) for line in data.splitlines() if line.strip()]
    doc = loads(data)
    return doc["features"] if isinstance(doc, dict) else doc


def load(unit):
    """Read and decode one unit with the standard library's json (as stac-manager does)."""
    if unit[0] == "row_group":
        return pq.ParquetFile(unit[1]).read_row_group(unit[2]).to_pylist()
    return _decode(unit, json.loads)


def read_bytes(unit):
    """Ceiling: the size of one unit's bytes, read but not decoded."""
    return len(_read(unit))


def load_orjson(unit):
    """Ceiling: read and decode one unit with orjson (a whole Parquet file: pyarrow)."""
    if unit[0] == "parquet_file":
        return pq.read_table(unit[1]).to_pylist()
    return _decode(unit, orjson.loads)

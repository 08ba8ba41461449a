"""Work units and top-level loaders for the on-disk sources (picklable under spawn).

Each source splits into units that any strategy can map over (``sources.TABLE`` names the
function per source): one unit per item file, a byte range of whole lines per
``itemgen.unit_size(n)`` items, one Parquet row group, or one whole JSON document.

A file that does not decode raises ``MalformedInput`` naming it.  ``load_counted`` is the
loader of the ``malformed`` source: it returns the good items and the bad files it skipped.
"""

import json
from pathlib import Path

import orjson
import pyarrow.parquet as pq

from .itemgen import REQUIRED, unit_size


class MalformedInput(ValueError):
    """A unit's bytes are not what its source promises (named in the message)."""


# --- work units: each source's ``units`` in ``sources.TABLE`` is one of these ----------------

def file_units(path, n_items):
    """One unit per item file of a directory."""
    return [("file", str(p)) for p in sorted(Path(path).glob("*.json"))]


def collection_units(path, n_items):
    """One unit per item file of a collection root's ``items/``."""
    return file_units(Path(path) / "items", n_items)


def ndjson_units(path, n_items):
    """Byte ranges of whole lines, ``itemgen.unit_size(n)`` lines each."""
    return [("lines", str(path), a, b) for a, b in _line_ranges(path, unit_size(n_items))]


def row_group_units(path, n_items):
    """One unit per row group of a nested Parquet file."""
    return [("row_group", str(path), i) for i in range(pq.ParquetFile(path).num_row_groups)]


def geo_row_group_units(path, n_items):
    """One unit per row group of a stac-geoparquet file."""
    return [("geo_row_group", str(path), i) for i in range(pq.ParquetFile(path).num_row_groups)]


def document_units(path, n_items):
    """One unit: a single JSON document cannot be split."""
    return [("collection_file", str(path))]


def parquet_file_units(path, n_items):
    """Ceiling: a nested Parquet file decoded whole, by pyarrow's threaded reader."""
    return [("parquet_file", str(path))]


def geoparquet_file_units(path, n_items):
    """Ceiling: a stac-geoparquet file decoded whole."""
    return [("geoparquet_file", str(path))]


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


def _where(unit):
    return f"{unit[1]} bytes {unit[2]}..{unit[3]}" if unit[0] == "lines" else unit[1]


def _loads(unit, data, loads):
    try:
        return loads(data)
    except ValueError as exc:  # json.JSONDecodeError and orjson.JSONDecodeError
        raise MalformedInput(f"{_where(unit)}: {type(exc).__name__}: {exc}") from exc


def _decode(unit, loads):
    data = _read(unit)
    if unit[0] == "file":
        return [_loads(unit, data, loads)]
    if unit[0] == "lines":
        return [_loads(unit, line, loads) for line in data.splitlines() if line.strip()]
    doc = _loads(unit, data, loads)
    return doc["features"] if isinstance(doc, dict) else doc


def geoparquet_items(table):
    """stac-geoparquet rows (a pyarrow table) back to STAC items, by rustac (WKB, flattened properties)."""
    import rustac

    return rustac.from_arrow(table)["features"]


def load(unit):
    """Read and decode one unit with the standard library's json (as stac-manager does)."""
    if unit[0] == "row_group":
        return pq.ParquetFile(unit[1]).read_row_group(unit[2]).to_pylist()
    if unit[0] == "geo_row_group":
        return geoparquet_items(pq.ParquetFile(unit[1]).read_row_group(unit[2]))
    return _decode(unit, json.loads)


def read_bytes(unit):
    """Ceiling: the size of one unit's bytes, read but not decoded."""
    return len(_read(unit))


def load_orjson(unit):
    """Ceiling: read and decode one unit with orjson (a whole Parquet file: pyarrow)."""
    if unit[0] == "parquet_file":
        return pq.read_table(unit[1]).to_pylist()
    if unit[0] == "geoparquet_file":
        return geoparquet_items(pq.read_table(unit[1]))
    return _decode(unit, orjson.loads)


def classify(decoded):
    """Why a decoded item file is not an item, or None when it is one."""
    if isinstance(decoded, list):
        return "a JSON array"
    if not isinstance(decoded, dict):
        return f"a JSON {type(decoded).__name__}"
    missing = [k for k in REQUIRED if k not in decoded]
    if missing or decoded.get("type") != "Feature":
        return f"not a STAC item (missing {missing or 'type Feature'})"
    return None


def _counted(unit, loads):
    """``(items, bad)`` of one item file: ``bad`` is ``[(path, reason)]`` when it is not an item."""
    try:
        decoded = loads(_read(unit))
    except ValueError as exc:
        return [], [(unit[1], f"{type(exc).__name__}: {exc}")]
    reason = classify(decoded)
    return ([], [(unit[1], reason)]) if reason else ([decoded], [])


def load_counted(unit):
    """``load`` for a directory with malformed files: skip and report them instead of failing."""
    return _counted(unit, json.loads)


def load_counted_orjson(unit):
    """Ceiling: ``load_counted`` with orjson."""
    return _counted(unit, orjson.loads)

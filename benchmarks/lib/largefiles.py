"""The few-large-files source (PRD 5.1): ``FILES`` nested Parquet files of ``per_file`` items each.

File ``k`` holds items ``k * per_file .. (k + 1) * per_file - 1``; item ``j`` is the dataset's
item ``j mod n`` (``n`` the dataset's size) under the id of item ``j`` (``relabelled``): as many
distinct ids as the files hold, every document one the generator made, so the checks compare
each delivered item with its source and validate it as for every other source.  The files are
made from the dataset's nested Parquet source by pyarrow (``take`` and a new ``id`` column:
seconds even for the PRD's 100 MB files), once per machine, in the data cache beside the dataset.

Sizes: the nested Parquet source takes 0.92 KB an item in 100,000-item files (1.6 KB in 1,000-item
ones, whose row groups compress less), so ``per_file`` is the run's scale (1,000 items, 1.6 MB a
file) by default and ``PRD_PER_FILE`` (110,000 items, about 100 MB a
file, the PRD's "5 Parquet files, ~100MB each") with ``STAC_BENCH_SCALE=prd``.
"""

import functools
import os
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from . import datacache, sources
from .itemgen import item_id, make_item, unit_size
from .settings import scale_name

FILES = 5
#: Items a file at the PRD's size (about 100 MB of nested Parquet).
PRD_PER_FILE = 110_000


def per_file(n):
    """Items per file for a run of ``n`` items: the PRD's size under ``STAC_BENCH_SCALE=prd``, else ``n``."""
    return PRD_PER_FILE if scale_name() == "prd" else n


def relabelled(n, j):
    """Item ``j`` of the files made from an ``n``-item dataset: the dataset's item ``j mod n``, id ``j``'s."""
    return {**_base_item(n, j % n), "id": item_id(j)}


@functools.lru_cache(maxsize=None)
def _base_item(n, i):
    return make_item(i)


@functools.cache
def expect(n):
    """``relabelled`` for an ``n``-item dataset: one object per process (the checks key on it)."""
    return functools.partial(relabelled, n)


def file_names():
    return [f"part-{k}.parquet" for k in range(FILES)]


def _complete(folder, count):
    """Whether ``folder`` holds the ``FILES`` files of ``count`` rows each (their Parquet footers)."""
    try:
        return all(pq.ParquetFile(folder / name).metadata.num_rows == count for name in file_names())
    except (OSError, pa.ArrowInvalid):
        return False


def ensure_files(n, count):
    """The folder of the ``FILES`` files of ``count`` items each made from the ``n``-item dataset,
    made if missing or incomplete (into a ``.tmp-<pid>-`` folder that ``datacache.clean_abandoned``
    removes if this process dies, then renamed into place), under the dataset cache's lock."""
    root = datacache.ensure_dataset(n)
    folder = Path(root).parent / f"large-parquet-n{n}-{FILES}x{count}"
    if _complete(folder, count):
        return folder
    with datacache.lock(folder.parent / f".{folder.name}.lock"):
        if not _complete(folder, count):  # not made by another process meanwhile
            _write(sources.source_path(root, "parquet"), n, count, folder)
    return folder


def _write(source, n, count, folder):
    base = pq.read_table(source)
    column = base.schema.get_field_index("id")
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-{folder.name}-", dir=folder.parent))
    try:
        for k, name in enumerate(file_names()):
            rows = range(k * count, (k + 1) * count)
            table = base.take(pa.array([j % n for j in rows]))
            table = table.set_column(column, "id", pa.array([item_id(j) for j in rows]))
            pq.write_table(table, tmp / name, row_group_size=unit_size(count))
        if folder.exists():  # incomplete (this folder is made here only)
            shutil.rmtree(folder)
        os.rename(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def paths(folder):
    return [str(Path(folder) / name) for name in file_names()]


def read_items(path):
    """One file's items: pyarrow decodes the file, ``to_pylist`` parses its rows into item dicts."""
    return pq.read_table(path).to_pylist()


def read_bytes(path):
    """Ceiling: the size of one file's bytes, read, not decoded."""
    return len(Path(path).read_bytes())

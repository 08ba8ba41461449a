"""Few large files (the PRD's 5.1): five nested Parquet files read one after another and at once.

The source (``lib.largefiles``): 5 Parquet files of ``n_items / 5`` items each, the run's scale by
default (1,000 items, 1.6 MB a file) and the PRD's size with ``STAC_BENCH_SCALE=prd``
(110,000 items, about 100 MB a file).  Every run is checked whole: the 5 files' items, each
equal to its source item and valid STAC.  ``track_mem_mb`` is the memory overhead the PRD asks
for (the peak RSS increment of a run, pool workers included).  A row whose files read at once would
not fit in the memory available (``check_memory``: 5 files of the PRD's size need about 22 GB as
item dicts) is n/a with the numbers.

``LargeParquetModule`` is stac-manager: ``module`` gives IngestModule the directory of the 5
files (n/a, naming why, where a directory is read as item JSON files only), ``module_per_file``
one IngestModule per file, one after another (1) or N at once in one event loop.
``LargeParquet`` is the harness, which never imports stac-manager: ``loop`` reads the files one
after another, ``threads`` and ``processes`` N at once (a file a task), ``ceiling_read`` reads
their bytes only; ``track_parse_s`` is the loop's parse time, the seconds spent turning the
decoded Arrow rows into item dicts (``to_pylist``), apart from the decoding (``track_decode_s``).
"""

import asyncio
import gc
import os
import time

import psutil
import pyarrow.parquet as pq

from .lib import largefiles
from .lib.checks import ItemCheck, ResultMismatch, prepare
from .lib.runners import Runner
from .lib.scenario import Scenario, measured_where, preload
from .lib.settings import N_ITEMS, PROBE_ITEMS
from .lib.strategies import CEILING, SEQUENTIAL, SUBJECT, check_workers, get, kind, names
from .lib.subject import ingest_config, ingest_each, ingest_module, make_context, probe_ingest

#: Items a file, and the ``n_items`` parameter: every item of the 5 files (throughput is ``n_items`` / time).
PER_FILE = largefiles.per_file(N_ITEMS[0])
TOTAL = [largefiles.FILES * PER_FILE]
CONCURRENCY = [1, largefiles.FILES]
#: What an item read from Parquet holds as Python dicts, with its Arrow table (KB; measured: 36 KB
#: an item for stac-manager's Parquet ingest at 100,000 items): a reader holds a whole file's items.
ITEM_KB = 40


def check_memory(items_per_file, strategy, concurrency):
    """n/a where the files read at once would not fit in this machine's available memory (at the
    PRD's sizes, 5 files at once need about 22 GB), naming the numbers, rather than swap or die."""
    at_once = 1 if get(strategy).workers == SEQUENTIAL else min(concurrency, largefiles.FILES)
    need = at_once * items_per_file * ITEM_KB * 1e3 * (2 if strategy == "processes" else 1)
    free = psutil.virtual_memory().available
    if need > free:
        raise NotImplementedError(f"{at_once} file(s) of {items_per_file:,} items at once hold about "
                                  f"{need / 1e9:.1f} GB; {free / 1e9:.1f} GB is available here")


class _LargeFiles(Scenario):
    """The 5 files, ``n_items`` items in all; ``setup`` sets ``self.run``, a checked run of a strategy."""

    version = "1"
    param_names = ["n_items", "strategy", "concurrency"]
    timeout = 1800

    def setup_cache(self):
        return {"files": str(largefiles.ensure_files(N_ITEMS[0], PER_FILE)),
                "probe": str(largefiles.ensure_files(PROBE_ITEMS, PROBE_ITEMS))}

    def setup(self, folders, n_items, strategy, concurrency):
        check_workers(strategy, concurrency)
        check_memory(n_items // largefiles.FILES, strategy, concurrency)
        self.n = n_items
        self.expect = largefiles.expect(N_ITEMS[0])
        prepare(self.n, self.expect)
        self.paths = largefiles.paths(folders["files"])
        self.label = f"large_files/{strategy}/{concurrency}"
        self.run = self.runs(folders, strategy, concurrency)

    def checked(self, produce):
        check = ItemCheck(self.n, self.label, expect=self.expect)
        produce(check)
        check.finish()


class LargeParquetModule(_LargeFiles):
    """stac-manager's IngestModule over the 5 files: the directory, or a module per file."""

    params = [TOTAL, names("large_files", SUBJECT), CONCURRENCY]

    def runs(self, folders, strategy, concurrency):
        if strategy == "module":  # the directory: Phase 2's concurrency, where declared, is its own
            conf = ingest_config({"mode": "file", "source": folders["files"], "format": "parquet"},
                                 strategy, concurrency)
            probe_ingest({**conf, "source": folders["probe"]}, "a directory of Parquet files")
            return lambda: self.checked(lambda check: ingest_each(conf, check.add, make_context()))
        confs = [ingest_config({"mode": "file", "source": p, "format": "parquet"}, strategy, 1)
                 for p in self.paths]
        probe_ingest(confs[0] | {"source": largefiles.paths(folders["probe"])[0]}, "a Parquet file")
        return lambda: self.checked(lambda check: asyncio.run(per_file(confs, check.add, concurrency)))


async def per_file(configs, consume, concurrency):
    """One IngestModule per config, at most ``concurrency`` of them draining at once in this loop."""
    cls, _ = ingest_module()
    context, gate = make_context(), asyncio.Semaphore(concurrency)

    async def one(config):
        async with gate:
            async for item in cls(config).fetch(context):
                consume(item)
    await asyncio.gather(*(one(c) for c in configs))


class LargeParquet(_LargeFiles):
    """The harness over the 5 files: a loop, N threads or N processes (a file a task), the bytes alone."""

    params = [TOTAL, names("large_files", exclude=names("large_files", SUBJECT)), CONCURRENCY]

    def runs(self, folders, strategy, concurrency):
        if kind(strategy) == CEILING:  # ceiling_read: the files' bytes, nothing decoded
            size = sum(map(os.path.getsize, self.paths))

            def read():
                if (got := sum(map(largefiles.read_bytes, self.paths))) != size:
                    raise ResultMismatch(f"{self.label}: read {got} bytes, the files hold {size}")
            return read
        self.runner = Runner(strategy, concurrency)
        return lambda: self.checked(lambda check: self.runner.each(largefiles.read_items, self.paths,
                                                                   check.add_all))

    def _split(self):
        """Seconds decoding the files into Arrow tables, and turning their rows into item dicts, with
        the garbage collector off as asv times ``time_run`` (``to_pylist`` makes millions of objects)."""
        decode = parse = 0.0
        check = ItemCheck(self.n, self.label, expect=self.expect)
        collecting = gc.isenabled()
        gc.disable()
        try:
            for path in self.paths:
                start = time.perf_counter()
                table = pq.read_table(path)
                middle = time.perf_counter()
                items = table.to_pylist()
                decode, parse = decode + middle - start, parse + time.perf_counter() - middle
                check.add_all(items)
        finally:
            if collecting:
                gc.enable()
        check.finish()
        return decode, parse

    def track_decode_s(self, *args):
        """The loop's seconds in pyarrow, decoding the 5 files into Arrow tables (checked run)."""
        return self._split()[0]

    def track_parse_s(self, *args):
        """The loop's seconds turning the decoded rows into item dicts, ``to_pylist`` (checked run)."""
        return self._split()[1]

    track_decode_s.unit = track_parse_s.unit = "seconds"
    track_decode_s = measured_where(track_decode_s, params, _LargeFiles.param_names, lambda strategy, **_: strategy == "loop")
    track_parse_s = measured_where(track_parse_s, params, _LargeFiles.param_names, lambda strategy, **_: strategy == "loop")


preload(largefiles.expect(N_ITEMS[0]), sizes=TOTAL)

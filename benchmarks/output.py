"""Output: stac-manager's OutputModule beside harness writers, with and without fsync, and ceilings.

Every run writes to a fresh directory, checks what landed on disk (exact id set
and count, a spread sample equal to the input) and removes it.  ``time_run``
includes that check and the removal; ``track_throughput`` counts the write
alone (items per second from the start of the write to the last fsync).  The harness
writers (full profile) measure ``track_throughput`` and ``track_mem_mb`` only (the check's
time would only blur a writer's number; memory where ``writer_memory`` says), with fsync at
``CONDITION_LEVELS``.
"""

import asyncio
import time

import orjson

from .lib import checks, counts, formats, readback
from .lib.checks import ResultMismatch
from .lib.itemgen import make_items
from .lib.readback import SURVIVE
from .lib.runners import DESIGNS, Runner
from .lib.scenario import Scenario, WriteThroughput, measured_where, preload
from .lib.settings import CONCURRENCY, CONDITION_LEVELS, N_ITEMS, PROBE_ITEMS
from .lib.strategies import CEILING, SUBJECT, check_workers, kind, names
from .lib.subject import config_fields, import_subject, make_context, probe

#: OutputModule ``buffer_size`` values (its default is 1000).
BUFFER_SIZES = [100, 1000, 10000]
FSYNC = [False, True]
CEILINGS = names("output", CEILING)


def writer_memory(strategy, fsync, **_):
    """Where a harness writer's memory is measured: not a ceiling's (it does no work), not with
    fsync (a sync changes the wait, not what is held)."""
    return kind(strategy) != CEILING and not fsync


class _Output(WriteThroughput, Scenario):
    """Base: the items to write, a per-benchmark output root, the write-only throughput."""

    version = "3"
    label = "output"
    #: Write below a memory filesystem (``formats.memory_dir``), not ``STAC_BENCH_OUT_DIR``.
    in_memory = False

    def setup_cache(self):
        return {n: make_items(n) for n in N_ITEMS}

    def _begin(self, cache, n_items, label):
        self.n, self.items = n_items, cache[n_items]
        self.label = label
        self.last_wall = None
        parent = formats.memory_dir() if self.in_memory else None  # n/a without a memory filesystem
        for keys in (None, SURVIVE):  # the checks' once-per-process work, outside the timed runs
            checks.prepare(n_items, keys=keys)
        self.root = formats.make_root(type(self).__name__, parent)

    def _checked(self, write, check):
        """One run: ``write(directory)`` timed, then ``check(directory)``; the directory is removed."""
        def run():
            directory = formats.fresh_dir(self.root)
            try:
                start = time.perf_counter()
                write(directory)
                self.last_wall = time.perf_counter() - start
                check(directory)
            finally:
                formats.remove(directory)
        return run


# --- stac-manager's OutputModule -------------------------------------------------------------

def output_module(fmt, base_dir, buffer_size):
    """An ``OutputModule`` for ``fmt`` at this commit, or n/a."""
    mod = import_subject("stac_manager.modules.output")
    cls = getattr(mod, "OutputModule", None)
    if cls is None:
        raise NotImplementedError("this commit has no OutputModule")
    config = {"format": fmt, "base_dir": str(base_dir), "buffer_size": buffer_size}
    config_cls = getattr(mod, "OutputConfig", None) or getattr(
        import_subject("stac_manager.modules.config"), "OutputConfig", None)
    if config_cls is not None and "buffer_size" not in config_fields(config_cls):
        raise NotImplementedError("this commit's OutputConfig has no buffer_size")
    try:
        return cls(config)
    except Exception as exc:  # pydantic rejects a format this commit lacks
        raise NotImplementedError(f"this commit's OutputModule rejects {config}: {exc}") from exc


def run_output_module(fmt, base_dir, buffer_size, items, context):
    """``bundle`` every item then ``finalize``, as stac-manager's pipeline drains to a bundler."""
    module = output_module(fmt, base_dir, buffer_size)

    async def drain():
        for item in items:
            await module.bundle(item, context)
        return await module.finalize(context)

    return asyncio.run(drain())


class _Module(_Output, counts.Counted):
    """stac-manager's OutputModule in one format across its buffer_size."""

    fmt = None
    profile = "history"
    params = [N_ITEMS, names("output", SUBJECT), [1], BUFFER_SIZES]
    param_names = ["n_items", "strategy", "concurrency", "buffer_size"]

    def setup(self, cache, n_items, strategy, concurrency, buffer_size):
        self._begin(cache, n_items, f"module-{self.fmt}/buffer {buffer_size}")
        self.context = make_context()
        check = readback.check_item_files if self.fmt == "json" else readback.check_parquet_files
        probe_items = make_items(PROBE_ITEMS)
        directory = formats.fresh_dir(self.root)
        probe(lambda: run_output_module(self.fmt, directory, buffer_size, probe_items, self.context),
              f"write {self.fmt}")
        check(directory, PROBE_ITEMS, self.label + " (probe)", keys=SURVIVE)
        formats.remove(directory)

        def write(d):
            run_output_module(self.fmt, d, buffer_size, self.items, self.context)

        self.run = self._checked(write, lambda d: check(d, self.n, self.label, keys=SURVIVE))


class ModuleJson(_Module):
    """OutputModule(format=json): one indented JSON file per item, atomic rename."""

    history_params = {"buffer_size": 1000}  # stac-manager's default; the others in the full profile

    fmt = "json"


class ModuleParquet(_Module):
    """OutputModule(format=parquet): one Parquet file per buffer_size items."""

    history_params = {"buffer_size": 1000}  # one flush; the lossy 100 and the 10000 in the full profile

    fmt = "parquet"


# --- harness writers -------------------------------------------------------------------------

class ItemFiles(_Output):
    """One JSON file per item (stac-manager's format) per strategy, with and without fsync."""

    params = [N_ITEMS, [*DESIGNS, *CEILINGS], CONCURRENCY, FSYNC]
    param_names = ["n_items", "strategy", "concurrency", "fsync"]
    time_run = None  # the write's throughput and memory; the check is not the prototype's cost
    track_mem_mb = measured_where(Scenario.track_mem_mb, params, param_names, writer_memory)

    def setup(self, cache, n_items, strategy, concurrency, fsync):
        check_workers(strategy, concurrency)
        if strategy == "ceiling_serialise" and fsync:
            raise NotImplementedError("serialise-only writes nothing to sync")
        if fsync and concurrency not in CONDITION_LEVELS:
            raise NotImplementedError(f"fsync is measured at {CONDITION_LEVELS} workers")
        if strategy in DESIGNS:
            self.runner = Runner(strategy, concurrency)  # n/a: loop above 1, too many processes
        self._begin(cache, n_items, f"item_files/{strategy}/{concurrency}/fsync={fsync}")
        check = lambda d: readback.check_item_files(d, self.n, self.label)  # noqa: E731
        if strategy == "ceiling_serialise":
            self.run = self._serialise_only()
            return
        if strategy == "ceiling_write":
            blobs = [(item["id"], formats.dumps_item(item)) for item in self.items]

            def write(d):
                for iid, data in blobs:
                    formats.write_blob_file((str(d), iid, data, fsync))
                if fsync:
                    formats.fsync_path(d)
            self.run = self._checked(write, check)
            return

        def write(d):
            done = self.runner.map(formats.write_item_file, [(str(d), item, fsync) for item in self.items])
            if fsync:
                formats.fsync_path(d)
            if len(done) != self.n:
                raise ResultMismatch(f"{self.label}: {len(done)} writes returned")
        self.run = self._checked(write, check)

    def _serialise_only(self):
        def run():
            start = time.perf_counter()
            blobs = [orjson.dumps(item) for item in self.items]
            self.last_wall = time.perf_counter() - start
            check_blobs(blobs, self.n, self.label)
        return run


def check_blobs(blobs, n_items, label):
    """The serialise-only ceiling's check: one blob per item, each decoding to its item."""
    check = checks.ItemCheck(n_items, label)
    for blob in blobs:
        check.add(orjson.loads(blob))
    check.finish()


class SingleFile(_Output):
    """All items in one file: FeatureCollection, ndjson, Parquet, stac-geoparquet; with and without fsync."""

    params = [N_ITEMS, [*formats.SINGLE_FILE, *CEILINGS], [1], FSYNC]
    param_names = ["n_items", "strategy", "concurrency", "fsync"]
    time_run = None  # as ItemFiles
    track_mem_mb = measured_where(Scenario.track_mem_mb, params, param_names, writer_memory)

    def setup(self, cache, n_items, strategy, concurrency, fsync):
        if strategy == "ceiling_serialise" and fsync:
            raise NotImplementedError("serialise-only writes nothing to sync")
        if strategy == "geoparquet":
            try:
                import rustac  # noqa: F401
            except ImportError as exc:
                raise NotImplementedError("rustac (stac-geoparquet writer) is not installed") from exc
        self._begin(cache, n_items, f"single_file/{strategy}/fsync={fsync}")
        if strategy == "ceiling_serialise":
            def run():
                start = time.perf_counter()
                blob = orjson.dumps({"type": "FeatureCollection", "features": self.items})
                self.last_wall = time.perf_counter() - start
                checks.check_ids([m.decode() for m in checks.ID_PATTERN.findall(blob)], self.n, self.label,
                                  "serialised")
            self.run = run
            return
        if strategy == "ceiling_write":
            blob = b"".join(orjson.dumps(item) + b"\n" for item in self.items)
            writer, name, check = (lambda items, path, fsync: formats.write_file(path, blob, fsync),
                                   "items.ndjson", readback.check_ndjson)
        else:
            writer, name = formats.SINGLE_FILE[strategy]
            check = readback.SINGLE_FILE_CHECKS[strategy]

        def write(d):
            writer(self.items, d / name, fsync)
            if fsync:
                formats.fsync_path(d)
        self.run = self._checked(write, lambda d: check(d / name, self.n, self.label))


class Control(ItemFiles, counts.Counted):
    """The suite's noise floor: the plain loop writing item files, no fsync, in every profile."""

    profile = "history"
    params = [N_ITEMS, ["loop"], [1], [False]]
    time_run = Scenario.time_run  # its time's drift is the noise floor


# --- the same writes into memory: how much of a write is the disk ------------------------------

class _InMemory:
    """The writes of the class it precedes, into a memory filesystem (``STAC_BENCH_MEMORY_DIR``, default
    /dev/shm; n/a where it is not a tmpfs): beside the on-disk row of the same name and parameters,
    the part of the write that is the disk.  Full profile (one sample a row); the write's throughput
    and the checked time (the memory a row holds does not depend on where it writes: not measured)."""

    version = "1"
    profile = None
    in_memory = True
    track_mem_mb = track_instructions = track_alloc_mb = None
    history_params = None


class ModuleJsonMemory(_InMemory, ModuleJson):
    """OutputModule(format=json) at its default buffer_size, into memory."""

    params = [N_ITEMS, names("output", SUBJECT), [1], [1000]]


class ModuleParquetMemory(_InMemory, ModuleParquet):
    """OutputModule(format=parquet) at its default buffer_size, into memory."""

    params = [N_ITEMS, names("output", SUBJECT), [1], [1000]]


class ItemFilesMemory(_InMemory, ItemFiles):
    """The plain loop and the write-only ceiling writing item files, with and without fsync, into memory."""

    params = [N_ITEMS, ["loop", "ceiling_write"], [1], FSYNC]


class SingleFileMemory(_InMemory, SingleFile):
    """Every single-file writer, no fsync, into memory."""

    params = [N_ITEMS, list(formats.SINGLE_FILE), [1], [False]]


preload(keys=SURVIVE)

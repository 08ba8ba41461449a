"""File-mode ingest: stac-manager's IngestModule beside the Phase 2 designs and ceilings.

Each source has two classes: ``<Source>Module`` runs stac-manager (``module``,
``module_queue``: the history profile) and ``<Source>`` runs the harness designs and
ceilings, which never import stac-manager (the full profile).  Both share parameter names,
so the report shows them as one scenario; ``Control`` is the history profile's cheap
subject-independent row, whose drift across commits is the noise floor.

Every run is checked whole (``checks.ItemCheck``): exactly the source's items, each equal
to its source item (digests stored with the dataset) and valid STAC.  ``GeoParquet`` reads
the standard stac-geoparquet layout; ``Malformed`` a directory where 5 % of the files are
not items, which every strategy must skip and count (``track_bad_items``).
"""

import asyncio
import functools
import time
import tracemalloc

from .lib import checks, counts, datacache, loaders, sources, strategies
from .lib.checks import ItemCheck, ResultMismatch
from .lib.itemgen import malformed_files
from .lib.runners import Runner
from .lib.scenario import Scenario, SkipNotImplemented, WriteThroughput, measured_where, preload
from .lib.settings import CONCURRENCY, CONDITION_LEVELS, N_ITEMS, PROBE_ITEMS
from .lib.strategies import CEILING, HARNESS, SUBJECT
from .lib.subject import (
    collected_failures,
    import_subject,
    ingest_config,
    ingest_each,
    ingest_module,
    make_context,
    probe_ingest,
)


@functools.lru_cache(maxsize=8)
def stored_digests(root):
    """The item digests stored beside the dataset at ``root``, loaded once per process."""
    return datacache.read_digests(root)


class _FileIngest(Scenario):
    """Ingest one on-disk source; ``source`` names it (a row of ``lib.sources.TABLE``)."""

    source = None
    version = "3"
    param_names = ["n_items", "strategy", "concurrency"]
    #: An encoding allowance of this source (see ``checks.canonical_datetimes``).
    normalise = None

    def setup_cache(self):
        return {n: str(datacache.ensure_dataset(n)) for n in {*N_ITEMS, PROBE_ITEMS}}

    def setup(self, roots, n_items, strategy, concurrency):
        self.n = n_items
        strategies.check_workers(strategy, concurrency)
        datacache.check_source(roots[n_items], self.source)
        self.digests = stored_digests(roots[n_items])
        checks.prepare(n_items)
        path = sources.source_path(roots[n_items], self.source)
        label = f"{self.source}/{strategy}/{concurrency}"
        kind = strategies.kind(strategy)
        if kind == SUBJECT:
            self.run = self._module(roots, path, strategy, concurrency, label)
        elif kind == CEILING:
            self.run = self._ceiling(path, strategy, concurrency, label)
        else:
            units = sources.units(self.source, path, n_items)
            if len(units) == 1 and concurrency > 1:
                raise NotImplementedError(f"one {self.source} document cannot be split")
            self.runner = Runner(strategy, concurrency)
            self.run = lambda: self._checked(lambda check: self.runner.each(loaders.load, units, check.add_all),
                                             label)

    def _module(self, roots, path, strategy, concurrency, label):
        def config(p):
            base = {"mode": "file", "source": str(p)}
            if self.source in ("parquet", "geoparquet"):
                base["format"] = "parquet"  # fb2117d..9c76e6a do not detect it
            return ingest_config(base, strategy, concurrency)

        probe = sources.source_path(roots[PROBE_ITEMS], self.source)
        probe_ingest(config(probe), f"a {self.source} source")
        conf, context = config(path), make_context()
        self.module_config, self.module_context = conf, context  # Phase1Method times its own loop
        return lambda: self._checked(lambda check: ingest_each(conf, check.add, context), label)

    def _check(self, label):
        return ItemCheck(self.n, label, digests=self.digests, normalise=self.normalise)

    def _checked(self, produce, label):
        """One run: ``produce`` streams every item into the check, which keeps none of them."""
        check = self._check(label)
        produce(check)
        check.finish()

    def _ceiling(self, path, strategy, concurrency, label):
        units = sources.ceiling_units(self.source, path, self.n)
        if strategy == "ceiling_parse":
            def produce(check):
                for unit in units:
                    check.add_all(loaders.load_orjson(unit))
            return lambda: self._checked(produce, label)
        # What must be read: the manifest's sizes of the source's files (collection.json aside).
        size = sum(v for k, v in datacache.source_sizes(path.parent, self.source).items()
                   if not k.endswith("collection.json"))

        def run():
            got = sum(map(loaders.read_bytes, units))
            if got != size:
                raise ResultMismatch(f"{label}: read {got} bytes, the manifest says {size}")
        return run


class _Module(_FileIngest, counts.Counted):
    """stac-manager's IngestModule on this source (history profile)."""

    profile = "history"
    params = [N_ITEMS, strategies.names("file", SUBJECT), CONCURRENCY]


class _Harness(_FileIngest):
    """The harness designs and ceilings on this source: no stac-manager (full profile).  A
    ceiling's memory is not measured: it reads or decodes and keeps nothing."""

    params = [N_ITEMS, strategies.names("file", HARNESS, CEILING), CONCURRENCY]
    track_mem_mb = measured_where(Scenario.track_mem_mb, params, _FileIngest.param_names,
                                  lambda strategy, **_: strategies.kind(strategy) != CEILING)


class Directory(_Harness):
    """A directory of item JSON files."""

    source = "directory"


class DirectoryModule(_Module):
    """A directory of item JSON files, read by stac-manager."""

    source = "directory"


class FeatureCollection(_Harness):
    """One FeatureCollection JSON file."""

    source = "feature_collection"


class FeatureCollectionModule(_Module):
    """One FeatureCollection JSON file, read by stac-manager."""

    source = "feature_collection"


class Ndjson(_Harness):
    """One newline-delimited JSON file (stac-manager reads no ndjson at any commit so far)."""

    source = "ndjson"


class NdjsonModule(_Module):
    """One newline-delimited JSON file, read by stac-manager where it can (n/a so far)."""

    source = "ndjson"


class Parquet(_Harness):
    """One Parquet file, nested columns (the layout stac-manager's OutputModule writes)."""

    source = "parquet"


class ParquetModule(_Module):
    """One Parquet file, nested columns, read by stac-manager."""

    source = "parquet"


class CollectionRoot(_Harness):
    """A collection root: collection.json and items/."""

    source = "collection"


class CollectionRootModule(_Module):
    """A collection root, read by stac-manager."""

    source = "collection"


class Control(_Harness, counts.Counted):
    """The suite's noise floor: the plain loop over the directory, in every profile."""

    profile = "history"
    source = "directory"
    params = [N_ITEMS, ["loop"], [1]]


class ImportBaseline:
    """Memory of importing stac-manager's ingest module alone: subtract it from peakmem_run."""

    version = "1"
    profile = "history"

    def setup(self):
        import_subject("stac_manager.modules.ingest")

    def peakmem_import(self):
        """Peak RSS after importing the ingest module and the harness."""


# --- the standard stac-geoparquet layout ------------------------------------------------------

class GeoParquet(_Harness):
    """One stac-geoparquet file (rustac's layout: WKB geometry, flattened properties, timestamps),
    read back into items by pyarrow + rustac.from_arrow, a row group per unit.

    Any RFC 3339 spelling of the same instant is the same item (``checks.canonical_datetimes``);
    anything else that differs from the generated item fails.
    """

    version = "1"
    source = "geoparquet"
    normalise = staticmethod(checks.canonical_datetimes)
    #: A layout of the Parquet source, whose designs run at every level: here a condition.
    params = [N_ITEMS, strategies.names("file", HARNESS, CEILING), CONDITION_LEVELS]


class GeoParquetModule(_Module):
    """One stac-geoparquet file, read by stac-manager (``format: parquet``), held to the same check.

    stac-manager (every commit so far, and the stand-in) reads Parquet with
    ``pq.read_table(...).to_pylist()``: on this layout that yields rows, not items (geometry
    as WKB bytes, bbox as a struct, properties at the top level, timestamps as datetime
    objects), so this benchmark fails naming what differs.
    """

    version = "1"
    source = "geoparquet"
    normalise = staticmethod(checks.canonical_datetimes)


# --- malformed files among good ones ----------------------------------------------------------

class _Malformed(_FileIngest):
    """A directory where ``itemgen.MALFORMED_SHARE`` of the files are not items (truncated JSON,
    a JSON array, a non-STAC object): every strategy must deliver exactly the good items and
    count exactly the bad files, else the run fails naming the files."""

    source = "malformed"
    version = "1"

    def setup(self, roots, n_items, strategy, concurrency):
        self.bad_items, self.counts = None, strategy != "ceiling_read"
        self.path = path = sources.source_path(roots[n_items], self.source)
        self.bad = sorted(str(path / name) for name in malformed_files(n_items))
        super().setup(roots, n_items, strategy, concurrency)
        if strategies.kind(strategy) == HARNESS:
            units = sources.units(self.source, path, n_items)
            label = f"{self.source}/{strategy}/{concurrency}"
            self.run = lambda: self._counted(lambda consume: self.runner.each(loaders.load_counted, units, consume),
                                             label)
        elif strategy == "ceiling_parse":
            units = sources.units(self.source, path, n_items)
            self.run = lambda: self._counted(lambda consume: [consume(loaders.load_counted_orjson(u)) for u in units],
                                             f"{self.source}/{strategy}")

    def _check(self, label):
        return ItemCheck(self.n, label, digests=self.digests, origin=lambda iid: str(self.path / f"{iid}.json"))

    def _counted(self, produce, label):
        """One run of a harness loader that returns ``(items, bad files)`` per unit."""
        check, bad = self._check(label), []

        def consume(result):
            items, skipped = result
            check.add_all(items)
            bad.extend(path for path, _ in skipped)

        produce(consume)
        check.finish()
        bad.sort()
        if bad != self.bad:  # exactly the malformed files, each once
            wrong, missed = sorted(set(bad) - set(self.bad)), sorted(set(self.bad) - set(bad))
            raise ResultMismatch(f"{label}: counted {len(bad)} bad files, the source has {len(self.bad)}: "
                                 f"good files counted as bad {wrong[:3]}, bad files not counted {missed[:3]}")
        self.bad_items = len(bad)

    def _module(self, roots, path, strategy, concurrency, label):
        """stac-manager on the directory: its FailureCollector must count every malformed file.

        n/a where the commit cannot read a directory or has no FailureCollector (it cannot
        count bad items at all); a commit that crashes, yields a bad file's content, drops a
        good item or leaves the collector short of the malformed files fails, naming them.
        """
        probe_ingest(ingest_config({"mode": "file", "source": str(sources.source_path(roots[PROBE_ITEMS],
                                                                                      "directory"))},
                                   strategy, concurrency), "a directory")
        if make_context().failure_collector is None:
            raise NotImplementedError("this commit has no FailureCollector: it cannot count bad items")
        conf = ingest_config({"mode": "file", "source": str(path)}, strategy, concurrency)
        return lambda: self._module_run(conf, label)

    def _module_run(self, conf, label):
        context = make_context()
        check = self._check(label)
        names = ", ".join(p.rsplit("/", 1)[-1] for p in self.bad[:3]) + (", ..." if len(self.bad) > 3 else "")
        where = f"a directory with {len(self.bad)} malformed files ({names})"
        try:
            ingest_each(conf, check.add, context)
            check.finish()
        except ResultMismatch as exc:
            raise ResultMismatch(f"{exc} [reading {where}]") from exc
        except Exception as exc:  # noqa: BLE001 - a crash on bad input is the finding
            raise ResultMismatch(f"{label}: stac-manager raised {type(exc).__name__}: {exc} reading {where}; "
                                 f"it must skip and count them") from exc
        failures = collected_failures(context.failure_collector)
        if failures != len(self.bad):
            raise ResultMismatch(f"{label}: every good item delivered, but the FailureCollector holds {failures} "
                                 f"failures for {where}: this commit does not collect bad files (its file mode "
                                 f"logs them)")
        self.bad_items = failures

    def track_bad_items(self, *args):
        """Malformed files one run skipped and counted: exactly the source's, or the run fails."""
        if not self.counts:
            raise SkipNotImplemented("ceiling_read decodes nothing: it cannot tell a bad file")
        self.run()
        return self.bad_items

    track_bad_items.unit = "items"


class Malformed(_Malformed):
    """A directory with 5 % malformed files: the harness designs and ceilings (full profile), at
    ``CONDITION_LEVELS`` as the other conditions.  Their memory is ``Directory``'s, and their
    count of bad files is the source's whenever ``time_run`` passes (its check demands it), so
    only ``time_run`` is measured; ``MalformedModule`` keeps stac-manager's count."""

    params = [N_ITEMS, strategies.names("file", HARNESS, CEILING), CONDITION_LEVELS]
    track_mem_mb = track_bad_items = None


class MalformedModule(_Malformed, counts.Counted):
    """A directory with 5 % malformed files, read by stac-manager (history profile)."""

    profile = "history"
    params = [N_ITEMS, strategies.names("file", SUBJECT), CONCURRENCY]


# --- the Phase 1 scripts' measurement ---------------------------------------------------------

class Phase1Method(DirectoryModule, WriteThroughput):
    """The directory read by stac-manager, timed the way the Phase 1 scripts timed it.

    stac-manager's branch ``enhancement--profile-ingest-module``,
    ``scripts/profiling/profile_file_io.py`` ``benchmark_sequential_files``: the module is
    built outside the timed region, which then counts the items of
    ``IngestModule({"mode": "file", "source": dir}).fetch(context)`` inside
    ``measure_memory``, i.e. between ``tracemalloc.start()`` and ``tracemalloc.stop()``.
    ``timing="tracemalloc"`` repeats that; ``"plain"`` is the same loop untraced.  Only the
    ids are kept, and the id set is checked after the timed region: a lost or duplicated item
    still fails.  Same data, probe and config as ``DirectoryModule`` (full profile only).
    """

    profile = None
    version = "1"
    params = [N_ITEMS, ["module"], [1], ["plain", "tracemalloc"]]
    track_instructions = track_alloc_mb = None  # DirectoryModule's numbers: the same run
    param_names = [*DirectoryModule.param_names, "timing"]

    def setup(self, roots, n_items, strategy, concurrency, timing):
        super().setup(roots, n_items, strategy, concurrency)  # probe, config, context: n/a as there
        self.traced, self.label = timing == "tracemalloc", f"{self.source}/{strategy}/{concurrency}/{timing}"
        self.run = self._phase1_run

    def _phase1_run(self):
        ids = asyncio.run(self._phase1_ids(ingest_module()[0](self.module_config), self.module_context))
        checks.check_ids(ids, self.n, self.label, "Phase 1 count")

    async def _phase1_ids(self, module, context):
        """The Phase 1 timed region (measure_time around measure_memory); sets ``last_wall``."""
        ids = []
        start = time.perf_counter()
        if self.traced:
            tracemalloc.start()
        try:
            async for item in module.fetch(context):
                ids.append(item["id"])
        finally:
            if self.traced:
                tracemalloc.get_traced_memory()
                tracemalloc.stop()
            self.last_wall = time.perf_counter() - start
        return ids


preload()

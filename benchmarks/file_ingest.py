"""File-mode ingest: stac-manager's IngestModule beside the Phase 2 designs and ceilings.

Each source has two classes: ``<Source>Module`` runs stac-manager (``module``,
``module_queue``: the history profile) and ``<Source>`` runs the harness designs and
ceilings, which never import stac-manager (the full profile).  Both share parameter names,
so the report shows them as one scenario; ``Control`` is the history profile's cheap
subject-independent row, whose drift across commits is the noise floor.
"""

from . import (CONCURRENCY, N_ITEMS, PROBE_ITEMS, datagen, import_subject, ingest_config, ingest_each,
               make_context, probe_ingest, strategies, _sources)
from ._harness import ItemCheck, Runner, Scenario
from .strategies import CEILING, HARNESS, SUBJECT


class _FileIngest(Scenario):
    """Ingest one on-disk source; ``source`` names it (see datagen.SOURCES)."""

    source = None
    version = "2"
    param_names = ["n_items", "strategy", "concurrency"]

    def setup_cache(self):
        return {n: str(datagen.ensure_dataset(n)) for n in {*N_ITEMS, PROBE_ITEMS}}

    def setup(self, roots, n_items, strategy, concurrency):
        self.n = n_items
        strategies.check_workers(strategy, concurrency)
        path = datagen.source_path(roots[n_items], self.source)
        label = f"{self.source}/{strategy}/{concurrency}"
        kind = strategies.kind(strategy)
        if kind == SUBJECT:
            self.run = self._module(roots, path, strategy, concurrency, label)
        elif kind == CEILING:
            self.run = self._ceiling(path, strategy, concurrency, label)
        else:
            units = _sources.units(self.source, path, n_items)
            if len(units) == 1 and concurrency > 1:
                raise NotImplementedError(f"one {self.source} document cannot be split")
            self.runner = Runner(strategy, concurrency)
            self.run = lambda: self._checked(lambda check: self.runner.each(_sources.load, units, check.add_all),
                                             label)

    def _module(self, roots, path, strategy, concurrency, label):
        def config(p):
            base = {"mode": "file", "source": str(p)}
            if self.source == "parquet":
                base["format"] = "parquet"  # fb2117d..9c76e6a do not detect it
            return ingest_config(base, strategy, concurrency)

        probe = datagen.source_path(roots[PROBE_ITEMS], self.source)
        probe_ingest(config(probe), f"a {self.source} source")
        conf, context = config(path), make_context()
        return lambda: self._checked(lambda check: ingest_each(conf, check.add, context), label)

    def _checked(self, produce, label):
        """One run: ``produce`` streams every item into the check, which keeps none of them."""
        check = ItemCheck(self.n, label)
        produce(check)
        check.finish()

    def _ceiling(self, path, strategy, concurrency, label):
        units = _sources.ceiling_units(self.source, path, self.n)
        if strategy == "ceiling_parse":
            def produce(check):
                for unit in units:
                    check.add_all(_sources.load_orjson(unit))
            return lambda: self._checked(produce, label)
        size = sum(map(_sources.read_bytes, units))

        def run():
            got = sum(map(_sources.read_bytes, units))
            assert got == size, f"{label}: read {got} bytes, expected {size}"
        return run


class _Module(_FileIngest):
    """stac-manager's IngestModule on this source (history profile)."""

    profile = "history"
    params = [N_ITEMS, strategies.names("file", SUBJECT), CONCURRENCY]


class _Harness(_FileIngest):
    """The harness designs and ceilings on this source: no stac-manager (full profile)."""

    params = [N_ITEMS, strategies.names("file", HARNESS, CEILING), CONCURRENCY]


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


class Control(_Harness):
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

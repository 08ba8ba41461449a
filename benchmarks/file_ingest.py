"""File-mode ingest: stac-manager's IngestModule beside the Phase 2 designs and ceilings."""

from . import (CONCURRENCY, N_ITEMS, datagen, import_subject, ingest_config, ingest_each,
               make_context, probe_ingest, _sources)
from ._harness import ItemCheck, Runner, Scenario

#: ``module``/``module_queue``: stac-manager itself (Phase 2 worker_strategy when accepted);
#: ``loop`` .. ``processes``: harness prototypes (see _harness); ``ceiling_*``: upper bounds.
STRATEGIES = ["module", "module_queue", "loop", "semaphore", "queue", "threads", "processes",
              "ceiling_read", "ceiling_parse"]
PROBE_ITEMS = 3


class _FileIngest(Scenario):
    """Ingest one on-disk source; ``source`` names it (see datagen.SOURCES)."""

    source = None
    version = "1"
    params = [N_ITEMS, STRATEGIES, CONCURRENCY]
    param_names = ["n_items", "strategy", "concurrency"]

    def setup_cache(self):
        return {n: str(datagen.ensure_dataset(n)) for n in {*N_ITEMS, PROBE_ITEMS}}

    def setup(self, roots, n_items, strategy, concurrency):
        self.n = n_items
        path = datagen.source_path(roots[n_items], self.source)
        label = f"{self.source}/{strategy}/{concurrency}"
        if strategy.startswith("module"):
            self.run = self._module(roots, path, strategy, concurrency, label)
        elif strategy.startswith("ceiling"):
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
        if concurrency != 1:
            raise NotImplementedError("ceilings are sequential")
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


class Directory(_FileIngest):
    """A directory of item JSON files."""

    source = "directory"


class FeatureCollection(_FileIngest):
    """One FeatureCollection JSON file."""

    source = "feature_collection"


class Ndjson(_FileIngest):
    """One newline-delimited JSON file (harness only: stac-manager does not read ndjson)."""

    source = "ndjson"


class Parquet(_FileIngest):
    """One Parquet file, nested columns (the layout stac-manager's OutputModule writes)."""

    source = "parquet"


class CollectionRoot(_FileIngest):
    """A collection root: collection.json and items/."""

    source = "collection"


class ImportBaseline:
    """Memory of importing stac-manager's ingest module alone: subtract it from peakmem_run."""

    version = "1"

    def setup(self):
        import_subject("stac_manager.modules.ingest")

    def peakmem_import(self):
        """Peak RSS after importing the ingest module and the harness."""

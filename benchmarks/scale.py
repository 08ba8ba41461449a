"""The ``scale`` selection: stac-manager's sequential rows at several collection sizes in one run.

Each class is one row of another suite (the same setup, run and check, by inheritance) with
``n_items`` taking every value of ``STAC_BENCH_SCALES`` (default 1,000, 10,000 and 100,000):
one asv series per row, ``n_items`` its x-axis.  ``tools.bench scale`` runs this module and
nothing else; the other profiles leave it out (``tools.bench``), and a bare ``asv run`` finds every
row n/a (``settings.scale_selected``) without generating a dataset.  The report's scaling table
(``tools.reporting.scaling``) reads ``time_run`` and ``track_mem_mb`` per item against ``n``.

Rows: stac-manager's file ingest of each source it can read (``File*``; the stac-geoparquet
layout, which it reads as rows, and the malformed directory are the full profile's), its
OutputModule in JSON and Parquet at its default ``buffer_size`` (``Output*``), the pipeline
(``Pipeline``) and the API search at 0 ms added latency (``ApiSearch``), each at one worker.

Every run is checked whole, as in its own suite.  At 100,000 items the checks' once-per-process
work (the expected items' digests, about 17 s a kind) is done once per commit in asv's
forkserver when ``STAC_BENCH_PRELOAD_SCALES=1`` (``tools.bench scale`` sets it); the pipeline's
fresh ``updated`` stamps are validated through stand-ins (``validity.stand_in``), as the
hybrids' are, so the check stays a fraction of the run.  Instruction counts and allocation
peaks are the history rows' (at ``COUNT_ITEMS`` items whatever ``n``): none here.
"""

import orjson

from . import api_ingest, file_ingest, output, pipeline
from .lib import datacache, sources
from .lib.checks import ItemCheck, exact
from .lib.readback import SURVIVE
from .lib.scenario import preload
from .lib.settings import PROBE_ITEMS, SCALE_SIZES, preload_scales, scale_selected
from .lib.subject import ingest_each

#: The selection's sampling: at most 3 samples, none started after 20 s (1,000 items get 3,
#: 100,000 get 1).
SCALE_REPEAT = (1, 3, 20.0)
#: Why a row is n/a when the selection was not asked for (a bare ``asv run``).
NOT_SELECTED = ("the scale selection runs with `python -m tools.bench scale` (or STAC_BENCH_SCALES set): "
                "a bare `asv run` leaves its 100,000 items alone")


def dataset_roots():
    """``{n: dataset root}`` of every scale and the probe dataset (verified, generated if missing)."""
    return {n: str(datacache.ensure_dataset(n)) for n in {*SCALE_SIZES, PROBE_ITEMS}}


def source_items(root):
    """The items of the dataset at ``root``, as generated (its ndjson source, checked against the manifest)."""
    datacache.check_source(root, "ndjson")
    with open(sources.source_path(root, "ndjson"), "rb") as fh:
        return [orjson.loads(line) for line in fh]


class _Scale:
    """What every row of the selection shares: its profile, sampling, datasets and measurements."""

    profile = "scale"
    version = "1"
    #: A 100,000-item run, or its datasets' generation in ``setup_cache`` (minutes), fits.
    timeout = 3600
    #: The history rows' numbers, at ``COUNT_ITEMS`` items whatever ``n``: not a scale's.
    track_instructions = track_alloc_mb = None
    history_params = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.repeat = SCALE_REPEAT  # after Scenario's, which gives every other profile's class its own

    def setup_cache(self):
        return dataset_roots() if scale_selected() else None

    def setup(self, roots, *params):
        self.require(roots)
        super().setup(roots, *params)

    @staticmethod
    def require(roots):
        """n/a unless the selection was asked for (``setup_cache`` then made no datasets)."""
        if roots is None:
            raise NotImplementedError(NOT_SELECTED)


# --- file ingest: one row per source stac-manager reads ---------------------------------------

class _File(_Scale, file_ingest._Module):
    params = [SCALE_SIZES, ["module"], [1]]


class FileDirectory(_File):
    """A directory of item JSON files, read by stac-manager's IngestModule."""

    source = "directory"


class FileFeatureCollection(_File):
    """One FeatureCollection JSON file, read by stac-manager."""

    source = "feature_collection"


class FileNdjson(_File):
    """One ndjson file, read by stac-manager where it can (n/a at every commit so far)."""

    source = "ndjson"


class FileParquet(_File):
    """One Parquet file, nested columns, read by stac-manager."""

    source = "parquet"


class FileCollection(_File):
    """A collection root (collection.json and items/), read by stac-manager."""

    source = "collection"


# --- output: OutputModule at its default buffer_size --------------------------------------------

class _Output(_Scale, output._Module):
    params = [SCALE_SIZES, ["module"], [1], [1000]]
    track_throughput = None  # the write's own throughput is the output suite's

    def setup(self, roots, n_items, strategy, concurrency, buffer_size):
        # the items to write, from the dataset: a 100,000-item setup_cache would be pickled whole
        self.require(roots)
        super().setup({n_items: source_items(roots[n_items])}, n_items, strategy, concurrency, buffer_size)


class OutputJson(_Output):
    """OutputModule(format=json): one indented JSON file per item."""

    fmt = "json"


class OutputParquet(_Output):
    """OutputModule(format=parquet): one Parquet file per 1,000 items."""

    fmt = "parquet"


# --- the pipeline and the API search ----------------------------------------------------------

class Pipeline(_Scale, pipeline.PipelineModule):
    """stac-manager end to end (directory -> UpdateModule -> OutputModule json), no checkpoints."""

    params = [SCALE_SIZES, ["module"], [1], [False]]
    stand_in = True
    track_throughput = track_share_ingest = track_share_transform = None
    track_share_output = track_share_checkpoint = None


class ApiSearch(_Scale, api_ingest.SearchModule):
    """stac-manager's api mode fetching the whole collection from the loopback STAC API, 0 ms added.

    The items stream into the check: the suite's row keeps them in a list until its check (to
    report what arrived before a fault), which at 100,000 items is 2.5 GB of the harness's own."""

    params = [SCALE_SIZES, ["module"], [1], [0]]

    def deliver(self, conf, context):
        check = ItemCheck(self.n, self.label, normalise=api_ingest.server_normalise(self.url))
        ingest_each(conf, check.add, context)
        check.finish()


if preload_scales():
    for expect, keys, loose in ((exact, None, ()), (exact, SURVIVE, ()),
                                (pipeline.expected_item, SURVIVE, pipeline.LOOSE_PROPS)):
        preload(expect, keys, loose, sizes=SCALE_SIZES)

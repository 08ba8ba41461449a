"""Every strategy the suites run, in one table that the runner, the suites and the report read.

A strategy has a *kind*:

``subject``  stac-manager itself: its numbers move with the stac-manager commit.
``hybrid``   a harness design wrapped around stac-manager's own modules (moves with it too).
``harness``  a prototype that never imports stac-manager: it measures the machine, and its
             drift between two runs is the noise floor (the report's controls).
``ceiling``  an upper bound (no parsing, no work): also independent of stac-manager.

and a *workers* rule: ``any`` concurrency, ``sequential`` (1 only), or ``pooled`` (more than 1).
Adding a strategy is one row here plus its function (``runners.DESIGNS``, ``api_clients.CLIENTS``,
``formats.SINGLE_FILE`` or the suite that runs it).  Nothing here imports anything heavy:
``tools/reporting`` reads this table without stac-manager or asv installed.
"""

from dataclasses import dataclass

SUBJECT, HYBRID, HARNESS, CEILING = "subject", "hybrid", "harness", "ceiling"
ANY, SEQUENTIAL, POOLED = "any", "sequential", "pooled"
#: Kinds whose numbers do not depend on the stac-manager commit.
CONTROL_KINDS = (HARNESS, CEILING)


@dataclass(frozen=True)
class Strategy:
    name: str
    kind: str
    workers: str
    suites: tuple
    doc: str


TABLE = (
    # stac-manager
    Strategy("module", SUBJECT, ANY, ("file", "api", "output", "pipeline", "large_files"),
             "stac-manager's own module (Phase 2 `concurrency`, worker_strategy=semaphore, where declared)"),
    Strategy("module_queue", SUBJECT, ANY, ("file",),
             "IngestModule with Phase 2 worker_strategy=queue (n/a where not declared)"),
    Strategy("module_per_file", SUBJECT, ANY, ("large_files",),
             "one IngestModule per file, N of them at once in one event loop"),
    Strategy("concurrent_ingest", HYBRID, ANY, ("pipeline",),
             "item files read by a harness thread pool, then stac-manager's Update/OutputModule"),
    Strategy("concurrent_ingest_batched_output", HYBRID, ANY, ("pipeline",),
             "as concurrent_ingest, each batch written by the same pool in OutputModule's format"),
    # harness designs over work units (runners.DESIGNS)
    Strategy("loop", HARNESS, SEQUENTIAL, ("file", "output", "pipeline", "large_files"), "a plain for-loop"),
    Strategy("semaphore", HARNESS, ANY, ("file", "output"), "asyncio tasks, at most N in flight"),
    Strategy("queue", HARNESS, ANY, ("file", "output"), "an asyncio.Queue drained by N workers"),
    Strategy("threads", HARNESS, ANY, ("file", "output", "large_files"), "a ThreadPoolExecutor of N threads"),
    Strategy("processes", HARNESS, ANY, ("file", "output", "large_files"), "a ProcessPoolExecutor of N processes"),
    # API clients without stac-manager (api_clients.CLIENTS)
    Strategy("pystac_client", HARNESS, SEQUENTIAL, ("api",), "pystac-client, retries configured"),
    Strategy("pystac_client_threads", HARNESS, POOLED, ("api",), "pystac-client in N threads, time-split"),
    Strategy("aiohttp_sequential", HARNESS, SEQUENTIAL, ("api",), "aiohttp following next links"),
    Strategy("aiohttp_offset", HARNESS, POOLED, ("api",), "aiohttp, N workers on offset pages"),
    Strategy("aiohttp_split", HARNESS, POOLED, ("api",), "aiohttp, N workers on time-split searches"),
    Strategy("rustac", HARNESS, SEQUENTIAL, ("api",), "rustac.search (Rust, reqwest)"),
    # single-file writers (formats.SINGLE_FILE)
    Strategy("feature_collection", HARNESS, SEQUENTIAL, ("output",), "one FeatureCollection file"),
    Strategy("ndjson", HARNESS, SEQUENTIAL, ("output",), "one newline-delimited JSON file"),
    Strategy("parquet", HARNESS, SEQUENTIAL, ("output",), "one Parquet file (pyarrow, nested columns)"),
    Strategy("geoparquet", HARNESS, SEQUENTIAL, ("output",), "one stac-geoparquet file (rustac)"),
    # upper bounds
    Strategy("ceiling_read", CEILING, SEQUENTIAL, ("file", "large_files"), "read the bytes, decode nothing"),
    Strategy("ceiling_parse", CEILING, SEQUENTIAL, ("file",), "read and decode with orjson (pyarrow)"),
    Strategy("ceiling_fetch", CEILING, ANY, ("api",), "the offset pages fetched raw, no parsing"),
    Strategy("ceiling_latency", CEILING, ANY, ("api",), "the added latency alone, N in flight"),
    Strategy("ceiling_server", CEILING, ANY, ("api",), "server + proxy capacity, cached responses"),
    Strategy("ceiling_server_uncached", CEILING, ANY, ("api",), "server + proxy capacity, every request to rustac"),
    Strategy("ceiling_serialise", CEILING, SEQUENTIAL, ("output",), "serialise with orjson, write nothing"),
    Strategy("ceiling_write", CEILING, SEQUENTIAL, ("output",), "write pre-serialised bytes"),
)
BY_NAME = {s.name: s for s in TABLE}


def get(name):
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}") from None


def kind(name):
    """The kind of ``name``, or None for a name not in the table."""
    strategy = BY_NAME.get(name)
    return strategy.kind if strategy else None


def names(suite, *kinds, exclude=()):
    """Names of the strategies ``suite`` runs, of ``kinds`` (all kinds if none), in table order."""
    return [s.name for s in TABLE
            if suite in s.suites and (not kinds or s.kind in kinds) and s.name not in exclude]


def check_workers(name, concurrency):
    """Raise NotImplementedError (asv: n/a) where ``name`` makes no sense at ``concurrency``."""
    rule = get(name).workers
    if rule == SEQUENTIAL and concurrency != 1:
        raise NotImplementedError(f"{name} is sequential")
    if rule == POOLED and concurrency == 1:
        raise NotImplementedError(f"{name} needs several workers (see the sequential rows)")

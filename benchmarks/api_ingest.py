"""API-mode ingest against a real STAC API (rustac serve) on loopback, behind a latency/fault proxy.

``SearchModule`` / ``FaultsModule`` run stac-manager (history profile); ``Search`` / ``Faults``
run the clients without it and the ceilings (full profile); ``Control`` is the suite's
subject-independent noise floor (both profiles).
"""

import asyncio
import math
import random

from . import (CONCURRENCY, LATENCY, N_ITEMS, datagen, ingest_config, ingest_items, ingest_module,
               make_context, probe, strategies)
from . import _stacapi
from ._harness import ResultMismatch, Scenario, _sample, check_items
from .strategies import CEILING, HARNESS, SUBJECT

try:
    from asv_runner.benchmarks.mark import SkipNotImplemented
except ImportError:  # outside asv (tests, by hand)
    class SkipNotImplemented(NotImplementedError):
        pass

#: At least this many pages at every scale, so that 50 workers have pages to share.
MIN_PAGES = 50
#: The largest page: stac-manager's default ``limit``.
MAX_LIMIT = 100
RETRY = _stacapi.Retry(attempts=5, backoff=0.05, max_wait=10.0)


def page_limit(n_items):
    """Items per page: stac-manager's default (100) unless that leaves fewer than MIN_PAGES pages."""
    return max(1, min(MAX_LIMIT, n_items // MIN_PAGES))


def check_api_items(items, n_items, label, base_url):
    """``check_items`` for items served by the API: exact id set, and a spread sample equal to the
    generated items once the links the server adds (``self``, ``root``, ``parent``, ``collection``
    pointing at ``base_url``) are removed."""
    check_items(items, n_items, label, exact=False)
    by_id = {item["id"]: item for item in items}
    for i in _sample(n_items):
        want = datagen.make_item(i)
        got = _stacapi.server_links(by_id[want["id"]], base_url)
        if got != want:
            keys = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
            raise ResultMismatch(f"{label}: item {want['id']} differs from the source in {keys}")
    return items


def _has_pystac_client():
    try:
        import pystac_client  # noqa: F401
    except ImportError:
        return False
    return True


def n_pages(n_items):
    return max(1, math.ceil(n_items / page_limit(n_items)))


class _ApiIngest(Scenario):
    """Fetch every item of the collection from the API; one server + proxy per setup."""

    version = "2"
    param_names = ["n_items", "strategy", "concurrency", "latency_ms"]
    #: proxy options (fault injection) applied after the warm-up run
    faults = {}
    #: reseed the proxy before each run, so every run meets the same faults
    reseed = False

    def setup_cache(self):
        return {n: str(datagen.ensure_dataset(n)) for n in N_ITEMS}

    def setup(self, roots, n_items, strategy, concurrency, latency_ms):
        self.n, self.api, self.limit = n_items, None, page_limit(n_items)
        self.label = f"api/{strategy}/{concurrency}/{latency_ms}ms"
        self._validate(strategy, concurrency, latency_ms)
        if strategy == "ceiling_latency":
            self.run = self._ceiling_latency(n_items, concurrency, latency_ms)
            return
        try:
            root = roots[n_items]
            self.api = _stacapi.StacApi(datagen.source_path(root, "feature_collection"),
                                        datagen.source_path(root, "collection") / "collection.json",
                                        latency_ms=latency_ms).start()
            self.url = self.api.url
            if strategy == "module":
                run = self._module(concurrency)
            elif strategy == "ceiling_fetch":
                run = self._ceiling_fetch(concurrency)
            else:
                run = self._client(strategy, concurrency)
            if self.faults:
                self.api.configure(**self.faults, reset_stats=True)
            self.run = self._reseeding(run) if self.reseed else run
        except BaseException:
            self.teardown()
            raise

    def _validate(self, strategy, concurrency, latency_ms):
        strategies.check_workers(strategy, concurrency)
        if strategy == "ceiling_latency" and not latency_ms:
            raise NotImplementedError("no latency, no latency bound")
        if strategy == "module":
            ingest_config({"mode": "api", "source": "http://127.0.0.1"}, "module", concurrency)
        if strategy.startswith("pystac_client") and not _has_pystac_client():
            raise NotImplementedError("pystac-client is not installed in this environment")

    def teardown(self, *args):
        api = getattr(self, "api", None)
        if api is not None:
            api.stop()
            self.api = None
        super().teardown(*args)

    def _reseeding(self, run):
        seed = self.api.proxy_config["seed"]

        def reseeded():
            self.api.configure(seed=seed)
            return run()
        return reseeded

    def _client(self, strategy, concurrency):
        def run():
            items = _stacapi.fetch_all(strategy, self.url, datagen.COLLECTION_ID, self.limit, concurrency, RETRY)
            return check_api_items(items, self.n, self.label, self.url)
        run()  # warm-up: fills the proxy's response cache, checks once
        return run

    def _module_config(self, concurrency):
        base = {"mode": "api", "source": self.url, "collection_id": datagen.COLLECTION_ID, "limit": self.limit}
        return ingest_config(base, "module", concurrency)

    def _module(self, concurrency):
        conf = self._module_config(concurrency)
        cls, _ = ingest_module()
        probe(lambda: cls(conf), "take an api config")
        context = make_context(data={"collection_id": datagen.COLLECTION_ID})

        def run():
            return check_api_items(ingest_items(conf, context), self.n, self.label, self.url)

        before = self.api.stats()["requests"]
        try:
            run()  # warm-up
        except NotImplementedError:
            raise
        except Exception as exc:
            if self.api.stats()["requests"] == before:  # it never spoke to the API: no api mode
                raise NotImplementedError(f"this commit's api mode never contacts the API: "
                                          f"{type(exc).__name__}: {exc}") from exc
            raise
        return run

    def _ceiling_fetch(self, concurrency):
        """The pages the offset strategy needs, known in advance, fetched as bytes (no JSON decoding)."""
        bodies = [_stacapi.search_body(datagen.COLLECTION_ID, self.limit, skip=k * self.limit)
                  for k in range(n_pages(self.n))]
        pages = _stacapi.aiohttp_offset(self.url, datagen.COLLECTION_ID, self.limit, 1, RETRY)
        check_api_items(pages, self.n, self.label, self.url)
        sizes = _stacapi.raw_fetch(self.url, bodies, concurrency)  # warm-up (same bodies)

        def run():
            got = _stacapi.raw_fetch(self.url, bodies, concurrency)
            if got != sizes:
                raise ResultMismatch(f"{self.label}: page sizes {got} differ from {sizes}")
        return run

    def _ceiling_latency(self, n_items, concurrency, latency_ms):
        """Only the added latency of the same pages, ``concurrency`` in flight: the latency bound."""
        pages = n_pages(n_items)
        config = _stacapi.DEFAULT_PROXY
        jitter, seed = config["jitter"], config["seed"]

        async def waves():
            rng = random.Random(f"latency:{seed}")
            sem = asyncio.Semaphore(concurrency)

            async def one():
                async with sem:
                    await asyncio.sleep(latency_ms / 1000 * rng.uniform(1 - jitter, 1 + jitter))
            await asyncio.gather(*(one() for _ in range(pages)))

        return lambda: asyncio.run(waves())


class Search(_ApiIngest):
    """Fetch a whole collection through the proxy, no faults: the clients and ceilings."""

    params = [N_ITEMS, strategies.names("api", HARNESS, CEILING, exclude=("ceiling_server",
                                                                          "ceiling_server_uncached")),
              CONCURRENCY, LATENCY]


class SearchModule(_ApiIngest):
    """Fetch a whole collection through the proxy, no faults: stac-manager's api mode."""

    profile = "history"
    params = [N_ITEMS, strategies.names("api", SUBJECT), CONCURRENCY, LATENCY]


class Control(_ApiIngest):
    """The suite's noise floor: aiohttp following next links at 0 ms, in every profile."""

    profile = "history"
    params = [N_ITEMS, ["aiohttp_sequential"], [1], [0]]


#: The fault kinds the proxy injects (``drop`` closes the connection before any response).
FAULTS = ["429", "500", "drop"]
FAULT_RATE = 0.1


class _Faults(_ApiIngest):
    """Fetch a whole collection while the proxy injects one fault kind into 10 % of requests."""

    # A run either returns the exact item set (the strategy retried) or gives up with an
    # error naming what it could not fetch: that run is then n/a (SkipNotImplemented, the
    # reason in asv's log) and track_delivered records the fraction it had fetched.  A short
    # or duplicated item set without an error fails the benchmark (ResultMismatch).

    param_names = ["n_items", "strategy", "concurrency", "fault"]
    repeat = (1, 2, 10.0)
    reseed = True

    def setup(self, roots, n_items, strategy, concurrency, fault):
        self.faults = {"fault": fault, "fault_rate": FAULT_RATE, "retry_after": 1}
        super().setup(roots, n_items, strategy, concurrency, 0)
        self.label = f"api-faults/{strategy}/{concurrency}/{fault}"
        self.checked_run, self.run = self.run, self._gave_up_is_na

    def _module(self, concurrency):
        super()._module(concurrency)  # probes api mode and warms the cache, without faults
        cls, _ = ingest_module()
        conf = self._module_config(concurrency)
        context = make_context(data={"collection_id": datagen.COLLECTION_ID})

        async def collect(sink):  # ingest_items, but keeping what arrived before an error
            async for item in cls(conf).fetch(context):
                sink.append(item)

        def run():
            sink = []
            try:
                asyncio.run(collect(sink))
            except Exception as exc:  # stac-manager gave up: it raised, it did not go silent
                raise _stacapi.IncompleteFetch(f"stac-manager raised after {len(sink)} items: "
                                               f"{type(exc).__name__}: {exc}", ["module"], len(sink)) from exc
            return check_api_items(sink, self.n, self.label, self.url)
        return run

    def _gave_up_is_na(self):
        try:
            return self.checked_run()
        except _stacapi.IncompleteFetch as exc:
            raise SkipNotImplemented(f"{self.label} gave up: {exc}") from exc

    def track_delivered(self, *args):
        """Fraction of the items one run delivered: 1.0 when it retried to the exact set."""
        try:
            self.checked_run()
        except _stacapi.IncompleteFetch as exc:
            return exc.fetched / self.n
        return 1.0

    track_delivered.unit = "fraction"


class Faults(_Faults):
    """The clients without stac-manager under faults (full profile)."""

    params = [N_ITEMS, strategies.names("api", HARNESS), [1, 10], FAULTS]


class FaultsModule(_Faults):
    """stac-manager's api mode under faults (history profile)."""

    profile = "history"
    params = [N_ITEMS, strategies.names("api", SUBJECT), [1, 10], FAULTS]


#: Concurrency of the capacity probe and of the fastest clients it is compared with.
CAPACITY_CONCURRENCY = 10
HEADROOM_CLIENTS = [("aiohttp_sequential", 1), ("aiohttp_offset", 5), ("aiohttp_offset", 10),
                    ("aiohttp_split", 5), ("pystac_client", 1), ("rustac", 1)]


class ServerCapacity(_ApiIngest):
    """What rustac + the proxy deliver at 0 ms (raw pages, no parsing): the harness's own ceiling."""

    params = [N_ITEMS, ["ceiling_server", "ceiling_server_uncached"], [CAPACITY_CONCURRENCY], [0]]
    param_names = ["n_items", "strategy", "concurrency", "latency_ms"]

    def setup(self, roots, n_items, strategy, concurrency, latency_ms):
        super().setup(roots, n_items, "ceiling_fetch", concurrency, latency_ms)
        self.label = f"api/{strategy}/{concurrency}"
        self.cached = strategy == "ceiling_server"
        self.api.configure(cache=self.cached)

    def track_headroom(self, *args):
        """Server+proxy items/s divided by the fastest client's items/s at 0 ms (best of 3 each)."""
        from ._harness import items_per_second

        capacity = max(items_per_second(self.run, self.n) for _ in range(3))
        fastest = 0.0
        for strategy, concurrency in HEADROOM_CLIENTS:
            def fetch(s=strategy, c=concurrency):
                items = _stacapi.fetch_all(s, self.url, datagen.COLLECTION_ID, self.limit, c, RETRY)
                check_api_items(items, self.n, f"{self.label}/{s}/{c}", self.url)

            if strategy.startswith("pystac_client") and not _has_pystac_client():
                continue
            fetch()  # warm-up (fills the cache for this client's requests when it is on)
            fastest = max(fastest, *(items_per_second(fetch, self.n) for _ in range(3)))
        return capacity / fastest

    track_headroom.unit = "x"

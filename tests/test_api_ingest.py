"""The API-mode suite: rustac serve + the proxy on loopback, the clients, and the benchmark classes.

Everything runs against a real ``rustac serve`` and real pystac-client on 127.0.0.1;
stac-manager itself is the stand-in package (tests/standin).  Clients that give up:
test_api_failures.py.
"""

import psutil
import pytest

from api_env import CLIENTS, LIMIT, N, children, fetch, new_api, port_closed, workers
from benchmarks import api_ingest
from benchmarks.lib import api_clients as clients
from benchmarks.lib import api_server, datacache, itemgen
from benchmarks.lib.checks import ResultMismatch

# --- the fixture itself ------------------------------------------------------------------

def test_server_and_proxy_start_serve_and_stop_cleanly(api_dataset):
    from pystac_client import Client

    before = {p.pid for p in children()}
    server = new_api(api_dataset).start()
    try:
        assert len(server.pids) == 2 and all(psutil.pid_exists(pid) for pid in server.pids)
        assert server.url.startswith("http://127.0.0.1:")
        client = Client.open(server.url)
        assert client.get_collection(itemgen.COLLECTION_ID).id == itemgen.COLLECTION_ID
        items = list(client.search(collections=[itemgen.COLLECTION_ID], limit=LIMIT).items_as_dicts())
        api_ingest.check_api_items(items, N, "pystac-client", server.url)
        # rustac writes links for the proxy's address: clients never bypass the proxy
        page = api_server.http_json("POST", f"{server.url}/search", {"limit": LIMIT})
        assert clients.next_link(page)["href"].startswith(server.url)
        stats = server.stats()
        assert stats["search_requests"] >= N // LIMIT and stats["status"] == {"200": stats["requests"]}
    finally:
        pids, ports = server.pids, server.ports
        server.stop()
        server.stop()  # idempotent
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for pid in pids)
    assert all(port_closed(port) for port in ports)
    assert {p.pid for p in children()} <= before


def test_a_failed_start_leaves_nothing_behind(api_dataset, tmp_path):
    before = {p.pid for p in children()}
    bad = api_server.StacApi(tmp_path / "missing.json", itemgen.make_collection([]), startup_timeout=10)
    with pytest.raises(RuntimeError, match="rustac serve exited"):
        bad.start()
    assert {p.pid for p in children()} <= before


# --- clients: exact item sets ------------------------------------------------------------

@pytest.mark.parametrize("latency_ms", [0, 20])
@pytest.mark.parametrize("strategy", CLIENTS)
def test_each_client_returns_exactly_the_items(clean, strategy, latency_ms):
    clean.configure(latency_ms=latency_ms)
    items = fetch(clean, strategy)
    api_ingest.check_api_items(items, N, strategy, clean.url)


def searches(api):
    """The proxy's timeline records of /search requests since the last reset."""
    return [r for r in api.timeline() if r["path"].startswith("/search")]


def most_in_flight(records):
    """The most requests the proxy held at one instant (its own clock; an end before a start at a tie)."""
    events = sorted([(r["start"], 1) for r in records] + [(r["end"], -1) for r in records])
    depth = most = 0
    for _, step in events:
        depth += step
        most = max(most, depth)
    return most


def test_latency_is_added_per_request(clean):
    # Read off the proxy's records (received .. response ready), never off the client's clock.
    clean.configure(latency_ms=100, jitter=0.0)
    fetch(clean, "aiohttp_sequential")  # warm the cache
    clean.configure(reset_stats=True)
    fetch(clean, "aiohttp_sequential")
    pages = searches(clean)
    assert len(pages) >= N // LIMIT
    assert all(r["delay"] >= 0.1 and r["end"] - r["start"] >= 0.1 for r in pages)
    assert most_in_flight(pages) == 1  # one after another: the added latencies add up
    clean.configure(reset_stats=True)
    fetch(clean, "aiohttp_offset", concurrency=10)
    pages = searches(clean)
    assert all(r["delay"] >= 0.1 for r in pages)
    assert 1 < most_in_flight(pages) <= 10  # page 0, then the rest held at the same time


def test_offset_pages_are_not_fetched_twice(clean):
    items = fetch(clean, "aiohttp_offset", concurrency=4)
    assert len(items) == len({item["id"] for item in items}) == N


def test_split_windows_are_disjoint_and_cover_the_extent():
    windows = clients.split_windows(["2024-01-01T00:00:00Z", "2024-01-01T00:00:10Z"], 3)
    assert windows[0].startswith("2024-01-01T00:00:00.000000Z/")
    assert windows[-1].endswith("/2024-01-01T00:00:10.000000Z")
    assert clients.split_windows([None, None], 4) == ["../.."]


def test_the_check_catches_a_silent_short_or_duplicated_set(clean):
    items = fetch(clean, "aiohttp_sequential")
    with pytest.raises(ResultMismatch, match="lost"):
        api_ingest.check_api_items(items[LIMIT:], N, "short", clean.url)
    with pytest.raises(ResultMismatch, match="duplicated"):
        api_ingest.check_api_items(items[:-1] + items[:1], N, "dup", clean.url)
    changed = [dict(item) for item in items]
    changed[0] = {**changed[0], "properties": {**changed[0]["properties"], "gsd": 20}}
    with pytest.raises(ResultMismatch, match="properties"):
        api_ingest.check_api_items(changed, N, "changed", clean.url)


# --- clients under faults ------------------------------------------------------------------

#: Outcomes other than "retried to the exact set" that a client is known to produce: rustac
#: 0.9.18's search retries a request once at most, whatever max_retries_per_request says, and
#: does not retry a dropped POST at all (test_rustac_retries_once_only).
GIVES_UP = {("rustac", "429"), ("rustac", "500"), ("rustac", "drop")}


@pytest.mark.parametrize("fault", ["429", "500", "drop"])
@pytest.mark.parametrize("strategy", CLIENTS)
def test_each_client_retries_faults_to_the_exact_set(clean, strategy, fault):
    clean.configure(fault=fault, fault_rate=1.0, fault_limit=2, retry_after=0)
    try:
        items = fetch(clean, strategy)
    except clients.IncompleteFetch as exc:
        assert (strategy, fault) in GIVES_UP, f"{strategy} gave up under {fault}: {exc}"
        assert exc.missing
        return
    assert clean.stats()["faults"][fault] == 2
    api_ingest.check_api_items(items, N, f"{strategy}/{fault}", clean.url)


@pytest.mark.parametrize("fault, survives", [("429", True), ("500", True), ("drop", False)])
def test_rustac_retries_once_only(clean, fault, survives):
    clean.configure(fault=fault, fault_rate=1.0, fault_limit=1)
    if survives:
        api_ingest.check_api_items(fetch(clean, "rustac"), N, "rustac", clean.url)
    else:
        with pytest.raises(clients.IncompleteFetch, match="rustac.search failed"):
            fetch(clean, "rustac")


@pytest.mark.parametrize("strategy", ["aiohttp_sequential", "aiohttp_offset", "pystac_client"])
def test_429_retry_after_is_honoured(clean, strategy):
    fetch(clean, strategy)  # warm
    clean.configure(fault="429", fault_rate=1.0, fault_limit=1, retry_after=1, reset_stats=True)
    items = fetch(clean, strategy)
    api_ingest.check_api_items(items, N, strategy, clean.url)
    records = clean.timeline()
    [fault] = [r for r in records if r["status"] == 429]
    retried = min(r["start"] for r in records if r["start"] > fault["end"])
    assert retried - fault["end"] >= 1.0  # the next request waited for Retry-After (proxy's clock)


GIVE_UP_RETRY = clients.Retry(attempts=2, backoff=0.0, timeout=10.0, deadline=60.0)


@pytest.mark.parametrize("strategy, match, named", [
    ("aiohttp_sequential", r'"skip":\s*20\b', "page 2"),
    ("aiohttp_offset", r'"skip":\s*20\b', "skip=20"),
    ("aiohttp_split", r'"skip":\s*10\b', "datetime="),
    ("pystac_client", r'"skip":\s*20\b', "after 20 items"),
    ("pystac_client_threads", r'"skip":\s*10\b', "datetime="),
    ("rustac", r'"skip":\s*20\b', "rustac.search failed"),
])
def test_a_client_that_gives_up_names_what_is_missing(clean, strategy, match, named):
    clean.configure(fault="500", fault_rate=1.0, fault_match=match)
    with pytest.raises(clients.IncompleteFetch, match=named) as info:
        fetch(clean, strategy, retry=GIVE_UP_RETRY)
    assert info.value.missing
    if strategy == "aiohttp_offset":
        assert info.value.missing == [20] and info.value.fetched == N - LIMIT
    if strategy in ("aiohttp_split", "pystac_client_threads"):
        assert len(info.value.missing) == 3  # every sub-search fails at its second page


# --- the benchmark classes ----------------------------------------------------------------

@pytest.fixture(autouse=True)
def small_pages(monkeypatch):
    """The benchmark classes page by ``api_ingest.page_limit``: 6 pages here, as for the clients."""
    monkeypatch.setattr(api_ingest, "page_limit", lambda n_items: LIMIT)


def roots(api_dataset):
    return {N: str(api_dataset)}


def run_bench(cls, api_dataset, *params, measure="run"):
    bench = cls()
    try:
        bench.setup(roots(api_dataset), N, *params)
        if measure != "track_mem_mb":
            return getattr(bench, measure)()
        runs, run = [], bench.run
        bench.run = lambda: runs.append(run()) or runs[-1]
        value = bench.track_mem_mb()
        assert isinstance(value, float) and len(runs) == 1, "track_mem_mb must measure exactly one complete run"
        return value
    finally:
        bench.teardown()


@pytest.mark.parametrize("strategy, concurrency, latency_ms", [
    ("aiohttp_offset", 5, 0), ("pystac_client", 1, 10), ("ceiling_fetch", 5, 0),
    ("ceiling_latency", 5, 10),
])
def test_search_benchmark_runs_and_cleans_up(api_dataset, strategy, concurrency, latency_ms):
    before = {p.pid for p in children()}
    assert run_bench(api_ingest.Search, api_dataset, strategy, concurrency, latency_ms,
                     measure="track_mem_mb") is not None
    assert {p.pid for p in children()} <= before


@pytest.mark.parametrize("strategy", ["aiohttp_sequential", "pystac_client"])
def test_the_warm_up_waits_no_latency_and_the_timed_runs_do(api_dataset, strategy, monkeypatch):
    """The added latency is switched on after the warm-up fetch (it fills the cache and checks,
    untimed), so a 50 ms row does not pay 50 pages x 50 ms once more in every setup."""
    warm = []
    configure = api_server.StacApi.configure

    def spy(self, **changes):
        warm.extend(self.timeline())  # the requests before the timed runs: the warm-up's
        return configure(self, **changes)

    monkeypatch.setattr(api_server.StacApi, "configure", spy)
    bench = api_ingest.Search()
    bench.setup(roots(api_dataset), N, strategy, 1, 20)
    try:
        bench.run()
        timed = bench.api.timeline()
    finally:
        bench.teardown()
    assert warm and all(r["delay"] == 0 for r in warm), warm[:3]
    assert timed and all(r["delay"] >= 0.020 * 0.8 - 1e-9 for r in timed), timed[:3]


@pytest.mark.parametrize("strategy, concurrency, latency_ms", [
    ("aiohttp_sequential", 5, 0), ("aiohttp_offset", 1, 0), ("ceiling_latency", 1, 0),
    ("ceiling_fetch", 5, 50),  # under added latency ceiling_latency is the bound
])
def test_senseless_combinations_are_na_before_any_server_starts(api_dataset, strategy, concurrency, latency_ms):
    bench = api_ingest.Search()
    with pytest.raises(NotImplementedError):
        bench.setup(roots(api_dataset), N, strategy, concurrency, latency_ms)
    assert bench.api is None


def test_faults_benchmark_retries_or_is_na(api_dataset):
    assert run_bench(api_ingest.Faults, api_dataset, "aiohttp_offset", 10, "500", measure="track_delivered") == 1.0
    bench = api_ingest.Faults()
    bench.setup(roots(api_dataset), N, "rustac", 1, "drop")
    try:
        bench.api.configure(fault_rate=1.0)  # every request dropped: rustac gives up
        with pytest.raises(api_ingest.SkipNotImplemented, match="gave up"):
            bench.run()
        assert bench.track_delivered() == 0.0
    finally:
        bench.teardown()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("strategy", CLIENTS)
def test_a_client_that_gives_up_under_faults_is_na_and_delivers_nothing(api_dataset, strategy):
    # One situation (every request fails), one outcome for every client: n/a, and 0.0 delivered.
    bench = api_ingest.Faults()
    bench.setup(roots(api_dataset), N, strategy, workers(strategy, 10), "500")
    try:
        bench.api.configure(fault_rate=1.0, retry_after=0)
        with pytest.raises(api_ingest.SkipNotImplemented, match="gave up"):
            bench.run()
        assert bench.track_delivered() == 0.0
    finally:
        bench.teardown()


def test_a_client_that_gives_up_without_faults_fails(api_dataset):
    bench = api_ingest.Search()
    bench.setup(roots(api_dataset), N, "aiohttp_offset", 5, 0)
    try:
        bench.api.configure(fault="500", fault_rate=1.0)  # behind the benchmark's back: not n/a
        with pytest.raises(clients.IncompleteFetch):
            bench.run()
    finally:
        bench.teardown()


def test_a_setup_that_fails_after_starting_the_server_stops_it(api_dataset, monkeypatch):
    def mangled(*args):
        raise ResultMismatch("planted")
    monkeypatch.setattr(api_ingest, "check_api_items", mangled)
    before = {p.pid for p in children()}
    bench = api_ingest.Search()
    with pytest.raises(ResultMismatch, match="planted"):
        bench.setup(roots(api_dataset), N, "aiohttp_sequential", 1, 0)  # the warm-up run fails its check
    assert bench.api is None
    assert {p.pid for p in children()} <= before


def test_server_capacity_has_headroom(api_dataset):
    assert run_bench(api_ingest.ServerCapacity, api_dataset, "ceiling_server", 10, 0, measure="track_headroom") > 1


# --- the module strategy, on the stand-in stac-manager ------------------------------------

def test_module_strategy_on_the_standin(api_dataset, standin_at):
    standin_at("c3_current")
    assert run_bench(api_ingest.SearchModule, api_dataset, "module", 1, 10, measure="track_mem_mb") is not None
    with pytest.raises(NotImplementedError, match="concurrency"):
        run_bench(api_ingest.SearchModule, api_dataset, "module", 5, 0)
    standin_at("c4_phase2")
    run_bench(api_ingest.SearchModule, api_dataset, "module", 5, 0)
    standin_at("c2_old_context")  # its api mode reads the URL as a file: never contacts the API
    with pytest.raises(NotImplementedError, match="never contacts the API"):
        run_bench(api_ingest.SearchModule, api_dataset, "module", 1, 0)
    standin_at("c1_no_ingest")
    with pytest.raises(NotImplementedError):
        run_bench(api_ingest.SearchModule, api_dataset, "module", 1, 0)


def test_module_under_faults_gives_up_loudly_not_silently(api_dataset, standin_at):
    standin_at("c3_current")  # urllib, no retries: the first 500 ends the ingest
    bench = api_ingest.FaultsModule()
    bench.setup(roots(api_dataset), N, "module", 1, "500")
    try:
        bench.api.configure(fault_rate=1.0, fault_match=r'"skip"')
        with pytest.raises(api_ingest.SkipNotImplemented, match="stac-manager raised after 10 items"):
            bench.run()
        assert bench.track_delivered() == pytest.approx(LIMIT / N)
    finally:
        bench.teardown()


def test_every_scale_has_enough_pages_for_fifty_workers(monkeypatch):
    # Q3 (best worker count) needs at least 50 pages to share at every concurrency level.
    monkeypatch.undo()  # the real page size, not the tests' small one
    for n_items in (60, 1000, 10000, 123457):
        assert api_ingest.n_pages(n_items) >= 50, n_items
    assert api_ingest.page_limit(10000) == 100  # stac-manager's default page, where it suffices


def test_api_control_runs_without_stac_manager(api_dataset):
    assert run_bench(api_ingest.Control, api_dataset, "aiohttp_sequential", 1, 0, measure="track_mem_mb") is not None


@pytest.mark.parametrize("mangle", [
    lambda item: item["properties"].update({"platform": "landsat-9"}),
    lambda item: item.update({"assets": {}}),
    lambda item: item.update({"bbox": None}),
])
def test_api_check_compares_every_item(mangle):
    # One item outside any sample, changed after the server's own links are taken off: it fails.
    base = "http://127.0.0.1:9"
    items = [{**item, "links": [*item["links"], {"rel": "self", "href": f"{base}/x/{item['id']}"}]}
             for item in itemgen.make_items(N)]
    api_ingest.check_api_items(items, N, "clean", base)
    mangle(items[7])
    with pytest.raises(ResultMismatch):
        api_ingest.check_api_items(items, N, "mangled", base)


@pytest.mark.parametrize("damaged", ["items.json", "collection/collection.json"])
def test_a_damaged_source_is_refused_before_the_server_starts(tmp_path, monkeypatch, damaged):
    """What the server loads is checked against the manifest first: damaged data is never blamed
    on a client (a short or mangled result) and starts no server."""
    monkeypatch.setenv("STAC_BENCH_DATA_DIR", str(tmp_path))
    own = datacache.ensure_dataset(N)
    path = own / damaged
    path.write_bytes(path.read_bytes()[:-1])
    before = {p.pid for p in children()}
    bench = api_ingest.Search()
    with pytest.raises(datacache.DatasetError, match=damaged):
        bench.setup({N: str(own)}, N, "aiohttp_sequential", 1, 0)
    bench.teardown()
    assert {p.pid for p in children()} == before

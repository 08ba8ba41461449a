"""The API clients by strategy name (``CLIENTS``), and the pystac-client and rustac clients.

Every client fetches every item of one collection and returns the item dicts.  It works
under a ``Retry``: at most ``attempts`` tries per request, ``timeout`` seconds per try and
``deadline`` seconds for the whole fetch; it retries 429 (Retry-After honoured, capped),
500/502/503/504 and dropped connections; the pooled ones stop claiming work once
``concurrency`` pages or sub-searches in a row have failed (the server is gone).  When a
client gives up it raises ``IncompleteFetch`` naming what it could not fetch: it never
returns a short list and never loops.  ``strategies.TABLE`` says which clients take
``concurrency`` (its workers rule).
"""

import asyncio
import concurrent.futures as cf
import threading

from . import strategies
from .api_aiohttp import aiohttp_offset, aiohttp_sequential, aiohttp_split, raw_fetch  # noqa: F401
from .api_paging import (  # noqa: F401 - the clients' bounds and errors, by the clients' name
    DEFAULT_RETRY,
    NO_RETRY,
    RETRY_STATUS,
    Budget,
    FailureStreak,
    IncompleteFetch,
    PageFailed,
    Retry,
    next_link,
    search_body,
    server_links,
    split_failure,
    split_windows,
)


def pystac_retry(retry=DEFAULT_RETRY):
    """A urllib3 Retry for pystac-client: POST too, the same status codes, Retry-After honoured."""
    from urllib3 import Retry as Urllib3Retry

    if retry.attempts <= 1:
        return None
    return Urllib3Retry(total=retry.attempts - 1, backoff_factor=retry.backoff, backoff_max=retry.max_wait,
                        status_forcelist=RETRY_STATUS, allowed_methods=None,
                        respect_retry_after_header=True, raise_on_status=True)


def pystac_client_open(url, retry=DEFAULT_RETRY, budget=None):
    """A pystac-client ``Client``; with ``budget``, every request counts and none starts after its deadline."""
    from pystac_client import Client
    from pystac_client.stac_api_io import StacApiIO

    def spend(request):  # pystac-client turns the PageFailed into an APIError
        budget.spend(f"{request.method} {request.url}")

    return Client.open(url, stac_io=StacApiIO(max_retries=pystac_retry(retry), timeout=retry.timeout,
                                              request_modifier=spend if budget else None))


def _pystac_call(label, items, call, *args, **kw):
    """``call(...)``; pystac-client's APIError (any failed request) becomes IncompleteFetch."""
    from pystac_client.exceptions import APIError

    try:
        return call(*args, **kw)
    except APIError as exc:
        raise IncompleteFetch(f"{label}: gave up after {len(items)} items: APIError: {exc}",
                              [f"{label} after item {len(items)}"], len(items)) from exc


def _pystac_items(client, label, items=None, **search):
    """Every item of one search, page by page, appended to ``items`` (kept when it gives up)."""
    items = [] if items is None else items

    def drain():
        for page in client.search(**search).pages_as_dicts():
            items.extend(page.get("features", []))
    _pystac_call(label, items, drain)
    return items


def pystac_client_sequential(url, collection_id, limit, retry=DEFAULT_RETRY):
    """pystac-client as stac-manager uses it (POST search, pages in turn), retries configured."""
    label = "pystac_client search"
    client = _pystac_call(label, [], pystac_client_open, url, retry, Budget(retry))
    return _pystac_items(client, label, collections=[collection_id], limit=limit)


def pystac_client_threads(url, collection_id, limit, concurrency, chunks=None, retry=DEFAULT_RETRY):
    """pystac-client in ``concurrency`` threads, one client each, over time-split sub-searches."""
    budget, local = Budget(retry), threading.local()
    streak, lock = FailureStreak(concurrency, budget), threading.Lock()

    def client():
        if getattr(local, "client", None) is None:
            local.client = _pystac_call("pystac_client_threads", [], pystac_client_open, url, retry, budget)
        return local.client

    coll = _pystac_call(f"pystac_client_threads collection {collection_id}", [],
                        lambda: client().get_collection(collection_id))
    interval = [t.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if t else None for t in coll.extent.temporal.intervals[0]]
    windows, results = split_windows(interval, chunks or concurrency), {}

    def one(window):
        if streak.stopped():
            return
        items = results[window] = []
        try:
            _pystac_items(client(), f"datetime={window}", items, collections=[collection_id], limit=limit,
                          datetime=window)
            error = None
        except IncompleteFetch as exc:
            error = str(exc)
        with lock:
            streak.record(window, error)

    with cf.ThreadPoolExecutor(concurrency, thread_name_prefix="pystac") as pool:
        list(pool.map(one, windows))
    items = [item for w in windows for item in results.get(w, [])]
    if streak.failed or len(results) < len(windows):
        raise split_failure("pystac_client_threads", items, windows, streak.failed, results)
    return items


def rustac_search(url, collection_id, limit, retry=DEFAULT_RETRY):
    """rustac's own client (``rustac.search``, Rust + reqwest), with its retries, under the deadline."""
    import rustac

    async def run():
        async with asyncio.timeout(retry.deadline):
            return await rustac.search(url, collections=[collection_id], limit=limit,
                                       max_retries_per_request=max(0, retry.attempts - 1),
                                       retry_status_codes=list(RETRY_STATUS))

    try:
        items = asyncio.run(run())
    except (rustac.RustacError, TimeoutError) as exc:
        reason = f"the deadline ({retry.deadline} s) passed" if isinstance(exc, TimeoutError) else \
            f"{type(exc).__name__}: {exc}"
        raise IncompleteFetch(f"rustac.search failed, no items returned: {reason}", ["search"], 0) from exc
    return [item for item in items if item is not None]


CLIENTS = {
    "pystac_client": pystac_client_sequential,
    "pystac_client_threads": pystac_client_threads,
    "aiohttp_sequential": aiohttp_sequential,
    "aiohttp_offset": aiohttp_offset,
    "aiohttp_split": aiohttp_split,
    "rustac": rustac_search,
}


def takes_concurrency(strategy):
    return strategies.get(strategy).workers != strategies.SEQUENTIAL


def fetch_all(strategy, url, collection_id, limit, concurrency=1, retry=DEFAULT_RETRY):
    """Every item of the collection with client ``strategy`` (its workers rule checked)."""
    strategies.check_workers(strategy, concurrency)
    fn = CLIENTS[strategy]
    if takes_concurrency(strategy):
        return fn(url, collection_id, limit, concurrency, retry=retry)
    return fn(url, collection_id, limit, retry=retry)

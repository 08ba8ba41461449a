"""API clients on aiohttp: pages one after another, offset pages in parallel, time-split searches,
and the raw page fetch of the ceilings.  Bounds and errors: ``api_paging``."""

import asyncio
import json

from .api_paging import (
    DEFAULT_RETRY,
    RETRY_STATUS,
    Budget,
    FailureStreak,
    IncompleteFetch,
    PageFailed,
    next_link,
    search_body,
    split_failure,
    split_windows,
)


async def _request(session, method, url, body, budget, what):
    """One JSON request with bounded retries; raise PageFailed naming ``what`` on giving up."""
    import aiohttp

    retry, last = budget.retry, "none"
    for attempt in range(retry.attempts):
        budget.spend(f"{what} after {attempt} attempt(s), last {last}")
        retry_after = None
        try:
            timeout = aiohttp.ClientTimeout(total=max(0.001, min(retry.timeout, budget.left())))
            async with session.request(method, url, json=body, timeout=timeout) as resp:
                payload = await resp.read()
                if resp.status == 200:
                    return json.loads(payload)
                last = f"HTTP {resp.status}"
                if resp.status not in RETRY_STATUS:
                    break
                if resp.status in (429, 503):
                    retry_after = resp.headers.get("Retry-After")
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        if attempt + 1 < retry.attempts:
            await asyncio.sleep(max(0.0, min(retry.wait(attempt, retry_after), budget.left())))
    raise PageFailed(f"{what}: gave up after {attempt + 1} attempt(s), last {last}")


def _session(concurrency, retry):
    import aiohttp
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency),
                                 timeout=aiohttp.ClientTimeout(total=retry.timeout))


async def _drain(streak, claim, fetch):
    """``streak.n`` workers: claim a unit, ``await fetch(unit)``, until none is left or the streak stops."""
    async def worker():
        while not streak.stopped() and (unit := claim()) is not None:
            try:
                await fetch(unit)
            except PageFailed as exc:
                streak.record(unit, str(exc))
            else:
                streak.record(unit)

    await asyncio.gather(*(worker() for _ in range(streak.n)))


async def _follow(session, url, body, budget, label):
    """POST /search then every ``next`` link; return (items, error or None)."""
    items, method, href, page_no = [], "POST", f"{url}/search", 0
    while href:
        what = f"{label} page {page_no} ({method} {href} {json.dumps(body, sort_keys=True)})"
        try:
            page = await _request(session, method, href, body, budget, what)
        except PageFailed as exc:
            return items, str(exc)
        items.extend(page.get("features", []))
        nxt = next_link(page)
        if nxt is None:
            break
        method, href = nxt.get("method", "GET"), nxt["href"]
        body = nxt.get("body") if method == "POST" else None
        page_no += 1
    return items, None


def aiohttp_sequential(url, collection_id, limit, retry=DEFAULT_RETRY):
    """One search, its pages one after another (following ``next`` links)."""
    budget = Budget(retry)

    async def run():
        async with _session(1, retry) as session:
            return await _follow(session, url, search_body(collection_id, limit), budget, "search")

    items, error = asyncio.run(run())
    if error:
        raise IncompleteFetch(f"aiohttp_sequential fetched {len(items)} items, then {error}; "
                              "every later page is missing", [error], len(items), budget.requests)
    return items


class _Offsets:
    """Offsets to claim, ``step`` apart, up to the end (``numberMatched``, or the first short page)."""

    def __init__(self, step, end):
        self.step, self.next, self.end = step, step, end

    def claim(self):
        if self.end is not None and self.next >= self.end:
            return None
        offset, self.next = self.next, self.next + self.step
        return offset

    def end_at(self, end):
        self.end = end if self.end is None else min(self.end, end)

    def never_requested(self):
        """The offsets nobody claimed, as a name, or None."""
        if self.end is None:
            return f"every offset from {self.next} on (the end is unknown)"
        return f"offsets {self.next}..{self.end - 1}" if self.next < self.end else None


async def _offset_pages(session, url, first, concurrency, budget):
    """Pages after ``first`` by offset (``skip``): ({offset: items}, {offset: error}, never requested)."""
    pages = {0: first.get("features", [])}
    nxt = next_link(first)
    if nxt is None:
        return pages, {}, None
    body = nxt.get("body") or {}
    if nxt.get("method") != "POST" or body.get("skip") != len(pages[0]):
        raise NotImplementedError(f"the server does not page by offset: {nxt}")
    step, matched = body["skip"], first.get("numberMatched")
    offsets = _Offsets(step, matched if isinstance(matched, int) else None)

    async def fetch(offset):
        page = await _request(session, "POST", f"{url}/search", {**body, "skip": offset}, budget,
                              f"offset {offset} (skip={offset}, limit={step})")
        feats = page.get("features", [])
        if feats:
            pages[offset] = feats
        if len(feats) < step or next_link(page) is None:
            offsets.end_at(offset + len(feats))

    streak = FailureStreak(concurrency, budget)
    await _drain(streak, offsets.claim, fetch)
    failed = {o: e for o, e in streak.failed.items() if offsets.end is None or o < offsets.end}
    return pages, failed, offsets.never_requested()


def aiohttp_offset(url, collection_id, limit, concurrency, retry=DEFAULT_RETRY):
    """Page 0, then ``concurrency`` workers requesting offset pages (``skip``) in parallel.

    The page size and the offset key come from page 0's ``next`` link; the total
    comes from ``numberMatched`` when the server gives it, else the workers claim
    offsets until one page comes back short (at most ``concurrency - 1`` wasted
    requests past the end).
    """
    budget = Budget(retry)

    async def run():
        async with _session(concurrency, retry) as session:
            try:
                first = await _request(session, "POST", f"{url}/search", search_body(collection_id, limit),
                                       budget, "offset 0")
            except PageFailed as exc:
                raise IncompleteFetch(f"aiohttp_offset fetched nothing: {exc}", ["offset 0 and every page after it"],
                                      0, budget.requests) from exc
            return await _offset_pages(session, url, first, concurrency, budget)

    pages, failed, unrequested = asyncio.run(run())
    items = [item for offset in sorted(pages) for item in pages[offset]]
    if failed or unrequested:
        tail = [unrequested] if unrequested else []
        reasons = [failed[offset] for offset in sorted(failed)] + [f"never requested: {t}" for t in tail]
        raise IncompleteFetch(f"aiohttp_offset fetched {len(items)} items; {len(failed)} page(s) failed: "
                              + "; ".join(reasons), sorted(failed) + tail, len(items), budget.requests)
    return items


def aiohttp_split(url, collection_id, limit, concurrency, chunks=None, retry=DEFAULT_RETRY):
    """The collection's time extent cut into ``chunks`` sub-searches, drained by ``concurrency`` workers."""
    budget = Budget(retry)

    async def run():
        async with _session(concurrency, retry) as session:
            try:
                coll = await _request(session, "GET", f"{url}/collections/{collection_id}", None, budget,
                                      f"collection {collection_id}")
            except PageFailed as exc:
                raise IncompleteFetch(f"aiohttp_split fetched nothing: {exc}",
                                      [f"collection {collection_id} (every time window)"], 0, budget.requests) from exc
            windows = split_windows(coll["extent"]["temporal"]["interval"][0], chunks or concurrency)
            todo, results, streak = list(reversed(windows)), {}, FailureStreak(concurrency, budget)

            async def fetch(window):
                body = search_body(collection_id, limit, datetime=window)
                results[window], error = await _follow(session, url, body, budget, f"datetime={window}")
                if error:
                    raise PageFailed(error)

            await _drain(streak, lambda: todo.pop() if todo else None, fetch)
            return windows, results, streak.failed

    windows, results, failed = asyncio.run(run())
    items = [item for w in windows for item in results.get(w, [])]
    if failed or len(results) < len(windows):
        exc = split_failure("aiohttp_split", items, windows, failed, results)
        exc.requests = budget.requests
        raise exc
    return items


def raw_fetch(url, bodies, concurrency, retry=DEFAULT_RETRY):
    """POST each body to /search, ``concurrency`` at a time; return the response sizes (no parsing)."""
    async def run():
        async with asyncio.timeout(retry.deadline), _session(concurrency, retry) as session:
            sem = asyncio.Semaphore(concurrency)

            async def one(body):
                async with sem, session.post(f"{url}/search", json=body) as resp:
                    payload = await resp.read()
                    if resp.status != 200:
                        raise PageFailed(f"raw fetch {body}: HTTP {resp.status}")
                    return len(payload)

            return await asyncio.gather(*(one(b) for b in bodies))

    return asyncio.run(run())


#: strategy name -> client function (``strategies.TABLE`` says which take ``concurrency``)

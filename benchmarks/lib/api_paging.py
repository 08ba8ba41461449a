"""What every API client shares: its bounds (``Retry``, ``Budget``, ``FailureStreak``), the error it
raises when it gives up (``IncompleteFetch``), and the search helpers.

Standard library only.  The clients are in ``api_aiohttp`` and ``api_clients``.
"""

import datetime as dt
import time

#: Status codes the clients retry.
RETRY_STATUS = (429, 500, 502, 503, 504)


class IncompleteFetch(RuntimeError):
    """A client gave up: ``missing`` names the pages/sub-searches it could not fetch."""

    def __init__(self, message, missing=(), fetched=0, requests=None):
        super().__init__(message)
        self.missing = list(missing)
        self.fetched = fetched
        #: requests the client made (where it counts them), retries included
        self.requests = requests


class PageFailed(Exception):
    """One request failed every attempt (or met the deadline)."""


class Retry:
    """The bounds of one fetch: ``attempts`` tries per request, ``timeout`` s per try, ``deadline`` s
    in all.  A 429/503 waits its Retry-After (at most ``max_wait``); other failures back off."""

    def __init__(self, attempts=5, backoff=0.05, max_wait=10.0, timeout=30.0, deadline=120.0):
        self.attempts, self.backoff, self.max_wait = attempts, backoff, max_wait
        self.timeout, self.deadline = timeout, deadline

    def wait(self, attempt, retry_after=None):
        if retry_after is not None:
            try:
                return min(self.max_wait, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return min(self.max_wait, self.backoff * 2 ** attempt)


#: The bounds a client has when none are given (a ``Retry`` is never changed after it is made).
DEFAULT_RETRY = Retry()
NO_RETRY = Retry(attempts=1)


class Budget:
    """One fetch's deadline and request count under ``retry``."""

    def __init__(self, retry):
        self.retry, self.requests = retry, 0
        self.ends = time.monotonic() + retry.deadline

    def left(self):
        return self.ends - time.monotonic()

    def expired(self):
        return self.left() <= 0

    def spend(self, what):
        """Count one request; raise PageFailed (naming ``what``) once the deadline has passed."""
        if self.expired():
            raise PageFailed(f"{what}: the deadline ({self.retry.deadline} s) passed")
        self.requests += 1


class FailureStreak:
    """Workers stop claiming once ``n`` units in a row failed (the server is gone) or time is up."""

    def __init__(self, n, budget):
        self.n, self.budget, self.in_a_row, self.failed = n, budget, 0, {}

    def stopped(self):
        return self.in_a_row >= self.n or self.budget.expired()

    def record(self, unit, error=None):
        if error is None:
            self.in_a_row = 0
        else:
            self.failed[unit] = error
            self.in_a_row += 1


def search_body(collection_id, limit, **extra):
    return {"collections": [collection_id], "limit": limit, **extra}


def next_link(page):
    return next((link for link in page.get("links", []) if link.get("rel") == "next"), None)


def split_windows(interval, chunks):
    """Split a collection's temporal ``interval`` into ``chunks`` disjoint datetime ranges.

    Each window ends one microsecond before the next begins (STAC ranges are
    inclusive); an open or missing interval cannot be split: one open window.
    """
    start, end = (interval or [None, None])[:2]
    if not start or not end or chunks <= 1:
        return [f"{start or '..'}/{end or '..'}"]
    parse = lambda s: dt.datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    fmt = lambda t: t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: E731
    t0, t1 = parse(start), parse(end)
    step = (t1 - t0) / chunks
    bounds = [t0 + step * k for k in range(chunks)] + [t1]
    tick = dt.timedelta(microseconds=1)
    return [f"{fmt(bounds[k])}/{fmt(bounds[k + 1] - tick if k + 1 < chunks else bounds[k + 1])}"
            for k in range(chunks)]


def split_failure(client, items, windows, failed, results):
    """IncompleteFetch for time-split clients: failed windows, then the ones never requested."""
    unrequested = [w for w in windows if w not in results]
    parts = [f"{w} stopped after {len(results.get(w, []))} items at {e}" for w, e in failed.items()]
    parts += [f"{w} never requested" for w in unrequested]
    return IncompleteFetch(f"{client} fetched {len(items)} items; {len(failed) + len(unrequested)} "
                           f"sub-search(es) incomplete: " + "; ".join(parts),
                           [*failed, *unrequested], len(items))


def server_links(item, base_url):
    """``item`` without the links the server added (those pointing at ``base_url``)."""
    base = base_url.rstrip("/") + "/"
    links = [link for link in item.get("links", []) if not str(link.get("href", "")).startswith(base)]
    return {**item, "links": links}

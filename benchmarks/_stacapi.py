"""A real STAC API on loopback (``rustac serve``), a fault-injecting proxy, and API clients.

``StacApi`` starts two processes, both bound to 127.0.0.1 only:

* ``rustac serve`` (the STAC API server shipped in the ``rustac`` wheel, in-memory
  backend) loaded with a collection and its items.  It is started with
  ``--addr <proxy url>``, so every link it writes (``next``, ``self``, ...)
  already points at the proxy: clients never leave the proxy.
* an aiohttp reverse proxy (this file run as a script, so it has its own
  interpreter and GIL) that adds latency per request (seeded jitter), injects
  faults (429 with Retry-After, 500, a dropped connection) at a seeded rate, and
  replays cached responses.  The cache keys on (method, path and query, body);
  the data never change, so a replayed response is the byte-identical response
  rustac gave, and rustac's own cost (~20 ms per 100-item page) stops being the
  bottleneck of the clients measured behind it.  ``cache=False`` sends every
  request to rustac.

The proxy is reconfigured at run time through ``/__proxy__/config`` and reports
what it did on ``/__proxy__/stats``; these paths never get latency or faults.

The clients below fetch every item of one collection and return the item dicts.
The ones written here retry 429 (honouring Retry-After, capped), 500/502/503/504
and dropped connections a bounded number of times, and when they give up raise
``IncompleteFetch`` naming what they could not fetch: they never return a short
list.  Nothing here imports the benchmark package: the proxy runs this file as a
script.
"""

import asyncio
import atexit
import concurrent.futures as cf
import contextlib
import datetime as dt
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path

HOST = "127.0.0.1"
CONTROL = "/__proxy__"
#: Status codes the clients written here retry.
RETRY_STATUS = (429, 500, 502, 503, 504)

DEFAULT_PROXY = {
    "latency_ms": 0.0,   # mean added latency per request
    "jitter": 0.2,       # latency is uniform in [1 - jitter, 1 + jitter] x latency_ms
    "fault": None,       # None, "429", "500" or "drop"
    "fault_rate": 0.0,   # probability that a (matching) request gets the fault
    "fault_match": None,  # a regex: only requests whose "path?query body" it matches
    "fault_limit": None,  # at most this many faults in all (None: no limit)
    "retry_after": 1,    # the Retry-After header of a 429, whole seconds
    "seed": 20260124,
    "cache": True,
}


# --- process management -----------------------------------------------------------------

def rustac_executable():
    """The ``rustac`` CLI of this interpreter's environment (the wheel installs it there)."""
    candidate = Path(sys.executable).parent / "rustac"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("rustac")
    if found is None:
        raise NotImplementedError("no rustac executable: install the rustac wheel")
    return found


def free_port():
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_open(port):
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((HOST, port)) == 0


def _load_prctl():
    try:
        import ctypes
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: teardown and atexit still stop the children
        return None


_PRCTL = _load_prctl()


def _die_with_parent():
    """preexec_fn: SIGKILL the child when the process that started it dies (PR_SET_PDEATHSIG)."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)


def _kill_group(proc, grace=3.0):
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _stop_all(procs, tmpdir):
    for proc in procs:
        _kill_group(proc)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.close()
    procs.clear()
    if tmpdir:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _http(method, url, body=None, timeout=10.0):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


class StacApi:
    """``rustac serve`` behind the fault-injecting proxy; a context manager.

    ``items_path``: a JSON FeatureCollection (``datagen.SOURCES['feature_collection']``);
    ``collection``: the collection, a dict or the path of its JSON file.  ``url`` is
    the proxy's address: give it to clients.  ``stop()`` is idempotent and also runs
    at interpreter exit (and by finalizer); the children die with the process that
    started them (PR_SET_PDEATHSIG; the proxy also exits on EOF of its stdin).
    """

    def __init__(self, items_path, collection, startup_timeout=60.0, **proxy):
        unknown = set(proxy) - set(DEFAULT_PROXY)
        if unknown:
            raise TypeError(f"unknown proxy options {sorted(unknown)}")
        self.items_path = str(items_path)
        self.collection = collection
        self.startup_timeout = startup_timeout
        self.proxy_config = {**DEFAULT_PROXY, **proxy}
        self.url = self.upstream = None
        self.proxy_port = self.upstream_port = None
        self._procs = []
        self._tmpdir = None
        self._finalizer = None

    # lifecycle
    def start(self):
        if self._procs:
            return self
        self._tmpdir = tempfile.mkdtemp(prefix="stacapi-")
        self._finalizer = weakref.finalize(self, _stop_all, self._procs, self._tmpdir)
        atexit.register(self.stop)
        try:
            if isinstance(self.collection, dict):
                collection_file = Path(self._tmpdir) / "collection.json"
                collection_file.write_text(json.dumps(self.collection), encoding="utf-8")
            else:
                collection_file = Path(self.collection)
                self.collection = json.loads(collection_file.read_text(encoding="utf-8"))
            for attempt in range(5):  # another process may take a port first: try new ones
                self.upstream_port, self.proxy_port = free_port(), free_port()
                self.url = f"http://{HOST}:{self.proxy_port}"
                self.upstream = f"http://{HOST}:{self.upstream_port}"
                # Both start at once (each interpreter takes ~0.3 s to import).
                proxy = self._spawn_proxy()
                rustac = self._spawn("rustac", [
                    rustac_executable(), "serve", "--addr", self.url, "--bind",
                    f"{HOST}:{self.upstream_port}", "--use-duckdb", "false",
                    str(collection_file), self.items_path])
                if self._proxy_ready(proxy) and self._rustac_ready(rustac):
                    break
                logs = "\n".join(f"{p.log.name}: {_drain(p)}" for p in (proxy, rustac))
                _stop_all(self._procs, None)
            else:
                raise RuntimeError(f"rustac serve + proxy did not start (5 attempts); last logs:\n{logs}")
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name, argv, **kw):
        # Logs go to files: a pipe nobody reads would block the child once full.
        log = Path(self._tmpdir) / f"{name}.log"
        with open(log, "ab") as err:
            kw.setdefault("stdout", err)
            proc = subprocess.Popen(argv, start_new_session=True, preexec_fn=_die_with_parent,
                                    stderr=err, **kw)
        proc.log = log
        self._procs.append(proc)
        return proc

    def _spawn_proxy(self):
        config = {**self.proxy_config, "upstream": self.upstream, "port": self.proxy_port}
        return self._spawn("proxy", [sys.executable, str(Path(__file__).resolve()), "proxy",
                                     json.dumps(config)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def _proxy_ready(self, proc):
        line = _readline(proc.stdout, self.startup_timeout)
        if line.strip() == str(self.proxy_port):
            return True
        try:
            proc.wait(5)  # it exits when its port was taken meanwhile: try again
            return False
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"proxy did not start: {line!r} {_drain(proc)}") from None

    def _rustac_ready(self, proc):
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log = _drain(proc)
                if "in use" in log.lower():  # its port was taken meanwhile: try again
                    return False
                raise RuntimeError(f"rustac serve exited ({proc.returncode}): {log}")
            if port_open(self.upstream_port):
                try:
                    _http("GET", f"{self.upstream}/collections/{self.collection['id']}", timeout=2)
                    return True
                except (OSError, ValueError):
                    pass
            time.sleep(0.01)
        raise RuntimeError(f"rustac serve not ready after {self.startup_timeout} s: {_drain(proc)}")

    def stop(self):
        if self._finalizer is not None:
            self._finalizer()  # runs _stop_all once
            self._finalizer = None
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def pids(self):
        return [p.pid for p in self._procs]

    @property
    def ports(self):
        return [p for p in (self.proxy_port, self.upstream_port) if p]

    # proxy control
    def configure(self, **changes):
        """Change latency/faults/cache at run time (``reset_stats=True`` zeroes the counters)."""
        reset = changes.pop("reset_stats", False)
        unknown = set(changes) - set(DEFAULT_PROXY)
        if unknown:
            raise TypeError(f"unknown proxy options {sorted(unknown)}")
        self.proxy_config.update(changes)
        return _http("POST", f"{self.url}{CONTROL}/config", {**changes, "reset_stats": reset})

    def stats(self):
        return _http("GET", f"{self.url}{CONTROL}/stats")

    def clear_cache(self):
        return _http("POST", f"{self.url}{CONTROL}/cache/clear", {})


def _readline(stream, timeout):
    result = []
    reader = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0].decode() if result else ""


def _drain(proc):
    _kill_group(proc, grace=0.5)
    with contextlib.suppress(Exception):
        return proc.log.read_text(errors="replace")[-2000:]
    return ""


# --- the proxy (runs in its own process) ---------------------------------------------------

def _proxy_main(config):
    import aiohttp
    from aiohttp import web

    upstream = config.pop("upstream")
    listen_port = config.pop("port", 0)
    state = {"config": dict(config)}

    def reseed():
        seed = state["config"]["seed"]
        state["latency_rng"] = random.Random(f"latency:{seed}")
        state["fault_rng"] = random.Random(f"fault:{seed}")

    def zero():
        state["stats"] = {"requests": 0, "search_requests": 0, "forwarded": 0, "cache_hits": 0,
                          "faults": {"429": 0, "500": 0, "drop": 0}, "status": {}}

    reseed()
    zero()
    cache = {}

    async def control(request):
        path = request.path[len(CONTROL):]
        if path == "/stats":
            return web.json_response({**state["stats"], "cache_entries": len(cache)})
        body = await request.json() if request.can_read_body else {}
        if path == "/config":
            if body.pop("reset_stats", False):
                zero()
            state["config"].update(body)
            if "seed" in body:
                reseed()
            return web.json_response(state["config"])
        if path == "/cache/clear":
            cache.clear()
            return web.json_response({"cleared": True})
        raise web.HTTPNotFound()

    async def handle(request):
        if request.path.startswith(CONTROL):
            return await control(request)
        cfg, stats = state["config"], state["stats"]
        body = await request.read()
        stats["requests"] += 1
        if request.path.rstrip("/").endswith("/search"):
            stats["search_requests"] += 1
        if cfg["latency_ms"]:
            j = cfg["jitter"]
            await asyncio.sleep(cfg["latency_ms"] / 1000 * state["latency_rng"].uniform(1 - j, 1 + j))
        fault = cfg["fault"]
        if fault and cfg["fault_rate"] > 0:
            target = request.path_qs + " " + body.decode(errors="replace")
            injected = sum(stats["faults"].values())
            if (cfg["fault_match"] is None or re.search(cfg["fault_match"], target)) \
                    and (cfg["fault_limit"] is None or injected < cfg["fault_limit"]) \
                    and state["fault_rng"].random() < cfg["fault_rate"]:
                stats["faults"][fault] += 1
                if fault == "429":
                    return web.json_response({"code": "TooManyRequests"}, status=429,
                                             headers={"Retry-After": str(cfg["retry_after"])})
                if fault == "500":
                    return web.json_response({"code": "InternalServerError"}, status=500)
                request.transport.abort()  # "drop": the connection dies before any response
                raise asyncio.CancelledError()
        key = (request.method, request.path_qs, body)
        hit = cache.get(key) if cfg["cache"] else None
        if hit is None:
            stats["forwarded"] += 1
            headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
            async with session.request(request.method, upstream + request.path_qs, data=body or None,
                                       headers=headers) as resp:
                hit = (resp.status, resp.headers.get("Content-Type", "application/json"), await resp.read())
            if hit[0] == 200 and cfg["cache"]:
                cache[key] = hit
        else:
            stats["cache_hits"] += 1
        status, ctype, payload = hit
        stats["status"][str(status)] = stats["status"].get(str(status), 0) + 1
        return web.Response(status=status, body=payload, headers={"Content-Type": ctype})

    async def main():
        nonlocal session
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64),
                                        timeout=aiohttp.ClientTimeout(total=120))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, HOST, listen_port, backlog=1024)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        print(port, flush=True)
        # Nothing to flush or save: SIGTERM's default action ends the process at once, and
        # EOF on stdin (held by the parent) means the parent is gone, so go too.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
        os._exit(0)

    session = None
    asyncio.run(main())


# --- clients ---------------------------------------------------------------------------------

class IncompleteFetch(RuntimeError):
    """A client gave up: ``missing`` names the pages/sub-searches it could not fetch."""

    def __init__(self, message, missing=(), fetched=0):
        super().__init__(message)
        self.missing = list(missing)
        self.fetched = fetched


class Retry:
    """Bounded retries: ``attempts`` tries per request; 429 waits Retry-After (at most ``max_wait``)."""

    def __init__(self, attempts=5, backoff=0.05, max_wait=10.0):
        self.attempts, self.backoff, self.max_wait = attempts, backoff, max_wait

    def wait(self, attempt, retry_after=None):
        if retry_after is not None:
            try:
                return min(self.max_wait, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return min(self.max_wait, self.backoff * 2 ** attempt)


NO_RETRY = Retry(attempts=1)


class PageFailed(Exception):
    pass


def search_body(collection_id, limit, **extra):
    return {"collections": [collection_id], "limit": limit, **extra}


def _next_link(page):
    return next((link for link in page.get("links", []) if link.get("rel") == "next"), None)


async def _request(session, method, url, body, retry, what):
    """One JSON request with bounded retries; raise PageFailed naming ``what`` on giving up."""
    import aiohttp

    last = None
    for attempt in range(retry.attempts):
        retry_after = None
        try:
            async with session.request(method, url, json=body) as resp:
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
            await asyncio.sleep(retry.wait(attempt, retry_after))
    raise PageFailed(f"{what}: gave up after {attempt + 1} attempt(s), last {last}")


def _session(concurrency):
    import aiohttp
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency),
                                 timeout=aiohttp.ClientTimeout(total=60))


async def _follow(session, url, body, retry, label):
    """POST /search then every ``next`` link; return (items, error or None)."""
    items, method, href, page_no = [], "POST", f"{url}/search", 0
    while href:
        what = f"{label} page {page_no} ({method} {href} {json.dumps(body, sort_keys=True)})"
        try:
            page = await _request(session, method, href, body, retry, what)
        except PageFailed as exc:
            return items, str(exc)
        items.extend(page.get("features", []))
        nxt = _next_link(page)
        if nxt is None:
            break
        method, href = nxt.get("method", "GET"), nxt["href"]
        body = nxt.get("body") if method == "POST" else None
        page_no += 1
    return items, None


def aiohttp_sequential(url, collection_id, limit, retry=Retry()):
    """One search, its pages one after another (following ``next`` links)."""
    async def run():
        async with _session(1) as session:
            return await _follow(session, url, search_body(collection_id, limit), retry, "search")

    items, error = asyncio.run(run())
    if error:
        raise IncompleteFetch(f"aiohttp_sequential fetched {len(items)} items, then {error}; "
                              "every later page is missing", [error], len(items))
    return items


def aiohttp_offset(url, collection_id, limit, concurrency, retry=Retry()):
    """Page 0, then ``concurrency`` workers requesting offset pages (``skip``) in parallel.

    The page size and the offset key come from page 0's ``next`` link; the total
    comes from ``numberMatched`` when the server gives it, else the workers claim
    offsets until one page comes back short (at most ``concurrency - 1`` wasted
    requests past the end).
    """
    async def run():
        async with _session(concurrency) as session:
            first = await _request(session, "POST", f"{url}/search", search_body(collection_id, limit),
                                   retry, "offset 0")
            pages = {0: first.get("features", [])}
            nxt = _next_link(first)
            if nxt is None:
                return pages, []
            body = nxt.get("body") or {}
            if nxt.get("method") != "POST" or body.get("skip") != len(pages[0]):
                raise NotImplementedError(f"the server does not page by offset: {nxt}")
            step = body["skip"]
            matched = first.get("numberMatched")
            end = matched if isinstance(matched, int) else None
            state = {"next": step, "end": end}
            failed = []

            async def worker():
                while True:
                    offset = state["next"]
                    if state["end"] is not None and offset >= state["end"]:
                        return
                    state["next"] += step
                    what = f"offset {offset} (skip={offset}, limit={step})"
                    try:
                        page = await _request(session, "POST", f"{url}/search", {**body, "skip": offset},
                                              retry, what)
                    except PageFailed as exc:
                        failed.append((offset, str(exc)))
                        continue
                    feats = page.get("features", [])
                    if feats:
                        pages[offset] = feats
                    if len(feats) < step or _next_link(page) is None:
                        end_here = offset + len(feats)
                        state["end"] = end_here if state["end"] is None else min(state["end"], end_here)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            end = state["end"]
            failed = [f for f in failed if end is None or f[0] < end]
            return pages, sorted(failed)

    pages, failed = asyncio.run(run())
    items = [item for offset in sorted(pages) for item in pages[offset]]
    if failed:
        raise IncompleteFetch(
            f"aiohttp_offset fetched {len(items)} items; {len(failed)} page(s) missing: "
            + "; ".join(msg for _, msg in failed), [off for off, _ in failed], len(items))
    return items


def time_windows(interval, chunks):
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


async def _collection_interval(session, url, collection_id, retry):
    coll = await _request(session, "GET", f"{url}/collections/{collection_id}", None, retry,
                          f"collection {collection_id}")
    return coll["extent"]["temporal"]["interval"][0]


def aiohttp_split(url, collection_id, limit, concurrency, chunks=None, retry=Retry()):
    """The collection's time extent cut into ``chunks`` sub-searches, drained by ``concurrency`` workers."""
    chunks = chunks or concurrency

    async def run():
        async with _session(concurrency) as session:
            windows = time_windows(await _collection_interval(session, url, collection_id, retry), chunks)
            queue = asyncio.Queue()
            for window in windows:
                queue.put_nowait(window)
            results, failed = {}, []

            async def worker():
                while not queue.empty():
                    window = queue.get_nowait()
                    items, error = await _follow(session, url,
                                                 search_body(collection_id, limit, datetime=window),
                                                 retry, f"datetime={window}")
                    results[window] = items
                    if error:
                        failed.append((window, error, len(items)))

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return [results[w] for w in windows], failed

    batches, failed = asyncio.run(run())
    items = [item for batch in batches for item in batch]
    if failed:
        raise IncompleteFetch(
            f"aiohttp_split fetched {len(items)} items; {len(failed)} sub-search(es) incomplete: "
            + "; ".join(f"{w} stopped after {k} items at {e}" for w, e, k in failed),
            [w for w, _, _ in failed], len(items))
    return items


def pystac_retry(retry=Retry()):
    """A urllib3 Retry for pystac-client: POST too, the same status codes, Retry-After honoured."""
    from urllib3 import Retry as Urllib3Retry

    if retry.attempts <= 1:
        return None
    return Urllib3Retry(total=retry.attempts - 1, backoff_factor=retry.backoff,
                        status_forcelist=RETRY_STATUS, allowed_methods=None,
                        respect_retry_after_header=True, raise_on_status=True)


def pystac_client_open(url, retry=Retry()):
    from pystac_client import Client
    from pystac_client.stac_api_io import StacApiIO

    return Client.open(url, stac_io=StacApiIO(max_retries=pystac_retry(retry), timeout=60))


def _pystac_items(client, label, **search):
    items = []
    try:
        for item in client.search(**search).items_as_dicts():
            items.append(item)
    except Exception as exc:
        raise IncompleteFetch(f"{label} stopped after {len(items)} items: {type(exc).__name__}: {exc}",
                              [f"{label} after item {len(items)}"], len(items)) from exc
    return items


def pystac_client_sequential(url, collection_id, limit, retry=Retry()):
    """pystac-client as stac-manager uses it (POST search, pages in turn), retries configured."""
    client = pystac_client_open(url, retry)
    return _pystac_items(client, "pystac_client search", collections=[collection_id], limit=limit)


def pystac_client_threads(url, collection_id, limit, concurrency, chunks=None, retry=Retry()):
    """pystac-client in ``concurrency`` threads, one client each, over time-split sub-searches."""
    chunks = chunks or concurrency
    local = threading.local()

    def client():
        if getattr(local, "client", None) is None:
            local.client = pystac_client_open(url, retry)
        return local.client

    interval = client().get_collection(collection_id).extent.temporal.intervals[0]
    interval = [t.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if t else None for t in interval]
    windows = time_windows(interval, chunks)

    def one(window):
        try:
            return window, _pystac_items(client(), f"datetime={window}", collections=[collection_id],
                                         limit=limit, datetime=window), None
        except IncompleteFetch as exc:
            return window, [], exc

    with cf.ThreadPoolExecutor(concurrency, thread_name_prefix="pystac") as pool:
        results = list(pool.map(one, windows))
    items = [item for _, batch, _ in results for item in batch]
    failed = [(w, exc) for w, _, exc in results if exc is not None]
    if failed:
        raise IncompleteFetch(
            f"pystac_client_threads fetched {len(items)} items; {len(failed)} sub-search(es) failed: "
            + "; ".join(str(exc) for _, exc in failed), [w for w, _ in failed], len(items))
    return items


def rustac_search(url, collection_id, limit, retry=Retry()):
    """rustac's own client (``rustac.search``, Rust + reqwest), with its retries."""
    import rustac

    async def run():
        return await rustac.search(url, collections=[collection_id], limit=limit,
                                   max_retries_per_request=max(0, retry.attempts - 1),
                                   retry_status_codes=list(RETRY_STATUS))

    try:
        items = asyncio.run(run())
    except Exception as exc:
        raise IncompleteFetch(f"rustac.search failed, no items returned: {type(exc).__name__}: {exc}",
                              ["search"], 0) from exc
    return [item for item in items if item is not None]


def raw_fetch(url, bodies, concurrency, session_reuse=None):
    """POST each body to /search, ``concurrency`` at a time; return the response sizes (no parsing)."""
    async def run():
        async with _session(concurrency) as session:
            sem = asyncio.Semaphore(concurrency)

            async def one(body):
                async with sem:
                    async with session.post(f"{url}/search", json=body) as resp:
                        payload = await resp.read()
                        if resp.status != 200:
                            raise PageFailed(f"raw fetch {body}: HTTP {resp.status}")
                        return len(payload)

            return await asyncio.gather(*(one(b) for b in bodies))

    return asyncio.run(run())


#: strategy name -> (function, takes concurrency)
CLIENTS = {
    "pystac_client": (pystac_client_sequential, False),
    "pystac_client_threads": (pystac_client_threads, True),
    "aiohttp_sequential": (aiohttp_sequential, False),
    "aiohttp_offset": (aiohttp_offset, True),
    "aiohttp_split": (aiohttp_split, True),
    "rustac": (rustac_search, False),
}


def fetch_all(strategy, url, collection_id, limit, concurrency=1, retry=Retry()):
    fn, parallel = CLIENTS[strategy]
    if parallel:
        return fn(url, collection_id, limit, concurrency, retry=retry)
    return fn(url, collection_id, limit, retry=retry)


def server_links(item, base_url):
    """``item`` without the links the server added (those pointing at ``base_url``)."""
    base = base_url.rstrip("/") + "/"
    links = [link for link in item.get("links", []) if not str(link.get("href", "")).startswith(base)]
    return {**item, "links": links}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "proxy":
        _proxy_main(json.loads(sys.argv[2]))
    else:
        sys.exit(f"usage: {sys.argv[0]} proxy CONFIG_JSON")

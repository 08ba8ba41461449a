"""The latency/fault proxy in front of ``rustac serve``: a script, ``python api_proxy.py CONFIG_JSON``.

``api_server.StacApi`` starts it in its own process (own interpreter and GIL).  It adds
latency per request (seeded jitter), injects faults (429 with Retry-After, 500, a dropped
connection) at a seeded rate, and replays cached responses.  The cache keys on (method,
path and query, body); the data never change, so a replayed response is the byte-identical
response rustac gave.  When rustac is gone it answers 502, as a gateway does.

Control paths (under ``config["control"]``, never delayed nor faulted):

``GET  /stats``        counters (requests, faults, statuses, cache hits)
``GET  /timeline``     one record per request: ``start``/``end`` on the proxy's monotonic clock
                       (received .. response ready), the ``delay`` it added, the ``status``
``POST /config``       change options (``reset_stats: true`` also clears stats and timeline)
``POST /cache/clear``  forget cached responses (``match``: only those whose "path?query body" matches)

Standard library and aiohttp only: it runs as a script, without the ``benchmarks`` package,
and imports aiohttp only when it runs (asv imports every module of the suite).
"""

import asyncio
import collections
import json
import os
import random
import re
import sys
import time

#: The timeline keeps the last this many requests.
TIMELINE_MAX = 20000


class Proxy:
    """The proxy's state; ``handle`` serves every request."""

    def __init__(self, config):
        config = dict(config)
        self.upstream = config.pop("upstream")
        self.host = config.pop("host")
        self.port = config.pop("port", 0)
        self.control_path = config.pop("control")
        self.config = config
        self.cache = {}
        self.session = None
        self.reseed()
        self.zero()

    def reseed(self):
        seed = self.config["seed"]
        self.latency_rng = random.Random(f"latency:{seed}")
        self.fault_rng = random.Random(f"fault:{seed}")

    def zero(self):
        self.stats = {"requests": 0, "search_requests": 0, "forwarded": 0, "cache_hits": 0,
                      "faults": {"429": 0, "500": 0, "drop": 0}, "status": {}}
        self.timeline = collections.deque(maxlen=TIMELINE_MAX)

    # --- control ------------------------------------------------------------------------

    def _configure(self, body):
        if body.pop("reset_stats", False):
            self.zero()
        self.config.update(body)
        if "seed" in body:
            self.reseed()
        return self.config

    def _clear_cache(self, body):
        """Forget every cached response, or those whose "path?query body" matches ``body["match"]``."""
        match = body.get("match")
        gone = [key for key in self.cache
                if match is None or re.search(match, key[1] + " " + key[2].decode(errors="replace"))]
        for key in gone:
            del self.cache[key]
        return {"cleared": len(gone)}

    async def control(self, request):
        routes = {"/stats": lambda body: {**self.stats, "cache_entries": len(self.cache)},
                  "/timeline": lambda body: list(self.timeline),
                  "/config": self._configure, "/cache/clear": self._clear_cache}
        route = routes.get(request.path[len(self.control_path):])
        if route is None:
            raise web.HTTPNotFound()
        body = await request.json() if request.can_read_body else {}
        return web.json_response(route(body))

    # --- proxied requests ---------------------------------------------------------------

    async def handle(self, request):
        if request.path.startswith(self.control_path):
            return await self.control(request)
        record = {"method": request.method, "path": request.path_qs, "start": time.monotonic(),
                  "delay": 0.0, "status": "drop"}
        try:
            body = await request.read()
            self._count(request)
            record["delay"] = await self._delay()
            response = self._fault(request, body) or await self._forward(request, body)
            record["status"] = response.status
            self.stats["status"][str(response.status)] = self.stats["status"].get(str(response.status), 0) + 1
            return response
        finally:
            record["end"] = time.monotonic()
            self.timeline.append(record)

    def _count(self, request):
        self.stats["requests"] += 1
        if request.path.rstrip("/").endswith("/search"):
            self.stats["search_requests"] += 1

    async def _delay(self):
        """Sleep the configured latency (uniform jitter); return the seconds actually slept."""
        cfg = self.config
        if not cfg["latency_ms"]:
            return 0.0
        start = time.monotonic()
        j = cfg["jitter"]
        await asyncio.sleep(cfg["latency_ms"] / 1000 * self.latency_rng.uniform(1 - j, 1 + j))
        return time.monotonic() - start

    def _fault(self, request, body):
        """The injected fault's response, or None; a "drop" aborts the connection instead."""
        cfg, faults = self.config, self.stats["faults"]
        fault = cfg["fault"]
        if not fault or cfg["fault_rate"] <= 0:
            return None
        target = request.path_qs + " " + body.decode(errors="replace")
        if (cfg["fault_match"] is not None and not re.search(cfg["fault_match"], target)) \
                or (cfg["fault_limit"] is not None and sum(faults.values()) >= cfg["fault_limit"]) \
                or self.fault_rng.random() >= cfg["fault_rate"]:
            return None
        faults[fault] += 1
        if fault == "429":
            return web.json_response({"code": "TooManyRequests"}, status=429,
                                     headers={"Retry-After": str(cfg["retry_after"])})
        if fault == "500":
            return web.json_response({"code": "InternalServerError"}, status=500)
        request.transport.abort()  # "drop": the connection dies before any response
        raise asyncio.CancelledError()

    async def _forward(self, request, body):
        key = (request.method, request.path_qs, body)
        hit = self.cache.get(key) if self.config["cache"] else None
        if hit is not None:
            self.stats["cache_hits"] += 1
        else:
            self.stats["forwarded"] += 1
            try:
                hit = await self._upstream(request, body)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                return web.json_response({"code": "BadGateway", "description": repr(exc)}, status=502)
            if hit[0] == 200 and self.config["cache"]:
                self.cache[key] = hit
        status, ctype, payload = hit
        return web.Response(status=status, body=payload, headers={"Content-Type": ctype})

    async def _upstream(self, request, body):
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        async with self.session.request(request.method, self.upstream + request.path_qs,
                                        data=body or None, headers=headers) as resp:
            return resp.status, resp.headers.get("Content-Type", "application/json"), await resp.read()

    # --- the process ----------------------------------------------------------------------

    async def serve(self):
        """Listen, print the port, and run until stdin (held by the parent) reaches EOF."""
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64),
                                             timeout=aiohttp.ClientTimeout(total=30))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=1024)
        await site.start()
        print(site._server.sockets[0].getsockname()[1], flush=True)
        # Nothing to flush or save: SIGTERM's default action ends the process at once, and
        # EOF on stdin means the parent is gone, so go too.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
        os._exit(0)


if __name__ == "__main__":
    import aiohttp
    from aiohttp import web

    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} CONFIG_JSON")
    asyncio.run(Proxy(json.loads(sys.argv[1])).serve())

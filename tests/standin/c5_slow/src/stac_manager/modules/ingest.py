"""Ingest from files, item directories, collection roots and STAC APIs.

Reads ``concurrency``/``worker_strategy`` from its config when the config
declares them (commit c4): directories are then read by that many workers.

Commit c5 plants a regression on purpose: file-mode ingest spins the CPU for as long
as producing each item took, so it yields the same items in about twice the time.
"""
import asyncio
import json
import time
import urllib.request
from pathlib import Path

from stac_manager.core.context import WorkflowContext
from stac_manager.modules.config import IngestConfig


class IngestModule:
    def __init__(self, config: dict) -> None:
        self.config = IngestConfig(**config)
        if self.config.mode == "file" and not Path(self.config.source).exists():
            raise FileNotFoundError(self.config.source)

    async def fetch(self, context: WorkflowContext):
        if self.config.mode == "api":
            async for item in self._fetch_api(context):
                yield item
            return
        async for item in _twice_as_slow(self._fetch_file()):
            yield item

    async def _fetch_file(self):
        path = Path(self.config.source)
        if path.is_dir():
            items_dir = path / "items" if (path / "collection.json").exists() else path
            async for item in self._fetch_directory(items_dir):
                yield item
            return
        fmt = self.config.format or path.suffix.lstrip(".")
        if fmt == "json":
            data = json.loads(await asyncio.to_thread(path.read_text, encoding="utf-8"))
            for item in data["features"] if isinstance(data, dict) else data:
                yield item
        elif fmt == "parquet":
            import pyarrow.parquet as pq
            for item in (await asyncio.to_thread(pq.read_table, str(path))).to_pylist():
                yield item
        else:
            raise ValueError(f"Cannot determine format for {path}")

    async def _fetch_directory(self, directory):
        files = sorted(directory.glob("*.json"))
        if not files:  # as stac-manager's DataProcessingError
            raise ValueError(f"No JSON files found in directory: {directory}")
        workers = getattr(self.config, "concurrency", 1)
        if workers == 1:
            for f in files:
                yield json.loads(await asyncio.to_thread(f.read_text, encoding="utf-8"))
            return
        sem = asyncio.Semaphore(workers)

        async def read(f):
            async with sem:
                return json.loads(await asyncio.to_thread(f.read_text, encoding="utf-8"))

        for item in await asyncio.gather(*(read(f) for f in files)):
            yield item

    async def _fetch_api(self, context):
        collection = self.config.collection_id or context.data.get("collection_id")
        url = self.config.source.rstrip("/") + "/search"
        body = {"collections": [collection], "limit": self.config.limit}
        while url:
            page = await asyncio.to_thread(_post, url, body)
            for item in page.get("features", []):
                yield item
            nxt = next((link for link in page.get("links", []) if link.get("rel") == "next"), None)
            url, body = (nxt["href"], nxt.get("body")) if nxt else (None, None)


async def _twice_as_slow(items):
    """Yield what ``items`` yields, after busy-waiting as long as producing each one took."""
    while True:
        start = time.perf_counter()
        try:
            item = await anext(items)
        except StopAsyncIteration:
            return
        end = time.perf_counter() + (time.perf_counter() - start)
        while time.perf_counter() < end:
            pass
        yield item


def _post(url, body):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())

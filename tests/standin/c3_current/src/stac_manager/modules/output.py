"""Write items as one JSON file each, or as Parquet batches, below base_dir/<collection>/items."""
import asyncio
import json
from pathlib import Path

from stac_manager.core.context import WorkflowContext
from stac_manager.modules.config import OutputConfig


class OutputModule:
    def __init__(self, config: dict) -> None:
        self.config = OutputConfig(**config)
        self.buffer = []
        self.items_written = 0
        self.batches = 0

    async def bundle(self, item: dict, context: WorkflowContext) -> None:
        self.buffer.append(item)
        if len(self.buffer) >= self.config.buffer_size:
            await self._flush()

    async def finalize(self, context: WorkflowContext) -> dict:
        await self._flush()
        return {"items_written": self.items_written}

    async def _flush(self):
        if not self.buffer:
            return
        items_dir = Path(self.config.base_dir) / str(self.buffer[0].get("collection", "default")) / "items"
        items_dir.mkdir(parents=True, exist_ok=True)
        if self.config.format == "json":
            for item in self.buffer:
                await asyncio.to_thread((items_dir / f"{item['id']}.json").write_text, json.dumps(item))
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq
            self.batches += 1
            pq.write_table(pa.Table.from_pylist(self.buffer), str(items_dir / f"batch-{self.batches:05d}.parquet"))
        self.items_written += len(self.buffer)
        self.buffer.clear()

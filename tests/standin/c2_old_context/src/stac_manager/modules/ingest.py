"""File-mode ingest of JSON and Parquet files only; context at the old path."""
import asyncio
import json
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel

from stac_manager.context import WorkflowContext


class IngestConfig(BaseModel):
    mode: Literal["file", "api"]
    source: str
    format: Optional[Literal["json", "parquet"]] = None


class IngestModule:
    def __init__(self, config: dict) -> None:
        self.config = IngestConfig(**config)

    async def fetch(self, context: WorkflowContext):
        path = Path(self.config.source)
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

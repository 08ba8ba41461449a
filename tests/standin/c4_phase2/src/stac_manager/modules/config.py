from typing import Any, Literal, Optional

from pydantic import BaseModel, Field


class IngestConfig(BaseModel):
    mode: Literal["file", "api"]
    source: str
    format: Optional[Literal["json", "parquet"]] = None
    collection_id: Optional[str] = None
    limit: int = 100
    concurrency: int = Field(default=1, ge=1, le=50)
    worker_strategy: Literal["semaphore", "queue"] = "semaphore"


class OutputConfig(BaseModel):
    format: Literal["json", "parquet"]
    base_dir: str
    buffer_size: int = 1000


class UpdateConfig(BaseModel):
    updates: Optional[dict[str, Any]] = None

from typing import Any, Literal, Optional

from pydantic import BaseModel


class IngestConfig(BaseModel):
    mode: Literal["file", "api"]
    source: str
    format: Optional[Literal["json", "parquet"]] = None
    collection_id: Optional[str] = None
    limit: int = 100


class OutputConfig(BaseModel):
    format: Literal["json", "parquet"]
    base_dir: str
    buffer_size: int = 1000


class UpdateConfig(BaseModel):
    updates: Optional[dict[str, Any]] = None

"""Workflow context at its old import path (real stac-manager until 06eac49)."""
import logging
from dataclasses import dataclass
from typing import Any


@dataclass
class WorkflowContext:
    workflow_id: str
    config: Any
    logger: logging.Logger
    failure_collector: Any
    checkpoints: Any
    data: dict[str, Any]

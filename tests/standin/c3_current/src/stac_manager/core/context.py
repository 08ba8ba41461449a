"""Workflow context at its current import path."""
import logging
from dataclasses import dataclass
from typing import Any

from stac_manager.core.failures import FailureCollector


@dataclass
class WorkflowContext:
    workflow_id: str
    config: dict
    logger: logging.Logger
    failure_collector: FailureCollector
    checkpoints: Any
    data: dict[str, Any]

"""Set fields by dotted path (``properties.platform``) on every item."""
from stac_manager.core.context import WorkflowContext
from stac_manager.modules.config import UpdateConfig


class UpdateModule:
    def __init__(self, config: dict) -> None:
        self.config = UpdateConfig(**config)

    def modify(self, item: dict, context: WorkflowContext) -> dict:
        for path, value in (self.config.updates or {}).items():
            *parents, leaf = path.split(".")
            target = item
            for key in parents:
                target = target.setdefault(key, {})
            target[leaf] = value
        return item

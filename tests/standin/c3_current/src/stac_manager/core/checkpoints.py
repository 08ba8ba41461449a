"""Completed-item checkpoints, one JSON-lines file per workflow and collection."""
import json
from pathlib import Path


class CheckpointManager:
    def __init__(self, workflow_id, collection_id, checkpoint_root="./checkpoints", buffer_size=1000):
        directory = Path(checkpoint_root) / workflow_id
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{collection_id}.jsonl"
        self.buffer_size = buffer_size
        self._buffer = []
        self._completed = set()

    def is_completed(self, item_id):
        return item_id in self._completed

    def mark_completed(self, item_id, output_path):
        self._completed.add(item_id)
        self._buffer.append({"item_id": item_id, "output_path": output_path})
        if len(self._buffer) >= self.buffer_size:
            self.flush()

    def flush(self):
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in self._buffer)
        self._buffer.clear()

"""Disk against memory: the output rows that write to a tmpfs (``output.<Twin>Memory``) beside their
on-disk twins, at the same parameters.

Per pair, the write's throughput (``track_throughput``: items per second over the write alone) on
disk and in memory, and the disk's share of the write: ``1 - disk / memory`` (the part of the
write's time the in-memory twin does not spend).  Near 0 the write is serialisation and system
calls; near 1 it waits on the device.  A share below 0 (memory slower) is noise, and shown so.
"""

from __future__ import annotations

from .metrics import cell_status, param_value, split_name
from .results import param_names

#: A class name's suffix that makes it the in-memory twin of the class without it.
SUFFIX = "Memory"
METHOD = "track_throughput"


def _values(row, benchmarks: dict) -> dict:
    """{(param, value) tuple: number} of one row's numeric cells."""
    names = param_names(row, benchmarks)
    return {tuple((k, param_value(p)) for k, p in zip(names, combo, strict=False)): v
            for combo, v in zip(row.combos(), row.values, strict=False) if cell_status(v) == "ok"}


def build_disk_memory(rows: dict, benchmarks: dict) -> list:
    """[{row, params, disk, memory, disk_share}] of every in-memory row with a number and its twin's."""
    out = []
    for name in sorted(rows):
        cls, method = split_name(name)
        if method != METHOD or not cls.endswith(SUFFIX) or len(cls) == len(SUFFIX):
            continue
        twin = rows.get(f"{cls[:-len(SUFFIX)]}.{METHOD}")
        if twin is None:
            continue
        disk = _values(twin, benchmarks)
        for params, memory in _values(rows[name], benchmarks).items():
            on_disk = disk.get(params)
            if on_disk is None or memory <= 0:
                continue
            out.append({"row": cls[:-len(SUFFIX)], "params": {k: v for k, v in params if k != "n_items"},
                        "n_items": dict(params).get("n_items"), "disk": on_disk, "memory": memory,
                        "disk_share": 1 - on_disk / memory})
    return out

"""The cells of a scenario table: which benchmark gives the time, throughput and memory
columns, the throughput derived from the time, peakmem in MB, and the extra columns."""

from __future__ import annotations

from dataclasses import dataclass

from .metrics import cell_status, json_num


@dataclass
class Cell:
    value: float | None = None
    status: str = "missing"  # ok / n/a / failed / missing
    derived: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self):
        d = {"value": json_num(self.value) if self.ok else None, "status": self.status}
        if self.derived:
            d["derived"] = True
        return d


def cell(v) -> Cell:
    st = cell_status(v)
    return Cell(value=float(v) if st == "ok" else None, status=st)


def primary_metrics(metrics: dict) -> tuple[dict, list]:
    """{kind: method} of the columns, and the (kind, method) pairs carried as extras."""
    by_kind: dict = {}
    for (kind, method) in sorted(metrics):
        by_kind.setdefault(kind, []).append(method)
    primary = {k: by_kind[k][0] for k in ("time", "throughput", "memory", "peakmem") if k in by_kind}
    if "memory" in primary:
        primary.pop("peakmem", None)  # track_mem wins; peakmem_ is kept as an extra (JSON only)
    extras = [(k, m) for k, ms in by_kind.items() for m in ms if primary.get(k) != m]
    return primary, extras


def _throughput_cell(primary: dict, get, time_c: Cell, n_items) -> Cell:
    """track_throughput, else n_items / time (derived), else the time's status."""
    if "throughput" in primary:
        return get("throughput")
    if time_c.ok and isinstance(n_items, (int, float)) and time_c.value > 0:
        return Cell(value=n_items / time_c.value, status="ok", derived=True)
    if time_c.status in ("failed", "n/a"):
        return Cell(status=time_c.status)
    return Cell()


def _memory_cell(primary: dict, get) -> Cell:
    """track_mem (MB), else peakmem_ (bytes) in MB."""
    if "memory" in primary:
        return get("memory")
    if "peakmem" in primary:
        pm = get("peakmem")
        return Cell(value=pm.value / 1e6 if pm.ok else None, status=pm.status)
    return Cell()


def make_row(key, metrics, primary, extras, units, n_items) -> dict:
    def get(kind):
        return metrics[(kind, primary[kind])].get(key, Cell()) if kind in primary else Cell()

    strategy, conc = key
    time_c = get("time")
    ex = {}
    for kind, m in extras:
        ex[m] = {**metrics[(kind, m)].get(key, Cell()).to_json(), "unit": units.get((kind, m))}
    return {
        "strategy": strategy,
        "concurrency": conc,
        "time": time_c,
        "throughput": _throughput_cell(primary, get, time_c, n_items),
        "memory": _memory_cell(primary, get),
        "extras": ex,
    }

"""What a benchmark name, a parameter and a result value mean, and how they print.

asv stores parameter values as repr strings, ``NaN`` for a skipped combination
(n/a) and ``null`` for a failed one; the method prefix says what was measured.
"""

from __future__ import annotations

import ast
import math


def is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)


def cell_status(v) -> str:
    """'ok' for a number, 'n/a' for NaN (skipped), 'failed' for null."""
    if v is None:
        return "failed"
    if isinstance(v, float) and math.isnan(v):
        return "n/a"
    if is_num(v):
        return "ok"
    return "failed"


def json_num(v):
    """A number fit for strict JSON, else None."""
    return v if is_num(v) and math.isfinite(v) else None


def opt_num(v):
    """json_num of an optional number (None stays None)."""
    return json_num(v) if v is not None else None


def param_value(r: str):
    """Parameter values are repr strings: "'threads'" -> 'threads', "10" -> 10."""
    try:
        return ast.literal_eval(r)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return r


def param_display(r: str) -> str:
    v = param_value(r)
    return v if isinstance(v, str) else str(r)


def number_or_str(v: str):
    try:
        return float(v)
    except ValueError:
        return v


def sort_key_value(v):
    """Numbers first, in order, then anything else by its text."""
    return (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v))


def split_name(name: str) -> tuple[str, str]:
    """'mod.Class.time_x' -> ('mod.Class', 'time_x')."""
    if "." in name:
        prefix, method = name.rsplit(".", 1)
        return prefix, method
    return "", name


def metric_kind(method: str) -> str:
    """time / throughput / memory (track_mem, MB) / peakmem (bytes) / instructions (callgrind's
    count per item) / allocations (tracemalloc's peak of one run, MB) / extra."""
    if method.startswith(("time_", "timeraw_")):
        return "time"
    if method.startswith("track_instructions"):
        return "instructions"
    if method.startswith("track_alloc"):
        return "allocations"
    if method.startswith("track_throughput"):
        return "throughput"
    if method.startswith("track_mem"):
        return "memory"
    if method.startswith("peakmem_"):
        return "peakmem"
    return "extra"


def better_direction(name: str) -> str | None:
    """'lower', 'higher', or None when the gate cannot tell (other track_*)."""
    method = split_name(name)[1]
    if method.startswith(("time_", "timeraw_", "peakmem_", "mem_", "track_mem", "track_instructions",
                          "track_alloc")):
        return "lower"
    if method.startswith("track_throughput"):
        return "higher"
    return None


def default_unit(name: str, benchmarks: dict | None) -> str:
    meta = (benchmarks or {}).get(name) or {}
    if meta.get("unit"):
        return meta["unit"]
    method = split_name(name)[1]
    if method.startswith(("time_", "timeraw_")):
        return "seconds"
    if method.startswith(("peakmem_", "mem_")):
        return "bytes"
    return "unit"


def fmt_num(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    return f"{v:#.3g}".rstrip(".")


def fmt_value(v, unit: str | None = None) -> str:
    st = cell_status(v)
    if st != "ok":
        return st
    if unit == "seconds":
        for scale, suffix in ((1, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns")):
            if abs(v) >= scale or suffix == "ns":
                return f"{v / scale:#.3g}".rstrip(".") + f" {suffix}"
    if unit == "bytes":
        return f"{fmt_num(v / 1e6)} MB"
    return f"{fmt_num(v)} {unit}" if unit and unit != "unit" else fmt_num(v)

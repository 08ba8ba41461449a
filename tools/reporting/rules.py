"""The report's rules: what a strategy *name* is (its kind, from the suite's strategy table), the
verdict bands and the point of diminishing returns.  The lowest layer of ``tools.reporting``
besides ``metrics``: every module that judges a row asks here.
"""

from __future__ import annotations

import importlib.util
from collections import namedtuple
from pathlib import Path

#: The suite's strategy table, read from its file: the report also runs from another asv
#: project's folder, whose own ``benchmarks`` package would shadow this suite's.
TABLE_FILE = Path(__file__).resolve().parents[2] / "benchmarks" / "lib" / "strategies.py"


def _load_table(path=TABLE_FILE):
    spec = importlib.util.spec_from_file_location("stac_manager_benchmarks_strategies", path)
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    return table


strategies = _load_table()

# Verdict bands on the concurrency gain of a scenario (PRD Phase 1): the best row with
# several workers against the best sequential row, so that a faster implementation
# (say, the harness loop against stac-manager's module) is not mistaken for I/O-bound.
VERDICT_BANDS = [
    (3.0, "I/O-bound"),
    (1.5, "mixed"),
    (1.2, "mildly parallel"),
    (0.0, "CPU-bound"),
]
# Recommended workers: smallest concurrency within this fraction of the best speedup.
DIMINISHING_RETURNS = 0.10

RULES = {
    "verdict": "concurrency gain (best row with concurrency > 1 / best sequential row) >= 3x: "
    "I/O-bound; 1.5-3x: mixed; 1.2-1.5x: mildly parallel; < 1.2x: CPU-bound",
    "recommended_workers": "smallest concurrency at which some non-ceiling strategy reaches "
    f"at least {100 - DIMINISHING_RETURNS * 100:.0f}% of the best speedup (returns diminish "
    "beyond it)",
    "baseline": "strategy 'module' at concurrency 1, else 'loop', else 'sequential', else the "
    "first concurrency-1 row with a number",
    "pct_of_ceiling": "throughput / best throughput of the scenario's ceiling_* strategies "
    "(time-based if no throughput)",
}

StrategyInfo = namedtuple("StrategyInfo", "kind sequential baseline_rank")
#: Kinds whose numbers do not depend on the stac-manager commit (the gate's controls): the
#: strategy table's own.
CONTROL_KINDS = strategies.CONTROL_KINDS


def load_strategy_table():
    """The suite's strategy table (``benchmarks/lib/strategies.py``)."""
    return strategies


def strategy_info(name: str) -> StrategyInfo:
    """Everything the report asks of a strategy *name*, from the strategy table when it has it.

    ``kind``: subject (stac-manager), hybrid (harness around stac-manager modules), harness
    (no stac-manager) or ceiling (upper bound).  ``sequential``: runs at concurrency 1 only.
    ``baseline_rank``: preference as the speedup baseline at concurrency 1 (subject first,
    then a sequential harness), None = only as a last resort.  Without the table (or for a
    name not in it), the rules the report always had: ``ceiling*`` is a ceiling, ``module``
    (and ``module_*``) is stac-manager, ``loop`` and ``sequential`` are sequential harnesses.
    """
    table = load_strategy_table()
    entry = table.BY_NAME.get(name) if table is not None else None
    if entry is not None:
        kind, sequential = entry.kind, entry.workers == getattr(table, "SEQUENTIAL", "sequential")
    elif name.startswith("ceiling"):
        kind, sequential = "ceiling", False
    elif name == "module" or name.startswith("module_"):
        kind, sequential = "subject", False
    else:
        kind, sequential = "harness", name in ("loop", "sequential")
    rank = 0 if kind == "subject" else 1 if (kind == "harness" and sequential) else None
    return StrategyInfo(kind, sequential, rank)


def strategy_kind(name: str) -> str:
    return strategy_info(name).kind


def is_ceiling(name: str) -> bool:
    return strategy_kind(name) == "ceiling"

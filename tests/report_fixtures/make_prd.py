"""Write ``prd/``: asv results of the suites' real classes over six commits (issue 12 fixtures).

    python tests/report_fixtures/make_prd.py      # rewrites tests/report_fixtures/prd

The newest commit has the full profile (every class, Phase 2 rows in file ingest); the five
before it the history profile (the ``*Module``, ``FaultsModule`` and ``Control`` classes at
their history parameters, the rest n/a).  Planted in the history:

- file ingest (``DirectoryModule`` module x 1): a 2x slowdown at the 4th commit, undone at the 6th;
- API (``SearchModule`` module x 1, 0 ms): a 1.2x speedup at the 3rd commit, beyond a factor of
  1.1 but within the API suite's noise floor (its ``Control`` drifts up to 1.39x);
- every ``Control`` noisy (up to 1.18-1.39x between consecutive commits), every subject row a
  little (<= 6 %).

Numbers are made up but shaped like the suite's (1,000 items, concurrency 1/5/10); the tests
derive what they assert from these tables, never from the rendered report.
"""

from __future__ import annotations

import ast
import json
import math
import sys
from itertools import product
from pathlib import Path

NAN = math.nan
N = 1000
CONC = [1, 5, 10]
DAY_MS = 86_400_000
MACHINE, ENV = "prd-box", "virtualenv-py3.12"
#: (hash, date in ms, subject line)
COMMITS = [(f"{d}" * 8 + "0" * 32, 1_769_212_800_000 + i * DAY_MS, subject) for i, (d, subject) in enumerate([
    ("1", "IngestModule: directory sources"), ("2", "Output: atomic JSON writes"),
    ("3", "API: reuse the pystac-client session"), ("4", "Ingest: validate every item with pystac"),
    ("5", "Docs: profiling notes"), ("6", "Ingest: validate once per collection; Phase 2 concurrency")])]
NEWEST = len(COMMITS) - 1
SUBJECT_NOISE = [1.00, 0.97, 1.03, 0.98, 1.02, 1.00]
CONTROL_NOISE = {"file_ingest": [1.00, 1.18, 0.92, 1.10, 0.95, 1.05],
                 "api_ingest": [1.00, 1.25, 0.90, 1.15, 0.95, 1.05],
                 "output": [1.00, 0.90, 1.10, 1.00, 1.12, 0.97],
                 "pipeline": [1.00, 1.10, 0.95, 1.05, 1.00, 0.93]}
#: The planted steps: a factor per commit on the subject rows of a suite.
STEPS = {"file_ingest": [1, 1, 1, 0.5, 0.5, 1], "api_ingest": [1, 1, 1.2, 1.2, 1.2, 1.2]}
FAULTS = ["429", "500", "drop"]


def _tp(table):
    """{(strategy, concurrency[, other]): items/s} with every other combination n/a."""
    return lambda key: table.get(key, NAN)


# Throughput (items/s) of the newest commit, by class: key (strategy, concurrency, *other params)
FILE_HARNESS = {("loop", 1): 5200, ("semaphore", 1): 4900, ("semaphore", 5): 5600, ("semaphore", 10): 5700,
                ("queue", 1): 4950, ("queue", 5): 5650, ("queue", 10): 5600, ("threads", 1): 5100,
                ("threads", 5): 5900, ("threads", 10): 6000, ("processes", 1): 3000, ("processes", 5): 9800,
                ("ceiling_read", 1): 40000, ("ceiling_parse", 1): 12000}
FILE_MEM = {"loop": 8.0, "semaphore": 11.0, "queue": 11.0, "threads": 14.0, "processes": 310.0,
            "ceiling_read": 2.0, "ceiling_parse": 6.0, "module": 10.0, "module_queue": 12.0}
FILE_MODULE = {("module", 1): 4169, ("module", 5): 4300, ("module", 10): 4400,
               ("module_queue", 1): 4100, ("module_queue", 5): 4550, ("module_queue", 10): 4620}
API_HARNESS = {}
for lat, rows in {0: {"pystac_client": {1: 1400}, "pystac_client_threads": {5: 2600, 10: 2900},
                      "aiohttp_sequential": {1: 2100}, "aiohttp_offset": {5: 5200, 10: 6100},
                      "aiohttp_split": {5: 4800, 10: 5600}, "rustac": {1: 3900},
                      "ceiling_fetch": {1: 2600, 5: 8000, 10: 9000}},
                  50: {"pystac_client": {1: 600}, "pystac_client_threads": {5: 2300, 10: 3500},
                       "aiohttp_sequential": {1: 750}, "aiohttp_offset": {5: 3400, 10: 5400},
                       "aiohttp_split": {5: 3000, 10: 4900}, "rustac": {1: 820},
                       "ceiling_fetch": {1: 900, 5: 4300, 10: 7800},
                       "ceiling_latency": {1: 1000, 5: 5000, 10: 10000}}}.items():
    API_HARNESS.update({(s, c, lat): v for s, by_c in rows.items() for c, v in by_c.items()})
API_MODULE = {("module", 1, 0): 1250, ("module", 1, 50): 640}
ITEM_FILES = {}
for fsync, rows in {False: {"loop": {1: 2600}, "semaphore": {1: 2400, 5: 3100, 10: 3150},
                            "queue": {1: 2450, 5: 3050, 10: 3100}, "threads": {1: 2550, 5: 3300, 10: 3350},
                            "processes": {1: 1500, 5: 4200}, "ceiling_serialise": {1: 30000},
                            "ceiling_write": {1: 9000}},
                    True: {"loop": {1: 400}, "semaphore": {1: 390, 5: 1500, 10: 2400},
                           "queue": {1: 395, 5: 1450, 10: 2300}, "threads": {1: 398, 5: 1600, 10: 2700},
                           "processes": {1: 380, 5: 1700}, "ceiling_serialise": {1: 30000},
                           "ceiling_write": {1: 600}}}.items():
    ITEM_FILES.update({(s, c, fsync): v for s, by_c in rows.items() for c, v in by_c.items()})
SINGLE_FILE = {(s, 1, fsync): v * (0.95 if fsync else 1.0) for fsync in (False, True) for s, v in
               {"feature_collection": 22000, "ndjson": 25000, "parquet": 30000, "geoparquet": 18000,
                "ceiling_serialise": 30000, "ceiling_write": 60000}.items()}
PIPELINE_HYBRID = {("concurrent_ingest", 1, False): 880, ("concurrent_ingest", 5, False): 1300,
                   ("concurrent_ingest", 10, False): 1350, ("concurrent_ingest_batched_output", 1, False): 870,
                   ("concurrent_ingest_batched_output", 5, False): 1900,
                   ("concurrent_ingest_batched_output", 10, False): 2100,
                   ("concurrent_ingest", 1, True): 690, ("concurrent_ingest", 5, True): 950,
                   ("concurrent_ingest", 10, True): 960, ("concurrent_ingest_batched_output", 1, True): 680,
                   ("concurrent_ingest_batched_output", 5, True): 1200,
                   ("concurrent_ingest_batched_output", 10, True): 1250}
SHARES = {False: {"ingest": 48.0, "transform": 7.0, "output": 41.0, "checkpoint": 0.0},
          True: {"ingest": 37.0, "transform": 5.0, "output": 32.0, "checkpoint": 23.0}}
#: (strategy, concurrency, fault): (seconds or NaN = gave up, fraction delivered)
FAULT_RUNS = {**{(s, c, f): (t, 1.0) for (s, c), times in {
    ("pystac_client", 1): (1.9, 1.6, 1.7), ("pystac_client_threads", 10): (0.9, 0.8, 0.85),
    ("aiohttp_sequential", 1): (1.2, 1.1, 1.15), ("aiohttp_offset", 10): (0.5, 0.45, 0.48),
    ("aiohttp_split", 10): (0.55, 0.5, 0.52)}.items() for f, t in zip(FAULTS, times, strict=False)},
    ("rustac", 1, "429"): (0.6, 1.0), ("rustac", 1, "500"): (0.55, 1.0), ("rustac", 1, "drop"): (NAN, 0.0),
    **{("module", 1, f): (NAN, 0.6) for f in FAULTS}}


class Bench:
    """One benchmark class: its parameters, the profile it runs in, and its numbers."""

    def __init__(self, name, names, params, throughput, *, history=None, mem=None, extras=None,
                 subject=True, times=None, newest_only=lambda key: False):
        self.name, self.names, self.params = name, names, params
        self.throughput, self.history, self.mem = throughput, history, mem
        self.extras, self.subject, self.times = extras or {}, subject, times
        self.suite, self.newest_only = name.split(".")[0], newest_only

    def runs_at(self, i, combo):
        """Measured at commit ``i``: the newest runs everything, older ones the history profile."""
        if i == NEWEST:
            return True
        if self.history is None or self.newest_only(self.key(combo)):
            return False
        return all(combo[self.names.index(k)] == v for k, v in self.history.items())

    def scale(self, i):
        if self.history is None:  # full profile only: the newest commit, as tabled
            return 1.0
        if not self.subject:
            return CONTROL_NOISE[self.suite][i]
        return SUBJECT_NOISE[i] * STEPS.get(self.suite, [1] * len(COMMITS))[i]

    def key(self, combo):
        return tuple(_literal(v) for k, v in zip(self.names, combo, strict=False) if k != "n_items")

    def methods(self, i):
        """{method: [value per combination]} at commit ``i`` (NaN where not run or n/a)."""
        combos = list(product(*self.params))
        out = {m: [] for m in ("time_run", "track_throughput", "track_mem_mb", *self.extras)}
        for combo in combos:
            key, run = self.key(combo), self.runs_at(i, combo)
            tp = self.throughput(key) * self.scale(i) if run else NAN
            out["time_run"].append(self.times(key) if self.times and run else N / tp)
            out["track_throughput"].append(tp)
            out["track_mem_mb"].append(self.mem(key) if run and self.mem and not math.isnan(tp) else NAN)
            for m, fn in self.extras.items():
                out[m].append(fn(key) if run else NAN)
        return {m: [round(v, 4) if isinstance(v, float) and not math.isnan(v) else v for v in vs]
                for m, vs in out.items()}


def _literal(text):
    return ast.literal_eval(text)


def _repr(values):
    return [repr(v) for v in values]


SC = ["n_items", "strategy", "concurrency"]
NI = _repr([N])
FILE_H = _repr(["loop", "semaphore", "queue", "threads", "processes", "ceiling_read", "ceiling_parse"])
API_H = _repr(["pystac_client", "pystac_client_threads", "aiohttp_sequential", "aiohttp_offset",
               "aiohttp_split", "rustac"])
ITEM_H = _repr(["loop", "semaphore", "queue", "threads", "processes", "ceiling_serialise", "ceiling_write"])
SINGLE_H = _repr(["feature_collection", "ndjson", "parquet", "geoparquet", "ceiling_serialise", "ceiling_write"])
MODULE = _repr(["module"])
C, C1, TF, F = _repr(CONC), _repr([1]), _repr([False, True]), _repr(FAULTS)


def _fault(index, default=NAN):
    return lambda key: FAULT_RUNS.get(key, (NAN, NAN))[index] if key in FAULT_RUNS else default


def _share(stage):
    return lambda key: SHARES[key[2]][stage] if key[0] != "loop" and key[1] == 1 else NAN


BENCHES = [
    Bench("file_ingest.Directory", SC, [NI, FILE_H, C], _tp(FILE_HARNESS), subject=False,
          mem=lambda k: FILE_MEM[k[0]] + (k[1] - 1) * 0.5),
    Bench("file_ingest.DirectoryModule", SC, [NI, _repr(["module", "module_queue"]), C],
          _tp(FILE_MODULE), history={}, newest_only=lambda k: k != ("module", 1),  # Phase 2: newest only
          mem=lambda k: FILE_MEM[k[0]] + (k[1] - 1) * 0.3),
    Bench("file_ingest.Phase1Method", SC + ["timing"], [NI, MODULE, C1, _repr(["plain", "tracemalloc"])],
          _tp({("module", 1, "plain"): 4150, ("module", 1, "tracemalloc"): 1557}),
          mem=lambda k: 10.0 if k[2] == "plain" else 25.0),
    Bench("file_ingest.Control", SC, [NI, _repr(["loop"]), C1], _tp({("loop", 1): 5200}), history={},
          subject=False, mem=lambda k: 8.0),
    Bench("api_ingest.Search", SC + ["latency_ms"], [NI, API_H + _repr(["ceiling_fetch", "ceiling_latency"]), C,
                                                     _repr([0, 50])], _tp(API_HARNESS), subject=False,
          mem=lambda k: 30.0 + k[1]),
    Bench("api_ingest.SearchModule", SC + ["latency_ms"], [NI, MODULE, C, _repr([0, 50])], _tp(API_MODULE),
          history={"latency_ms": "0"}, mem=lambda k: 45.0),
    Bench("api_ingest.Control", SC + ["latency_ms"], [NI, _repr(["aiohttp_sequential"]), C1, _repr([0])],
          _tp({("aiohttp_sequential", 1, 0): 2100}), history={}, subject=False, mem=lambda k: 25.0),
    Bench("api_ingest.Faults", SC + ["fault"], [NI, API_H, _repr([1, 10]), F],
          lambda k: N / FAULT_RUNS[k][0] if k in FAULT_RUNS else NAN, subject=False,
          times=_fault(0), extras={"track_delivered": _fault(1)}),
    Bench("api_ingest.FaultsModule", SC + ["fault"], [NI, MODULE, _repr([1, 10]), F], lambda k: NAN, history={},
          times=_fault(0), extras={"track_delivered": _fault(1)}),
    Bench("output.ModuleJson", SC + ["buffer_size"], [NI, MODULE, C1, _repr([100, 1000, 10000])],
          _tp({("module", 1, 100): 1800, ("module", 1, 1000): 1850, ("module", 1, 10000): 1900}),
          history={"buffer_size": "1000"}, mem=lambda k: 5.0),
    Bench("output.ModuleParquet", SC + ["buffer_size"], [NI, MODULE, C1, _repr([100, 1000, 10000])],
          _tp({("module", 1, 100): 9000, ("module", 1, 1000): 15000, ("module", 1, 10000): 21000}),
          history={}, mem=lambda k: 20.0 + k[2] / 1000),
    Bench("output.ItemFiles", SC + ["fsync"], [NI, ITEM_H, C, TF], _tp(ITEM_FILES), subject=False,
          mem=lambda k: 6.0),
    Bench("output.SingleFile", SC + ["fsync"], [NI, SINGLE_H, C1, TF], _tp(SINGLE_FILE), subject=False,
          mem=lambda k: 12.0),
    Bench("output.Control", SC + ["fsync"], [NI, _repr(["loop"]), C1, _repr([False])],
          _tp({("loop", 1, False): 2600}), history={}, subject=False, mem=lambda k: 6.0),
    Bench("pipeline.Pipeline", SC + ["checkpoint"],
          [NI, _repr(["concurrent_ingest", "concurrent_ingest_batched_output"]), C, TF], _tp(PIPELINE_HYBRID),
          mem=lambda k: 40.0, extras={f"track_share_{s}": _share(s) for s in SHARES[False]}),
    Bench("pipeline.PipelineModule", SC + ["checkpoint"], [NI, MODULE, C, TF],
          _tp({("module", 1, False): 900, ("module", 1, True): 700}), history={"checkpoint": "False"},
          mem=lambda k: 35.0, extras={f"track_share_{s}": _share(s) for s in SHARES[False]}),
    Bench("pipeline.Control", SC + ["checkpoint"], [NI, _repr(["loop"]), C1, _repr([False])],
          _tp({("loop", 1, False): 1000}), history={}, subject=False, mem=lambda k: 30.0),
]
UNITS = {"time_run": ("seconds", "time"), "track_throughput": ("items/s", "track"),
         "track_mem_mb": ("MB", "track"), "track_delivered": ("fraction", "track")}


def benchmarks_json():
    out = {}
    for b in BENCHES:
        for m in b.methods(NEWEST):
            unit, typ = UNITS.get(m, ("%", "track"))
            name = f"{b.name}.{m}"
            out[name] = {"name": name, "param_names": b.names, "params": b.params, "type": typ,
                         "unit": unit, "version": "1"}
    return {**dict(sorted(out.items())), "version": 2}


def results_json(commit, date, i):
    rows = {}
    for b in BENCHES:
        if b.history is None and i != NEWEST:
            continue
        for m, values in b.methods(i).items():
            rows[f"{b.name}.{m}"] = [values, b.params, "1"]
    return {"commit_hash": commit, "env_name": ENV, "date": date, "params": {"machine": MACHINE, "python": "3.12"},
            "python": "3.12", "requirements": {}, "env_vars": {}, "result_columns": ["result", "params", "version"],
            "results": dict(sorted(rows.items())), "durations": {}, "version": 2}


def _dump(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")  # NaN stays asv's bare NaN


def write(dst, commits=COMMITS):
    """Write the results directory ``dst`` for ``commits`` ((hash, date ms, subject), oldest first)."""
    dst = Path(dst)
    _dump(dst / "benchmarks.json", benchmarks_json())
    _dump(dst / MACHINE / "machine.json", {"machine": MACHINE, "version": 1})
    for i, (commit, date, _) in enumerate(commits):
        _dump(dst / MACHINE / f"{commit[:8]}-{ENV}.json", results_json(commit, date, i))
    return dst


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("prd"))

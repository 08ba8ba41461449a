"""The committed series continue: what asv discovers is what ``results/benchmarks.json`` holds.

A benchmark's name, parameters and ``version`` are part of the product: asv starts a new
series when any of them changes, and the dashboard's history of that row breaks.  This test
runs asv's own discovery (``asv/benchmark.py discover``, what ``asv run`` calls) on the suite
at its default settings and compares every benchmark with the committed file.  A deliberate
``version`` bump goes into ``DELIBERATE_BUMPS`` with the new version, in the same commit.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: ``name: new version`` of the benchmarks whose version was bumped on purpose since the
#: committed ``results/benchmarks.json`` was written (empty when it is up to date).
DELIBERATE_BUMPS = {}
COMPARED = ("params", "param_names", "version", "type", "unit")


def discovered(tmp_path):
    """asv's discovery of ``benchmarks/`` at the suite's default settings, as a dict by name."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAC_BENCH_")}
    env["STAC_BENCH_PRELOAD"] = "0"
    out = tmp_path / "discovered.json"
    script = Path(sys.executable).parent.parent / "lib"
    benchmark_py = next(script.glob("python3*/site-packages/asv/benchmark.py"))
    subprocess.run([sys.executable, str(benchmark_py), "discover", str(ROOT / "benchmarks"), str(out)],
                   check=True, env=env, cwd=tmp_path, timeout=600)
    return {b["name"]: b for b in json.loads(out.read_text())}


def committed():
    body = json.loads((ROOT / "results" / "benchmarks.json").read_text())
    return {name: b for name, b in body.items() if name != "version"}


def differences(found, kept, bumps):
    """Every way ``found`` (discovered) departs from ``kept`` (committed), bumps aside."""
    diffs = [f"{name}: discovered, not in results/benchmarks.json" for name in sorted(set(found) - set(kept))]
    diffs += [f"{name}: in results/benchmarks.json, no longer discovered" for name in sorted(set(kept) - set(found))]
    for name in sorted(set(found) & set(kept)):
        for key in COMPARED:
            got, want = found[name].get(key), kept[name].get(key)
            if key == "version" and bumps.get(name) == got:
                continue
            if got != want:
                diffs.append(f"{name}: {key} is {got!r}, the committed series has {want!r}")
    return diffs


def test_discovered_benchmarks_are_the_committed_series(tmp_path):
    diffs = differences(discovered(tmp_path), committed(), DELIBERATE_BUMPS)
    assert not diffs, "\n".join(diffs)


def test_differences_sees_a_rename_a_new_param_and_a_silent_bump():
    kept = {"a.B.time_run": {"params": [["1"]], "param_names": ["n"], "version": "3", "type": "time", "unit": "seconds"}}
    renamed = {"a.C.time_run": kept["a.B.time_run"]}
    assert len(differences(renamed, kept, {})) == 2
    param = {"a.B.time_run": {**kept["a.B.time_run"], "params": [["1", "2"]]}}
    assert differences(param, kept, {}) == ["a.B.time_run: params is [['1', '2']], the committed series has [['1']]"]
    bumped = {"a.B.time_run": {**kept["a.B.time_run"], "version": "4"}}
    assert len(differences(bumped, kept, {})) == 1
    assert differences(bumped, kept, {"a.B.time_run": "4"}) == []

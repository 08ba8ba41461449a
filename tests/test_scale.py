"""The scale selection on small data against the stand-in stac-manager: every row runs and checks
its result at each of its sizes, and keeps the series of the rows it is built on apart."""

import argparse
import ast
import os
import re
import subprocess
import sys

import pytest

from benchmarks import api_ingest, file_ingest, output, pipeline, scale
from benchmarks.lib import itemgen, settings
from benchmarks.lib.checks import ResultMismatch
from conftest import ROOT
from tools import bench

#: The tests' scales (``STAC_BENCH_SCALES`` is read at import: ``scale.SCALES`` is the default here).
SIZES = (60, 120)
ROWS = ["FileDirectory", "FileFeatureCollection", "FileParquet", "FileCollection", "OutputJson", "OutputParquet",
        "Pipeline", "ApiSearch"]


@pytest.fixture
def standin_sm(standin_at, tmp_path, monkeypatch):
    """The stand-in's newest commit (c4_phase2) importable as ``stac_manager``; output below tmp."""
    standin_at("c4_phase2")
    monkeypatch.setenv("STAC_BENCH_OUT_DIR", str(tmp_path / "out"))
    monkeypatch.setattr(scale, "SCALE_SIZES", list(SIZES))


def _setup(cls, n):
    bench = cls()
    roots = {size: str(path) for size, path in scale.dataset_roots().items()}
    args = (roots, n, *(p[0] for p in cls.params[1:]))
    bench.setup(*args)
    return bench, args


@pytest.mark.parametrize("name", ROWS)
def test_every_row_runs_checked_at_every_size(standin_sm, name):
    cls = getattr(scale, name)
    for n in SIZES:
        bench, args = _setup(cls, n)
        try:
            assert bench.n == n
            bench.time_run(*args)
            assert bench.track_mem_mb(*args) >= 0
        finally:
            bench.teardown(*args)


def test_ndjson_is_na_where_stac_manager_reads_none(standin_sm):
    with pytest.raises(NotImplementedError):
        _setup(scale.FileNdjson, SIZES[0])


def test_a_row_that_loses_an_item_fails(standin_sm, monkeypatch):
    """The check is the row's suite's: stac-manager's ingest dropping one item of 120 fails the run."""
    bench, args = _setup(scale.FileDirectory, 120)
    real = file_ingest.ingest_each

    def lossy(conf, consume, context):
        real(conf, lambda item: item["id"] != itemgen.item_id(77) and consume(item), context)

    monkeypatch.setattr(file_ingest, "ingest_each", lossy)
    try:
        with pytest.raises(ResultMismatch, match="1 lost .*bench-item-000077"):
            bench.time_run(*args)
    finally:
        bench.teardown(*args)


def test_the_api_row_streams_its_items_into_the_check(standin_sm, monkeypatch):
    """The API suite's row keeps every item in a list until its check (2.5 GB at 100,000 items, the
    harness's): the scale row keeps none, and its check is still whole."""
    monkeypatch.setattr(api_ingest, "check_api_items", lambda *a: pytest.fail("the items were collected"))
    bench, args = _setup(scale.ApiSearch, 120)
    try:
        bench.time_run(*args)
        real = scale.ingest_each

        def lossy(conf, consume, context):
            real(conf, lambda item: item["id"] != itemgen.item_id(77) and consume(item), context)
        monkeypatch.setattr(scale, "ingest_each", lossy)
        with pytest.raises(ResultMismatch, match="1 lost .*bench-item-000077"):
            bench.time_run(*args)
    finally:
        bench.teardown(*args)


def test_the_rows_are_the_selections_own_series():
    """New names, ``n_items`` from ``STAC_BENCH_SCALES``, a profile of their own; the rows they are
    built on keep their params and versions (the committed series)."""
    for name in ROWS:
        cls = getattr(scale, name)
        assert cls.profile == "scale" and cls.version == "1" and cls.params[0] == settings.SCALE_SIZES
        assert cls.track_instructions is None and cls.track_alloc_mb is None
        assert cls.repeat == scale.SCALE_REPEAT
    assert file_ingest.DirectoryModule.params[0] == settings.N_ITEMS and file_ingest.DirectoryModule.profile == "history"
    assert output.ModuleJson.params[0] == settings.N_ITEMS and output.ModuleJson.version == "3"
    assert pipeline.PipelineModule.stand_in is False and scale.Pipeline.stand_in is True


def test_scales_come_from_the_environment():
    script = "from benchmarks.lib import settings; print(settings.SCALE_SIZES, settings.N_ITEMS)"
    env = {**os.environ, "STAC_BENCH_SCALES": "240,60,120", "STAC_BENCH_SCALE": "tiny"}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["[60,", "120,", "240]", "[60]"]
    env.pop("STAC_BENCH_SCALES")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.split()[:3] == ["[1000,", "10000,", "100000]"]


PRELOAD = """
import sys
sys.argv = ["benchmark.py", "run_server"]  # asv's forkserver, where the suites preload
from benchmarks.lib import checks, scenario
scenario.preload_subject = lambda: None  # no stac-manager here: the checks' part only
from benchmarks import scale
print(sorted({(n, keys is not None, bool(loose)) for n, _, keys, loose in checks._EXPECTED}))
"""


@pytest.mark.parametrize("asked", [True, False])
def test_the_forkserver_prepares_every_scale_only_when_asked(asked, tmp_path):
    """``tools.bench scale`` sets ``STAC_BENCH_PRELOAD_SCALES=1``: the forkserver then prepares the
    three kinds of check at every scale; any other run prepares the suites' own ``n_items`` only."""
    env = {**os.environ, "STAC_BENCH_SCALES": "120,240", "STAC_BENCH_SCALE": "tiny",
           "STAC_BENCH_PRELOAD_SCALES": "1" if asked else "0", "STAC_BENCH_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", PRELOAD], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout
    prepared = ast.literal_eval(out)
    sizes = {n for n, _, _ in prepared}
    kinds = {(projected, loose) for n, projected, loose in prepared if n == 240}
    assert sizes == ({3, 60, 120, 240} if asked else {3, 60})
    assert kinds == ({(False, False), (True, False), (True, True)} if asked else set())


def test_the_profiles_select_the_scale_module_alone_or_leave_it_out():
    """``tools.bench scale`` runs ``benchmarks/scale.py`` only; ``full`` everything else; ``history`` its classes."""
    names = ["scale.FileDirectory.time_run(1000, 'module', 1)", "scale.Pipeline.track_mem_mb",
             "file_ingest.DirectoryModule.time_run(1000, 'module', 1)", "output.ModuleJsonMemory.track_throughput",
             "scaled.X.time_run"]
    picked = {p: [n for n in names if re.search(bench.bench_regex(p), n)] for p in bench.PROFILES}
    assert picked["scale"] == names[:2]
    assert picked["full"] == names[2:]
    assert picked["history"] == ["file_ingest.DirectoryModule.time_run(1000, 'module', 1)"]
    args = argparse.Namespace(config="asv.conf.json", machine=None, asv_args=[], range=None)
    assert bench.Run("scale").asv_args(args) == ["run", "--config", "asv.conf.json", "--bench", r"^scale\.",
                                                 "main^!"]
    assert "--skip-existing" in bench.Run("history").asv_args(args)
    args.asv_args = ["--bench", "scale.FileDirectory"]  # chosen after --: the profile's regex steps aside
    assert bench.Run("scale").asv_args(args)[-3:] == ["--bench", "scale.FileDirectory", "main^!"]


@pytest.mark.parametrize("name", ["FileDirectory", "OutputJson"])
def test_a_bare_asv_run_finds_the_selection_na_and_generates_nothing(standin_sm, monkeypatch, name):
    """Neither ``tools.bench scale`` (``STAC_BENCH_PRELOAD_SCALES``) nor ``STAC_BENCH_SCALES``: no
    dataset made in ``setup_cache``, every row n/a naming how to run it."""
    monkeypatch.delenv("STAC_BENCH_SCALES", raising=False)
    monkeypatch.delenv("STAC_BENCH_PRELOAD_SCALES", raising=False)
    cls = getattr(scale, name)
    made = []
    monkeypatch.setattr(scale, "dataset_roots", lambda: made.append(1) or {})
    roots = cls().setup_cache()
    assert roots is None and not made
    with pytest.raises(NotImplementedError, match="tools.bench scale"):
        cls().setup(roots, SIZES[0], *(p[0] for p in cls.params[1:]))
    monkeypatch.setenv("STAC_BENCH_SCALES", "60,120")
    assert cls().setup_cache() == {} and made

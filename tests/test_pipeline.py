"""The pipeline suite on small data against the stand-in stac-manager: every variant lands exactly the items."""

from pathlib import Path

import pytest

from benchmarks import pipeline
from benchmarks.lib import datacache, itemgen, settings
from benchmarks.lib.checks import ResultMismatch

N = 60


@pytest.fixture
def at_commit(standin_at, tmp_path, monkeypatch):
    """Check out a stand-in commit (a function of its label); output below tmp."""
    monkeypatch.setenv("STAC_BENCH_OUT_DIR", str(tmp_path / "out"))
    return standin_at


def _run(params, runs=1):
    roots = {n: str(datacache.ensure_dataset(n)) for n in (N, pipeline.PROBE_ITEMS)}
    cls = {"module": pipeline.PipelineModule, "loop": pipeline.Control}.get(params[0], pipeline.Pipeline)
    bench = cls()
    try:
        bench.setup(roots, N, *params)
    except NotImplementedError:
        assert not list(settings.out_dir().iterdir()), "an n/a setup left files behind"
        return None
    try:
        for _ in range(runs):
            bench.run()
        for stage in ("ingest", "transform", "output", "checkpoint"):  # stac-manager's pipeline only
            assert (0 <= getattr(bench, f"track_share_{stage}")(N, *params) <= 100 if cls is pipeline.PipelineModule
                    else not hasattr(bench, f"track_share_{stage}"))
        assert bench.track_throughput(N, *params) > 0
        # the shares of one run: disjoint stages, so they sum to at most 100 %
        shares = {s: 100 * t / bench.last_wall for s, t in bench.last_stages.items()}
    finally:
        bench.teardown(roots, N, *params)
    assert not list(settings.out_dir().iterdir())
    return shares


@pytest.mark.parametrize("strategy,concurrency,checkpoint", [
    ("module", 1, False), ("module", 1, True), ("module", 5, False),
    ("concurrent_ingest", 1, False), ("concurrent_ingest", 10, True),
    ("concurrent_ingest_batched_output", 5, False), ("concurrent_ingest_batched_output", 1, True),
])
def test_variants_land_exact_items(at_commit, strategy, concurrency, checkpoint):
    at_commit("c4_phase2")
    shares = _run((strategy, concurrency, checkpoint), runs=2)
    assert shares is not None
    assert all(0 <= v <= 100 for v in shares.values())
    assert shares["output"] > 0 and shares["ingest"] > 0
    assert (shares["checkpoint"] > 0) == checkpoint
    assert sum(shares.values()) <= 100.5


def test_control_needs_no_stac_manager(at_commit):
    at_commit("c1_no_ingest")  # no modules at all: the control still measures the machine
    shares = _run(("loop", 1, False), runs=2)
    assert shares is not None and shares["output"] > 0 and shares["checkpoint"] == 0


def test_na_where_the_commit_lacks_it(at_commit):
    at_commit("c3_current")  # no Phase 2 ingest concurrency
    assert _run(("module", 5, False)) is None
    assert _run(("module", 1, False)) is not None
    at_commit("c2_old_context")  # no OutputModule / UpdateModule
    assert _run(("concurrent_ingest", 1, False)) is None


def test_hybrid_checkpoints_only_at_their_levels(at_commit):
    at_commit("c4_phase2")
    assert 5 not in settings.CONDITION_LEVELS and 10 in settings.CONDITION_LEVELS
    assert _run(("concurrent_ingest", 5, True)) is None
    assert _run(("concurrent_ingest", 5, False)) is not None


def test_lossy_output_fails(at_commit, monkeypatch):
    """An OutputModule that drops an item makes the run fail, not report a number."""
    at_commit("c4_phase2")
    import stac_manager.modules.output as sm_output


    roots = {n: str(datacache.ensure_dataset(n)) for n in (N, pipeline.PROBE_ITEMS)}
    bench = pipeline.PipelineModule()
    bench.setup(roots, N, "module", 1, False)
    original = sm_output.OutputModule.bundle

    async def lossy(self, item, context):
        if item["id"] != itemgen.item_id(N - 1):
            await original(self, item, context)

    monkeypatch.setattr(sm_output.OutputModule, "bundle", lossy)
    try:
        with pytest.raises(ResultMismatch, match="1 lost"):
            bench.run()
    finally:
        bench.teardown(roots, N, "module", 1, False)


def test_expected_item_applies_updates():
    item = pipeline.expected_item(3)
    assert item["properties"]["constellation"] == "sentinel-2"
    assert item["properties"]["processing:level"] == "L2A"


def test_a_damaged_source_is_refused_before_the_run(at_commit, tmp_path, monkeypatch):
    """The item files the pipeline reads are checked against the manifest in ``setup``: a damaged
    file is the data's fault, named, never a strategy's lost or mangled item."""
    at_commit("c4_phase2")
    monkeypatch.setenv("STAC_BENCH_DATA_DIR", str(tmp_path / "data"))
    roots = {n: str(datacache.ensure_dataset(n)) for n in (N, pipeline.PROBE_ITEMS)}
    victim = Path(roots[N]) / "items" / f"{itemgen.item_id(7)}.json"
    victim.write_bytes(victim.read_bytes() + b" ")
    for cls, strategy in ((pipeline.PipelineModule, "module"), (pipeline.Control, "loop")):
        bench = cls()
        with pytest.raises(datacache.DatasetError, match=victim.name):
            bench.setup(roots, N, strategy, 1, False)
        bench.teardown()

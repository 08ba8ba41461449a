"""``track_instructions`` and ``track_alloc_mb`` of the history classes (``benchmarks.lib.counts``)
on the stand-in.

The first row of a commit counts the rows of every history class in one valgrind process (and
their allocation peaks in one native process beside it) and keeps them per commit; the others
read them.  Counted: the history params at one worker.
"""

import itertools
import json

import pytest

from benchmarks import api_ingest, file_ingest, output, pipeline  # noqa: F401 - each registers its classes
from benchmarks.lib import counts, instructions

needs_valgrind = pytest.mark.skipif(instructions.unavailable() is not None,
                                    reason=f"no instruction counts here: {instructions.unavailable()}")


def test_the_history_classes_and_only_they_are_counted():
    names = {f"{c.__module__.rsplit('.', 1)[1]}.{c.__name__}" for c in counts.COUNTED}
    assert {"file_ingest.DirectoryModule", "file_ingest.Control", "output.ModuleJson", "output.Control",
            "pipeline.PipelineModule", "pipeline.Control", "api_ingest.SearchModule", "api_ingest.Control"} <= names
    assert not {"file_ingest.Directory", "output.ItemFiles", "pipeline.Pipeline", "api_ingest.Search"} & names
    assert file_ingest.Phase1Method.track_instructions is None  # DirectoryModule's run, counted there
    rows = counts.counted_rows(output.ModuleJson)
    assert rows == [(counts.COUNT_ITEMS, "module", 1, 1000)]  # its history buffer, one worker
    assert counts.row_key(output.ModuleJson, rows[0]) == "output.ModuleJson('module', 1, 1000)"


@pytest.fixture
def counting(monkeypatch):
    """Instruction counts on (the tests' environment turns them off: STAC_BENCH_COUNTS=0)."""
    monkeypatch.setattr(counts, "COUNTS", True)


def test_counts_turned_off_are_na_with_the_reason(monkeypatch):
    monkeypatch.setattr(counts, "COUNTS", False)
    monkeypatch.setattr(instructions, "count_rows", lambda *a, **k: pytest.fail("counted"))
    with pytest.raises(NotImplementedError, match=r"off \(STAC_BENCH_COUNTS=0\)"):
        counts.measured(file_ingest.DirectoryModule, (1000, "module", 1), "instructions")


def test_more_than_one_worker_is_na_before_any_count(counting, monkeypatch):
    monkeypatch.setattr(instructions, "count_rows", lambda *a, **k: pytest.fail("counted"))
    monkeypatch.setattr(instructions, "unavailable", lambda: None)
    with pytest.raises(NotImplementedError, match="one worker"):
        counts.measured(file_ingest.DirectoryModule, (1000, "module", 5), "allocations")
    # as asv calls it: setup_cache's result first, then the params
    with pytest.raises(NotImplementedError, match="one worker"):
        file_ingest.DirectoryModule().track_instructions({1000: "roots"}, 1000, "module", 5)


def test_without_valgrind_every_row_is_na_with_the_reason(counting, monkeypatch):
    monkeypatch.setattr(instructions, "unavailable", lambda: "valgrind is not installed (apt-get install valgrind)")
    with pytest.raises(NotImplementedError, match="^valgrind is not installed"):
        counts.measured(file_ingest.DirectoryModule, (1000, "module", 1), "instructions")


@needs_valgrind
@pytest.mark.timeout(900)
def test_the_first_row_counts_the_commit_the_others_read_it(counting, standin_at, tmp_path, monkeypatch):
    standin_at("c4_phase2")
    monkeypatch.setenv("STAC_BENCH_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(counts, "COUNTED", [file_ingest.DirectoryModule, file_ingest.Control])
    calls = []
    real = instructions.count_rows

    def counting(rows, **kw):
        calls.append(sorted(r["key"] for r in rows))
        return real(rows, **kw)

    monkeypatch.setattr(instructions, "count_rows", counting)
    module = counts.measured(file_ingest.DirectoryModule, (1000, "module", 1), "instructions")
    control = counts.measured(file_ingest.Control, (1000, "loop", 1), "instructions")
    assert calls == [["file_ingest.Control('loop', 1)", "file_ingest.DirectoryModule('module', 1)",
                      "file_ingest.DirectoryModule('module_queue', 1)"]]  # one valgrind process
    assert 1e5 < control < module < 1e8  # stac-manager does more than the plain loop, per item
    assert counts.measured(file_ingest.DirectoryModule, (1000, "module_queue", 1), "instructions") > 1e5  # Phase 2
    # the allocation peaks were taken beside the counts, in the same call: stac-manager allocates more
    # than the plain loop (which holds one item at a time)
    alloc = counts.measured(file_ingest.DirectoryModule, (1000, "module", 1), "allocations")
    assert 0 < counts.measured(file_ingest.Control, (1000, "loop", 1), "allocations") < alloc < 50
    (kept,) = (tmp_path / counts.FOLDER).glob("*.json")
    assert kept.stem == counts.commit_key()
    row = json.loads(kept.read_text())["file_ingest.DirectoryModule('module', 1)"]
    assert row["instructions"]["value"] == module and row["allocations"]["value"] == alloc
    # another commit of stac-manager is another key, and counts anew
    standin_at("c3_current")
    assert counts.commit_key() != kept.stem
    with pytest.raises(NotImplementedError, match="worker_strategy"):  # c3 has no Phase 2 queue: n/a
        counts.measured(file_ingest.DirectoryModule, (1000, "module_queue", 1), "instructions")
    assert len(calls) == 2


@pytest.mark.timeout(600)
def test_allocation_peaks_need_no_valgrind(counting, standin_at, tmp_path, monkeypatch):
    """Where instruction counts are n/a (no valgrind), the allocation peaks are still measured."""
    standin_at("c3_current")
    monkeypatch.setenv("STAC_BENCH_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(counts, "COUNTED", [file_ingest.FeatureCollectionModule, file_ingest.Control])
    monkeypatch.setattr(instructions, "unavailable", lambda: "valgrind is not on PATH (apt-get install valgrind)")
    with pytest.raises(NotImplementedError, match="^valgrind is not on PATH"):
        counts.measured(file_ingest.Control, (1000, "loop", 1), "instructions")
    held = counts.measured(file_ingest.FeatureCollectionModule, (1000, "module", 1), "allocations")
    loop = counts.measured(file_ingest.Control, (1000, "loop", 1), "allocations")
    # a FeatureCollection is parsed whole: the run holds every item; the loop holds one at a time
    assert held > 2 * loop > 0


def test_rows_that_are_not_counted_are_na_before_their_setup():
    """asv skips them without a process or a setup (skip_params): a pool or a server started
    for a number that is never taken would cost the history profile time for nothing."""
    n = file_ingest.DirectoryModule.params[0][0]
    skipped = set(file_ingest.DirectoryModule.track_instructions.skip_params)
    assert (n, "module", 5) in skipped and (n, "module", 1) not in skipped
    skipped = set(output.ModuleJson.track_instructions.skip_params)
    assert (n, "module", 1, 100) in skipped and (n, "module", 1, 1000) not in skipped
    assert output.ModuleJson.track_instructions.unit == "instructions/item"
    assert output.ModuleJson.track_instructions.timeout >= 1800


def test_the_api_rows_counts_are_na_with_the_reason_their_allocations_are_not(counting, monkeypatch):
    """The API client's count moved 3-18 % between counting sessions of the same code: n/a
    on every row, before setup, and never counted; its allocation peak is still measured."""
    monkeypatch.setattr(instructions, "count_rows", lambda *a, **k: pytest.fail("counted"))
    monkeypatch.setattr(instructions, "unavailable", lambda: None)
    row = (api_ingest.SearchModule.params[0][0], "module", 1, 0)
    assert set(api_ingest.SearchModule.track_instructions.skip_params) == set(
        itertools.product(*api_ingest.SearchModule.params))
    assert row not in set(api_ingest.SearchModule.track_alloc_mb.skip_params)
    with pytest.raises(NotImplementedError, match="moved 3-18 % between counting sessions"):
        counts.measured(api_ingest.Control, (1000, "aiohttp_sequential", 1, 0), "instructions")

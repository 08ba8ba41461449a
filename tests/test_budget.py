"""tools/budget.py recorded: the cost of each committed commit, grouped by the profile it ran."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from tools import bench, budget


def _write(folder, commit, classes, seconds):
    cols = ["result", "params", "version", "started_at", "duration"]
    results = {f"{c}.time_run": [[1.0], [], "v", 0, seconds / len(classes)] for c in classes}
    data = {"commit_hash": commit * 5, "date": 0, "result_columns": cols, "results": results,
            "durations": {"<build>": 3.0}}
    (folder / f"{commit}-env.json").write_text(json.dumps(data))


def test_recorded_groups_by_profile_and_leaves_partial_runs_out(tmp_path, capsys):
    history = sorted(bench.history_classes())
    _write(tmp_path, "aaaaaaaa", history, 40)
    _write(tmp_path, "bbbbbbbb", history[:3], 50)
    _write(tmp_path, "cccccccc", history + ["file_ingest.Directory"], 600)
    _write(tmp_path, "dddddddd", ["file_ingest.Directory", "file_ingest.DirectoryModule"], 300)
    (tmp_path / "machine.json").write_text("{}")
    assert budget.recorded(tmp_path) == 0
    out = capsys.readouterr().out
    assert "| history | 2 | 3 | 45 | 48 | 53 |" in out
    assert "| full | 1 | 3 | 600 | 603 | 603 |" in out
    assert "_Full profile, each commit (build/install + benchmarks): `cccccccc` 603 s._" in out
    assert "Not counted: 1 commit(s) with only some classes of the full profile (`dddddddd`)" in out


def test_the_scale_selection_is_counted_apart(tmp_path, capsys):
    """A head with the scale selection beside its full run: the full row is the full profile's cost, the
    scale selection's (its benchmarks and its setup_cache) a line of its own."""
    history = sorted(bench.history_classes())
    _write(tmp_path, "cccccccc", history + ["file_ingest.Directory"], 600)
    path = tmp_path / "cccccccc-env.json"
    data = json.loads(path.read_text())
    data["results"]["scale.FileDirectory.time_run"] = [[1.0], [], "v", 0, 3000.0]
    data["durations"]["<setup_cache scale:81>"] = 250.0
    data["durations"]["<setup_cache file_ingest:47>"] = 2.0
    path.write_text(json.dumps(data))
    assert budget.recorded(tmp_path) == 0
    out = capsys.readouterr().out
    assert "| full | 1 | 3 | 602 | 605 | 605 |" in out
    assert "_Scale selection (`tools.bench scale`), counted apart: `cccccccc` 3,250 s._" in out


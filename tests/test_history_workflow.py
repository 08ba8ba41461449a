"""The history workflow (.github/workflows/history.yml) and tools.shards, without GitHub.

The fast tests read the workflow and check ``tools.shards``' split and merge on crafted folders.
The ``e2e`` test runs the workflow's own command lines as they are written (its ``run`` step of
the ``shard`` job, its ``merge`` and ``publish`` steps; ``${{ }}`` expressions filled in as
GitHub would) on the stand-in stac-manager: two shards in separate folders (each with its own
HOME and data cache, as two runners), merged, against one run of all the commits (the same step,
shard 1 of 1): the merge holds each shard's values as they were, the same commits and benchmarks as
the one run, every wall time present and every instruction count within 0.5 % of the one run's
(counts repeat to that, not to the instruction: two runs of one commit differ by a few in 100,000).  The other steps are not run: the checkout is a scratch folder with this .venv
linked in (``bash tools/setup.sh``), the clone is the stand-in, the artifacts are copies.  To keep
it cheap: two commits, ``--quick``, and two classes' wall time and instruction counts
(``STAC_BENCH_ASV_ARGS``), one asv environment shared by the three runs.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import E2E_ENV, ROOT, asv_conf, read_results
from tools import bench, publish, shards

WORKFLOW = ROOT / ".github" / "workflows" / "history.yml"
#: The tool lines of the workflow, as written there (checked below; the e2e test runs their steps).
SHARD_LINE = ('python -m tools.bench history HASHFILE:commits.txt --shard "$SHARD/$SHARDS" --config asv.conf.json '
              '--machine "$MACHINE" --no-report -- --skip-existing-commits || code=$?')
MERGE_LINE = "python -m tools.shards merge results shards/*"
PUBLISH_LINE = "python -m tools.publish --config asv.conf.json"
#: How closely instruction counts repeat between runs (docs/gate.md): two runners count the same
#: commit within it (about 0.003 % apart on the stand-in), not to the instruction.
REPEAT = 0.005
#: Two classes, at one worker: the stac-manager row and the noise floor, wall time and counts.
SELECT = (r"^file_ingest\.(DirectoryModule|Control)\.(time_run|track_instructions)"
          r"\([^,]+, '(module|loop)', 1\)$")


def workflow():
    return yaml.safe_load(WORKFLOW.read_text())


def step(flow, job, step_id):
    (found,) = [s for s in flow["jobs"][job]["steps"] if s.get("id") == step_id]
    return found


def fill(text, values):
    """GitHub's expression substitution, for the expressions these steps use."""
    return re.sub(r"\$\{\{\s*([^}]+?)\s*\}\}", lambda m: str(values[m.group(1)]), str(text))


def tool_lines(text):
    return [line.strip() for line in text.splitlines() if line.strip().startswith("python -m tools.")]


# --- the workflow (fast) -------------------------------------------------------------------------

def test_workflow_recipe():
    flow = workflow()
    on = flow.get("on", flow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "schedule" in on and "workflow_dispatch" in on
    jobs = flow["jobs"]
    assert jobs["shard"]["needs"] == "list" and jobs["merge"]["needs"] == "shard" and jobs["pages"]["needs"] == "merge"
    matrix = jobs["shard"]["strategy"]["matrix"]
    assert matrix["shard"] == list(range(1, int(flow["env"]["SHARDS"]) + 1))
    assert jobs["shard"]["env"]["MACHINE"] == "gha-${{ matrix.runner }}"  # one machine name per runner type
    shard_runs = "\n".join(s.get("run", "") for s in jobs["shard"]["steps"])
    assert "bash tools/setup.sh" in shard_runs and "git clone --quiet --mirror" in shard_runs
    assert tool_lines(step(flow, "shard", "run")["run"]) == [SHARD_LINE]
    assert tool_lines(step(flow, "merge", "merge")["run"]) == [MERGE_LINE]
    assert tool_lines(step(flow, "merge", "publish")["run"]) == [PUBLISH_LINE]
    uploads = [s for s in jobs["shard"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert uploads[0]["with"]["name"].startswith("results-") and "results/${{ env.MACHINE }}/" in uploads[0]["with"]["path"]
    pages = [s for s in jobs["merge"]["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert pages[0]["with"]["path"] == asv_conf()["html_dir"]
    assert jobs["merge"]["permissions"] == {"contents": "write"}
    assert "git push" in "\n".join(s.get("run", "") for s in jobs["merge"]["steps"])
    args = bench.build_parser().parse_args(SHARD_LINE.split(" -- ")[0].split()[3:])
    assert (args.shard, args.config, args.no_report) == ('"$SHARD/$SHARDS"', "asv.conf.json", True)


# --- split and merge (fast) ----------------------------------------------------------------------

def test_split_is_stable_and_covers_every_commit():
    commits = [f"{i:040x}" for i in range(40)]
    parts = [shards.split(commits, k, 3) for k in (1, 2, 3)]
    assert sorted(sum(parts, [])) == sorted(commits) and all(parts)
    # a commit's shard does not depend on the rest of the list
    assert shards.split(commits[::-1][:7], 2, 3) == [c for c in commits[::-1][:7] if c in parts[1]]
    assert shards.split(commits, 1, 1) == commits


def results_folder(path, commit, rows, env="env-1", machine="box", requirements=None, version="1"):
    """A small asv results folder: one commit's file with ``rows`` {benchmark: value}."""
    (path / machine).mkdir(parents=True, exist_ok=True)
    (path / "benchmarks.json").write_text(json.dumps(
        {name: {"name": name, "version": version, "params": [], "param_names": [], "type": "time",
                "unit": "seconds"} for name in ("a.B.time_run", "a.B.track_instructions")} | {"version": 2}))
    (path / machine / "machine.json").write_text(json.dumps({"machine": machine, "version": 1}))
    data = {"commit_hash": commit, "env_name": env, "date": 1, "params": {"python": "3.12"}, "python": "3.12",
            "requirements": requirements or {"numpy": "1.26.4"}, "env_vars": {},
            "result_columns": ["result", "params", "version", "started_at", "duration"],
            "results": {name: [[value], [], "1", 5, 1.0] for name, value in rows.items()},
            "durations": {"<build>": 3.0}, "version": 2}
    (path / machine / f"{commit[:8]}-{env}.json").write_text(json.dumps(data))
    return path


def test_merge_unions_rows_and_refuses_a_second_value(tmp_path, capsys):
    c = "ab" * 20
    one = results_folder(tmp_path / "one", c, {"a.B.time_run": 1.0})
    two = results_folder(tmp_path / "two", c, {"a.B.track_instructions": 500})
    assert shards.main(["merge", str(tmp_path / "out"), str(one), str(two)]) == 0
    merged = json.loads(next((tmp_path / "out" / "box").glob("abababab-*.json")).read_text())
    assert {k: v[0] for k, v in merged["results"].items()} == {"a.B.time_run": [1.0], "a.B.track_instructions": [500]}
    assert shards.main(["merge", str(tmp_path / "out"), str(one), str(two)]) == 0  # again: nothing new
    assert "0 new results file(s), 0 extended" in capsys.readouterr().out
    before = (tmp_path / "out" / "box" / "abababab-env-1.json").read_bytes()
    three = results_folder(tmp_path / "three", c, {"a.B.time_run": 1.1})  # measured again
    assert shards.main(["merge", str(tmp_path / "out"), str(three)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("shards.py: error: two values for commit abababab and benchmark a.B.time_run"), err
    assert (tmp_path / "out" / "box" / "abababab-env-1.json").read_bytes() == before


@pytest.mark.parametrize("spoil, message", [
    (dict(version="2"), "different benchmark suite version: a.B.time_run"),
    (dict(env="env-2", requirements={"numpy": "2.0.0"}), "different environment"),
])
def test_merge_refuses_another_suite_or_environment(tmp_path, capsys, spoil, message):
    one = results_folder(tmp_path / "one", "ab" * 20, {"a.B.time_run": 1.0})
    two = results_folder(tmp_path / "two", "cd" * 20, {"a.B.time_run": 2.0}, **spoil)
    assert shards.main(["merge", str(tmp_path / "out"), str(one), str(two)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_merge_refuses_results_that_describe_the_machine_otherwise(tmp_path, capsys):
    # As it happened: a shard run under a machine name whose ~/.asv-machine.json entry lacked two
    # fields wrote results whose params (machine.json's fields) differ from the committed ones;
    # merged, the dashboard drew the new commits as a second series.
    target = results_folder(tmp_path / "results", "ab" * 20, {"a.B.time_run": 1.0})
    shard = results_folder(tmp_path / "shard", "cd" * 20, {"a.B.time_run": 2.0})
    data = json.loads((shard / "box" / "cdcdcdcd-env-1.json").read_text())
    (shard / "box" / "cdcdcdcd-env-1.json").write_text(json.dumps(data | {"params": {"python": "3.12", "num_cpu": "2"}}))
    assert shards.main(["merge", str(target), str(shard)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "differ in params" in err[0] and "num_cpu" in err[0], err
    assert sorted(p.name for p in (target / "box").iterdir()) == ["abababab-env-1.json", "machine.json"]
    (shard / "box" / "cdcdcdcd-env-1.json").write_text(json.dumps(data))  # described alike: merged
    assert shards.main(["merge", str(target), str(shard)]) == 0 and (target / "box" / "cdcdcdcd-env-1.json").is_file()


# --- the workflow's lines on the stand-in (e2e) --------------------------------------------------

def pick(hashes):
    """Two stand-in commits that land in two different shards of N (the split is by hash: the
    stand-in's hashes change with every build of it): ``(commits, N, (K1, K2))``."""
    candidates = [hashes[label] for label in ("c3_current", "c4_phase2")]  # c5_slow busy-waits under valgrind
    for n in range(2, 9):
        groups = {k: shards.split(candidates, k, n) for k in range(1, n + 1)}
        filled = [k for k, group in groups.items() if group]
        if len(filled) >= 2:
            return [groups[filled[0]][0], groups[filled[1]][0]], n, (filled[0], filled[1])
    pytest.fail(f"every candidate commit lands in one shard for N up to 8: {candidates}")


def checkout(folder, repo, env_dir, commits):
    """The layout a job sees: this .venv (tools/setup.sh), asv.conf.json on the stand-in, the list."""
    folder.mkdir()
    (folder / ".venv").symlink_to(ROOT / ".venv")
    conf = asv_conf(repo=str(repo), branches=["main"], benchmark_dir=str(ROOT / "benchmarks"),
                    env_dir=str(env_dir), results_dir="results")
    (folder / "asv.conf.json").write_text(json.dumps(conf, indent=2))
    shutil.copy(ROOT / "constraints.txt", folder / "constraints.txt")
    (folder / "commits.txt").write_text("".join(f"{c}\n" for c in commits))
    return folder


def run_step(flow, job, step_id, cwd, env, values):
    text = fill(step(flow, job, step_id)["run"], values)
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", text], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1500)
    log = cwd / ".asv" / "bench.log"
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:],
                                  log.read_text()[-3000:] if log.is_file() else "")
    return proc


def measured(value):
    """A number, not n/a (None) nor a combination left out (NaN)."""
    return value is not None and value == value


def rows(results, commit):
    """``{(benchmark, params): value}`` of one commit's file."""
    return {(name, combo): value for name, values in read_results(results, commit).items()
            for combo, value in values.items()}


@pytest.mark.e2e
@pytest.mark.timeout(1800)
def test_two_shards_merged_are_one_run_and_publish(standin_repo, asv_run, tmp_path):
    from test_dashboard import dom, grid_benchmarks, need_chromium

    from benchmarks.lib import instructions

    repo, hashes = standin_repo
    commits, n, (k1, k2) = pick(hashes)
    flow = workflow()
    runner = flow["jobs"]["shard"]["strategy"]["matrix"]["runner"][0]
    machine = fill(flow["jobs"]["shard"]["env"]["MACHINE"], {"matrix.runner": runner})
    counted = instructions.unavailable() is None
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    base = {**os.environ, **E2E_ENV, "PATH": path, "STAC_BENCH_COUNTS": "1" if counted else "0",
            "STAC_BENCH_ASV_ARGS": f"--quick --show-stderr --bench {shlex.quote(SELECT)}", "MACHINE": machine,
            "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip"))}
    folders = {}
    env_dir = asv_run["dir"] / "env"  # the e2e run's virtualenv: built once per test session
    # folder names of one length: the paths a run reads are part of what it counts (a runner's are the same)
    for name, k, of in (("run-all", 1, 1), ("shard-a", k1, n), ("shard-b", k2, n)):
        folder = checkout(tmp_path / name, repo, env_dir, commits)
        (folder / "home").mkdir()
        env = dict(base, HOME=str(folder / "home"), STAC_BENCH_DATA_DIR=str(folder / "data"),
                   SHARD=str(k), SHARDS=str(of))
        run_step(flow, "shard", "run", folder, env, {"matrix.runner": runner, "matrix.shard": k})
        folders[name] = folder / "results"
    one = folders["run-all"]
    assert {p.name[:8] for p in (one / machine).glob("*-*.json")} == {c[:8] for c in commits}
    for name in ("shard-a", "shard-b"):  # each shard ran its commit only
        assert len(list((folders[name] / machine).glob("*-*.json"))) == 1, name

    merge = checkout(tmp_path / "merge", repo, env_dir, commits)
    for i, name in enumerate(("shard-a", "shard-b"), 1):  # download-artifact: one folder an artifact
        artifact = merge / "shards" / f"results-{runner}-{i}"
        shutil.copytree(folders[name] / machine, artifact / machine)
        shutil.copy(folders[name] / "benchmarks.json", artifact / "benchmarks.json")
    env = dict(base, HOME=str(tmp_path / "run-all" / "home"))
    run_step(flow, "merge", "merge", merge, env, {})
    merged = merge / "results"
    for commit, shard in zip(commits, ("shard-a", "shard-b"), strict=True):
        mine, theirs = rows(merged, commit), rows(one, commit)
        assert repr(sorted(mine.items())) == repr(sorted(rows(folders[shard], commit).items()))  # as the shard had
        assert set(mine) == set(theirs) and mine, commit[:8]  # the same benchmarks and parameters
        assert {k for k, v in mine.items() if measured(v)} == {k for k, v in theirs.items() if measured(v)}
        for key, value in theirs.items():
            if key[0].endswith(".track_instructions") and measured(value):
                # another run's count: the same to 0.5 % (docs/gate.md), not to the instruction
                assert mine[key] == pytest.approx(value, rel=REPEAT), (commit[:8], key)
            elif measured(value):
                assert mine[key] > 0, (commit[:8], key)  # a wall time
        assert any(k[0].endswith(".time_run") and measured(v) for k, v in mine.items()), commit[:8]
        if counted:
            assert any(k[0].endswith(".track_instructions") and measured(v) for k, v in mine.items()), commit[:8]

    run_step(flow, "merge", "publish", merge, env, {})
    need_chromium()
    html = merge / asv_conf()["html_dir"]
    index = json.loads((html / "index.json").read_text())
    assert any(name.startswith("file_ingest.DirectoryModule.") for name in index["benchmarks"])
    with publish.serving(html) as url:
        assert grid_benchmarks(dom(url)) == set(index["benchmarks"])

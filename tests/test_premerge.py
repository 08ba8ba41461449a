"""tools.premerge: arguments, the scratch asv config, bad input, and real runs on the stand-in.

The ``e2e`` tests run real asv (virtualenv, builds, interleaved rounds) on the stand-in
repository, a few classes each (``-- --bench``, or ``STAC_PREMERGE_ASV_ARGS`` for the CI
workflow's own command line), at tiny scale.  They share one premerge workdir (under a scratch
HOME), so the asv environment is built once.

The CI recipe (.github/workflows/premerge.yml): its ``premerge`` step is run here as written
(expressions filled in, ``$GITHUB_OUTPUT`` a file) from a layout like the runner's:
``stac-manager/`` beside ``stac-manager-benchmarks/``.  Its other steps are not run: the two
checkouts are that layout, ``bash tools/setup.sh`` is this .venv (linked in), ``gh pr comment``
needs GitHub.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import E2E_ENV, ROOT, tool
from tools import gatecheck, premerge

WORKFLOW = ROOT / ".github" / "workflows" / "premerge.yml"
#: Every ``python -m tools.premerge`` line of the workflow, as written there (checked below);
#: test_workflow_step_flags_the_planted_slowdown runs the step that holds it.
WORKFLOW_PREMERGE = [
    "python -m tools.premerge --repo ../stac-manager origin/${{ github.base_ref }} "
    "${{ github.event.pull_request.head.sha }} --output comment.md",
]
#: A few classes: the planted slowdown is in file ingest; Control gives the drift.
FEW = r"^file_ingest\.(DirectoryModule|FeatureCollectionModule|Control)\."
FEWER = r"^file_ingest\.(DirectoryModule|Control)\."


# --- arguments and the scratch config (fast) -----------------------------------------------------

def test_defaults():
    args = premerge.parse_args(["--repo", "x"])
    assert (args.base, args.head, args.factor, args.rounds, args.quick) == ("main", "HEAD", 1.5, 4, False)
    assert args.asv_args == [] and args.output is None and not args.working_tree
    args = premerge.parse_args(["--repo", "x", "--working-tree"])
    assert (args.base, args.head) == ("main", None)


def test_refs_options_and_pass_through(monkeypatch):
    monkeypatch.setenv("STAC_PREMERGE_ASV_ARGS", "--show-stderr -a 'warmup_time=0'")
    args = premerge.parse_args(["--repo", "x", "origin/main", "abc123", "--quick", "--factor", "2",
                                "--output", "c.md", "--", "--bench", "foo", "--", "bar"])
    assert (args.base, args.head, args.factor, args.output) == ("origin/main", "abc123", 2.0, "c.md")
    assert args.asv_args == ["--bench", "foo", "--", "bar", "--show-stderr", "-a", "warmup_time=0"]


@pytest.mark.parametrize("argv", [
    ["--repo", "x", "a", "b", "c"],
    ["--repo", "x", "--working-tree", "a", "b"],
    ["--repo", "x", "--factor", "0.5"],
    ["--repo", "x", "--rounds", "0"],
    ["a", "b"],
])
def test_bad_arguments_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        premerge.parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("premerge.py: error: "), err


def test_run_options(monkeypatch):
    monkeypatch.setattr(premerge.bench, "bench_regex", lambda profile: f"<{profile}>")
    args = premerge.parse_args(["--repo", "x"])
    assert premerge.run_options(args) == ["-a", "rounds=4", "--bench", "<history>"]
    args = premerge.parse_args(["--repo", "x", "--quick", "--", "--bench=foo", "--show-stderr"])
    assert premerge.run_options(args) == ["--quick", "--bench=foo", "--show-stderr"]
    args = premerge.parse_args(["--repo", "x", "--rounds", "2", "--", "-b", "foo"])
    assert premerge.run_options(args) == ["-a", "rounds=2", "-b", "foo"]


def test_scratch_config_points_at_the_repo_and_the_workdir(tmp_path):
    from asv import util
    from asv.config import Config

    project = util.load_json(str(ROOT / "asv.conf.json"), js_comments=True)
    conf = premerge.scratch_config(tmp_path / "sm", "origin/main", tmp_path / "wd")
    assert conf["repo"] == str(tmp_path / "sm") and conf["branches"] == ["origin/main"]
    assert conf["benchmark_dir"] == str(ROOT / "benchmarks")
    for key in ("env_dir", "results_dir", "html_dir"):
        assert Path(conf[key]).parent == tmp_path / "wd"
    for key in ("matrix", "build_command", "install_command", "pythons", "launch_method", "project"):
        assert conf[key] == project[key]
    path = premerge.write_config(conf, tmp_path / "wd")
    assert (tmp_path / "wd" / "constraints.txt").read_text() == (ROOT / "constraints.txt").read_text()
    loaded = Config.load(str(path))  # asv reads it as it is
    assert loaded.results_dir == str(tmp_path / "wd" / "results") and loaded.branches == ["origin/main"]


def test_machines(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert premerge.known_machines() == {}
    (tmp_path / ".asv-machine.json").write_text(json.dumps(
        {"box": {"machine": "box", "cpu": "x", "num_cpu": "2", "os": "L"}, "version": 1}))
    assert premerge.default_machine() == "box"
    info = premerge.ensure_machine("box-worktree", tmp_path / "unused.json", like="box")
    assert info == {"machine": "box-worktree", "cpu": "x", "num_cpu": "2", "os": "L"}
    assert set(premerge.known_machines()) == {"box", "box-worktree"}


def test_build_failures_are_read_off_asv_output():
    lines = [
        "[ 0.00%] · For stac-manager commit d763bfc3 <broken> (round 1/2):",
        "[ 0.00%] ·· Building for virtualenv-py3.12-numpy1.26.4",
        "[ 0.00%] ··· Error running /env/bin/python -m pip wheel --no-deps (exit status 2)",
        "             tomllib.TOMLDecodeError: Expected '=' after a key (at line 15, column 6)",
        "",
        "[ 0.00%] ·· Skipping virtualenv-py3.12-numpy1.26.4",
        "[ 3.12%] ··· file_ingest.DirectoryModule.time_run skipped",
        "[50.00%] · For stac-manager commit 7816f3fc <main~1> (round 1/2):",
        "[51.00%] ··· file_ingest.Control.time_run                              failed",
    ]
    broken = premerge.Asv.unbuilt(lines)
    assert broken == {"d763bfc3": "tomllib.TOMLDecodeError: Expected '=' after a key (at line 15, column 6)"}


def tiny_repo(path):
    path.mkdir()
    for args in (["init", "-q", "-b", "main"], ["config", "user.email", "t@t.invalid"], ["config", "user.name", "t"]):
        subprocess.run(["git", "-C", str(path), *args], check=True)
    (path / "f.txt").write_text("x\n")
    subprocess.run(["git", "-C", str(path), "add", "f.txt"], check=True)
    subprocess.run(["git", "-C", str(path), "commit", "-qm", "one"], check=True)
    return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()


def test_twin_is_the_same_tree_in_a_scratch_clone(tmp_path):
    sha = tiny_repo(tmp_path / "repo")
    objects = sorted(p.name for p in (tmp_path / "repo" / ".git" / "objects").rglob("*"))
    clone, twin = premerge.make_twin(tmp_path / "repo", sha, tmp_path / "wd")
    assert twin != sha
    assert premerge.git(clone, "rev-parse", f"{twin}^{{tree}}") == premerge.git(clone, "rev-parse", f"{sha}^{{tree}}")
    assert premerge.git(clone, "rev-parse", f"{twin}^") == sha
    assert sorted(p.name for p in (tmp_path / "repo" / ".git" / "objects").rglob("*")) == objects
    assert premerge.git(tmp_path / "repo", "cat-file", "-e", twin, check=False) is None


def run_premerge(*args, env=None, cwd=None):
    return subprocess.run([*tool("premerge"), *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=cwd)


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    tiny_repo(tmp_path / "repo")
    (tmp_path / "repo" / "sub").mkdir()
    cases = [
        ([tmp_path / "nowhere"], "not a git repository"),
        ([tmp_path / "repo" / "sub"], "not a git repository"),
        ([tmp_path / "repo", "main", "no-such-branch"], "unknown ref 'no-such-branch'"),
        ([tmp_path / "repo", "v9.9"], "unknown ref 'v9.9'"),
        ([tmp_path / "repo", "--working-tree", "nope"], "unknown ref 'nope'"),
    ]
    for (repo, *refs), message in cases:
        proc = run_premerge("--repo", repo, *refs, "--workdir", tmp_path / "wd")
        assert proc.returncode == 2, proc.stderr
        assert proc.stdout == ""
        assert len(proc.stderr.splitlines()) == 1 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "wd").exists()  # nothing ran


# --- the CI recipe (fast) ------------------------------------------------------------------------

def workflow():
    return yaml.safe_load(WORKFLOW.read_text())


def premerge_lines(text):
    return [line.strip() for line in text.splitlines() if line.strip().startswith("python -m tools.premerge")]


def test_workflow_recipe():
    flow = workflow()
    on = flow.get("on", flow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert on["pull_request"]["types"] == ["labeled", "synchronize"]
    (job,) = flow["jobs"].values()
    assert "'benchmark'" in job["if"]
    steps = job["steps"]
    checkouts = [s for s in steps if s.get("uses", "").startswith("actions/checkout@")]
    assert checkouts[0]["with"]["path"] == "stac-manager" and checkouts[0]["with"]["fetch-depth"] == 0
    assert checkouts[1]["with"]["path"] == "stac-manager-benchmarks"
    assert any(s.get("uses", "").startswith("actions/setup-python@") and s["with"]["python-version"] == "3.12"
               for s in steps)
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "bash tools/setup.sh" in runs
    assert re.search(r"gh pr comment .*--body-file comment\.md", runs)
    assert premerge_lines(runs) == WORKFLOW_PREMERGE  # each one is run by the e2e test below
    fail = [s for s in steps if "exit 1" in s.get("run", "")]
    assert fail and "steps.premerge.outputs.code != '0'" in fail[0]["if"]
    for line in WORKFLOW_PREMERGE:
        args = premerge.parse_args(fill(line, "main", "0" * 40).split()[3:])
        assert (args.repo, args.base, args.output, args.quick) == ("../stac-manager", "origin/main", "comment.md", False)


def fill(text, base_ref, head_sha, number="1", repository="o/stac-manager"):
    """GitHub's expression substitution for the expressions the premerge steps use."""
    values = {"github.base_ref": base_ref, "github.event.pull_request.head.sha": head_sha,
              "github.event.pull_request.number": number, "github.repository": repository}
    return re.sub(r"\$\{\{\s*([^}]+?)\s*\}\}", lambda m: values[m.group(1)], text)


# --- real asv on the stand-in (e2e) --------------------------------------------------------------

@pytest.fixture(scope="session")
def premerge_env(tmp_path_factory, bench_data_dir):
    """Environment of the premerge runs: a scratch HOME (machine file, default workdir), tiny data."""
    home = tmp_path_factory.mktemp("premerge-home")
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = dict(os.environ, **E2E_ENV, HOME=str(home), PATH=path,
               PIP_CACHE_DIR=os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")))
    env.pop("STAC_PREMERGE_ASV_ARGS", None)
    return env


def workdir(env):
    return Path(env["HOME"]) / ".cache" / "stac-manager-benchmarks" / "premerge"


def clone(standin_repo, path, at):
    repo, hashes = standin_repo
    subprocess.run(["git", "clone", "-q", str(repo), str(path)], check=True)
    subprocess.run(["git", "-C", str(path), "checkout", "-q", hashes[at]], check=True)
    return path


def comment_section(text, title):
    """The table rows under ``### <title>...`` of a comment."""
    part = text.split(f"### {title}", 1)[1].split("\n#", 1)[0] if f"### {title}" in text else ""
    return [line for line in part.splitlines() if line.startswith("| `")]


def phase2(entry):
    return "module_queue" in entry["params"] or "concurrency=5" in entry["params"]


@pytest.mark.e2e
@pytest.mark.timeout(1800)
def test_workflow_step_flags_the_planted_slowdown(standin_repo, premerge_env, tmp_path):
    """The workflow's premerge step as written: base origin/main = c4_phase2, PR head = c5_slow."""
    _, hashes = standin_repo
    stac_manager = clone(standin_repo, tmp_path / "stac-manager", "c5_slow")  # actions/checkout of the head sha
    subprocess.run(["git", "-C", str(stac_manager), "update-ref", "refs/remotes/origin/main", hashes["c4_phase2"]],
                   check=True)
    benchmarks = tmp_path / "stac-manager-benchmarks"
    benchmarks.mkdir()
    for name in ("tools", "benchmarks", ".venv"):  # the second checkout and tools/setup.sh's .venv
        (benchmarks / name).symlink_to(ROOT / name)
    (step,) = [s for s in workflow()["jobs"]["benchmark"]["steps"] if s.get("id") == "premerge"]
    assert premerge_lines(step["run"]) == WORKFLOW_PREMERGE
    output = tmp_path / "github_output"
    env = dict(premerge_env, GITHUB_OUTPUT=str(output), STAC_PREMERGE_ASV_ARGS=f"--bench '{FEW}'")
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                           fill(step["run"], "main", hashes["c5_slow"])],
                          cwd=tmp_path / step["working-directory"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr  # the step itself passes; the code is its output
    assert "code=1" in output.read_text().split(), (proc.stderr, (workdir(env) / "asv.log").read_text()[-3000:])
    comment = (benchmarks / "comment.md").read_text()
    assert f"**base**: `{hashes['c4_phase2'][:8]}` (`origin/main`)" in comment
    assert f"**head**: `{hashes['c5_slow'][:8]}`" in comment and "**machine**:" in comment
    regressed = comment_section(comment, "Regressions")
    assert any(re.match(r"\| `file_ingest\.\w+Module\.", row) for row in regressed), comment


@pytest.mark.e2e
@pytest.mark.timeout(1800)
def test_phase2_change_is_not_a_regression(standin_repo, premerge_env, tmp_path):
    """c3_current -> c4_phase2 declares concurrency/worker_strategy: those rows become measured."""
    repo, hashes = standin_repo
    proc = run_premerge("--repo", repo, hashes["c3_current"], hashes["c4_phase2"], "--json", tmp_path / "c.json",
                        "--", "--bench", FEWER, env=premerge_env)
    assert proc.returncode in (0, 1), proc.stderr
    entries = json.loads((tmp_path / "c.json").read_text())["entries"]
    modules = [e for e in entries if re.match(r"file_ingest\.DirectoryModule\.", e["benchmark"])
               and not e["benchmark"].endswith((".track_instructions", ".track_alloc_mb"))]  # one worker only: n/a at 5
    assert {e["category"] for e in modules if phase2(e)} == {"fixed"}  # n/a before, measured now
    assert not [e for e in modules if e["category"] in ("regressed", "failed") and phase2(e)]
    assert not [e for e in modules if e["category"] == "failed"]
    gated = [e for e in entries if e["category"] in ("regressed", "failed")]
    assert proc.returncode == (1 if gated else 0)
    assert "Now measured" in proc.stdout and proc.stdout.startswith("## stac-manager benchmarks")


@pytest.mark.e2e
@pytest.mark.timeout(1800)
def test_unbuildable_head_is_bad_input(standin_repo, premerge_env, tmp_path):
    _, hashes = standin_repo
    repo = clone(standin_repo, tmp_path / "sm", "c4_phase2")
    with open(repo / "pyproject.toml", "a") as fh:
        fh.write("this is [not toml\n")
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t.invalid",
                    "commit", "-qam", "broken"], check=True)
    proc = run_premerge("--repo", repo, hashes["c4_phase2"], "HEAD", "--quick", "--", "--bench", FEWER,
                        env=premerge_env)
    assert proc.returncode == 2 and proc.stdout == ""
    errors = [line for line in proc.stderr.splitlines() if line.startswith("premerge.py: error:")]
    assert errors == proc.stderr.splitlines()[-1:], proc.stderr  # one error line, the last (after progress)
    assert "could not build stac-manager at" in errors[0] and "TOML" in errors[0]


@pytest.mark.e2e
@pytest.mark.timeout(1800)
def test_working_tree(standin_repo, premerge_env, tmp_path):
    """c4_phase2 checked out, c5_slow's ingest.py as an uncommitted edit: the head is that tree."""
    _, hashes = standin_repo
    repo = clone(standin_repo, tmp_path / "sm", "c4_phase2")
    edited = "src/stac_manager/modules/ingest.py"
    shutil.copyfile(ROOT / "tests" / "standin" / "c5_slow" / edited, repo / edited)
    status = premerge.git(repo, "status", "--short")
    proc = run_premerge("--repo", repo, "--working-tree", hashes["c4_phase2"], "--quick", "--json",
                        tmp_path / "c.json", "--", "--bench", FEWER, env=premerge_env)
    assert proc.returncode in (0, 1), proc.stderr
    assert f"the **working tree** of `{repo}` (1 changed file in `git status --short`)" in proc.stdout
    assert f"on top of `{hashes['c4_phase2'][:8]}`" in proc.stdout
    data = json.loads((tmp_path / "c.json").read_text())
    results = workdir(premerge_env) / "results"
    machine = data["base"]["machine"]
    assert data["head"]["machine"] == f"{machine}-worktree" and data["head"]["env"].startswith("existing-")
    assert [p.name for p in (results / machine).glob("*-*.json")] == [Path(data["base"]["file"]).name]
    installed = list((workdir(premerge_env) / "worktree-venv").rglob("site-packages/stac_manager/modules/ingest.py"))
    assert len(installed) == 1 and "_twice_as_slow" in installed[0].read_text()  # the edit, not the commit
    assert premerge.git(repo, "status", "--short") == status  # the checkout is left as it was


def test_gatecheck_tally():
    """tools.gatecheck's table: false alarms on the same commit, catches on the slow one."""
    def entry(name, ratio, category="unchanged", role=None, better="lower"):
        return {"benchmark": name, "params": "n_items=60", "ratio": ratio, "category": category,
                "role": role, "better": better}

    entries = [entry("s.XModule.time_run", 1.7, "regressed"), entry("s.Control.time_run", 0.5, role="control"),
               entry("s.XModule.track_throughput", 0.25, better="higher"), entry("s.XModule.track_mem_mb", 9.0)]
    assert gatecheck.worst_subject(entries, "time") == 1.7
    assert gatecheck.worst_subject(entries, "throughput") == 4.0
    drift = {"time": {"drift": 1.2, "rows": 1}, "throughput": None, "memory": None}
    counted = entry("s.XModule.track_instructions", 1.054, "regressed")
    assert gatecheck.repeating(counted) and not gatecheck.repeating(entries[0])
    assert not gatecheck.repeating(entry("s.Control.track_alloc_mb", 1.2, "control", role="control"))
    rows = [{"pair": pair, "run": 1, "exit": code, "minutes": 1.0, "drift": drift, "failed": [],
             "regressed": [e for e in entries if e["category"] == "regressed"] if code else [],
             "counted": [counted] if code else [], "worst_counted": 1.054 if code else 1.0002,
             "worst": {"time": 1.7, "throughput": None}} for pair, code in (("same", 0), ("slow", 1))]
    args = gatecheck.parse_args(["--repo", "x", "a", "b", "--runs", "1", "--hog", "2"])
    text, ok = gatecheck.render(args, rows, {"same": "aaaa", "slow": "bbbb"})
    assert ok and "false alarms** (same commit, gate failed): 0/1" in text and "caught" in text and "1/1" in text
    assert "| same | 1 | 0 | 0 | 0 | 0 | 1.0002 | 1.20x (1) | — | — | 1.70x | — | 1.0 | — |" in text
    rows[1]["load"] = 3.14
    assert "| slow | 1 | 1 | 1 | 0 | 1 | 1.0540 | 1.20x (1) | — | — | 1.70x | — | 1.0 | 3.1 |" in \
        gatecheck.render(args, rows, {"same": "aaaa", "slow": "bbbb"})[0]
    assert "2 busy processes beside every run" in text
    assert "alone**: false alarms 0/1, caught 1/1; caught rows: `s.XModule.track_instructions` (n_items=60)" in text
    rows[0].update(exit=1, regressed=rows[1]["regressed"])
    text, ok = gatecheck.render(args, rows, {"same": "aaaa", "slow": "bbbb"})
    assert not ok and "1/1 (must be 0)" in text and "same run 1 flagged: `s.XModule.time_run`" in text

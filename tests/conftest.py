"""Shared fixtures: the stand-in stac-manager repository and one real asv run over it."""

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

#: What the tests and the end-to-end asv run export to the benchmarks: tiny data, two
#: worker counts, no instruction counts (a valgrind pass a commit: tests that count turn them on).  Set before ``benchmarks`` is imported (it reads them at import).
E2E_ENV = {"STAC_BENCH_SCALE": "tiny", "STAC_BENCH_CONCURRENCY": "1,5", "STAC_BENCH_LATENCY": "0",
           "STAC_BENCH_COUNTS": "0", "STAC_BENCH_COUNT_ITEMS": "30"}
#: The end-to-end run uses the README's own commands (tools/bench.py): the full profile on the
#: newest commit, then the history profile over every commit (which must keep the full run's
#: numbers), one measurement each (--quick).
os.environ.update(E2E_ENV)

ROOT = Path(__file__).resolve().parents[1]
# The tools are a package run as ``python -m tools.<name>`` from the project's root; the tests'
# subprocesses find it wherever they run.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))



def tool(name):
    """The command line of ``tools/<name>.py`` (the package ``tools``, found through PYTHONPATH)."""
    return [sys.executable, "-m", f"tools.{name}"]


import api_env  # noqa: E402
import standin  # noqa: E402
from benchmarks.lib import datacache  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def bench_data_dir(tmp_path_factory):
    """Every test (and the asv run) writes generated datasets below one temporary cache."""
    path = tmp_path_factory.mktemp("bench-data")
    os.environ["STAC_BENCH_DATA_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def standin_repo(tmp_path_factory):
    """The stand-in's git repository: ``(path, {label: commit hash})``."""
    path = tmp_path_factory.mktemp("standin") / "stac-manager"
    return path, standin.make_repo(path)


@pytest.fixture
def standin_at(standin_repo, tmp_path, monkeypatch):
    """Import the stand-in's ``stac_manager`` as of commit ``label`` (a function)."""
    repo, hashes = standin_repo

    def checkout(label):
        work = tmp_path / f"src-{label}"
        subprocess.run(["git", "clone", "-q", str(repo), str(work)], check=True)
        subprocess.run(["git", "-C", str(work), "checkout", "-q", hashes[label]], check=True)
        _forget_stac_manager()
        monkeypatch.syspath_prepend(str(work / "src"))
        return hashes[label]

    yield checkout
    _forget_stac_manager()


def _forget_stac_manager():
    for name in [m for m in sys.modules if m == "stac_manager" or m.startswith("stac_manager.")]:
        del sys.modules[name]


def asv_conf(**overrides):
    """The project's asv.conf.json (comments stripped) with ``overrides``."""
    text = re.sub(r"^\s*//.*$", "", (ROOT / "asv.conf.json").read_text(), flags=re.M)
    conf = json.loads(text)
    conf.update(overrides)
    return conf


@pytest.fixture(scope="session")
def asv_run(tmp_path_factory, standin_repo, bench_data_dir):
    """Run real ``asv run`` (virtualenv, git, every suite) over all stand-in commits, then publish."""
    repo, hashes = standin_repo
    work = tmp_path_factory.mktemp("asv")
    conf = asv_conf(repo=str(repo), branches=["main"], benchmark_dir=str(ROOT / "benchmarks"),
                    env_dir=str(work / "env"), results_dir=str(work / "results"),
                    html_dir=str(work / "html"))
    (work / "asv.conf.json").write_text(json.dumps(conf, indent=2))
    shutil.copy(ROOT / "constraints.txt", work / "constraints.txt")
    # asv finds "python3.12" on PATH: the venv running the tests has one.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = dict(os.environ, **E2E_ENV, HOME=str(work / "home"), PATH=path,
               PIP_CACHE_DIR=os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")))
    asv = [sys.executable, "-m", "asv"]
    log = work / "asv-run.log"

    def run(*args):
        with open(log, "a") as fh:
            fh.write(f"\n$ asv {' '.join(args)}\n")
            fh.flush()
            return subprocess.run([*asv, *args], cwd=work, env=env, stdout=fh, stderr=subprocess.STDOUT)

    run("machine", "--yes", "--machine", "e2e")

    def profile(name, commits):
        with open(log, "a") as fh:
            fh.write(f"\n$ python -m tools.bench {name} {commits}\n")
            fh.flush()
            return subprocess.run([*tool("bench"), name, commits,
                                   "--config", "asv.conf.json", "--machine", "e2e", "--no-report", "--",
                                   "--quick", "--show-stderr"],
                                  cwd=work, env=env, stdout=fh, stderr=subprocess.STDOUT)

    # Every benchmark on the newest commit, then the history profile over every commit.
    head = profile("full", "main^!")
    head_results = read_results(work / "results", hashes[standin.COMMITS[-1]])
    history = profile("history", "main")
    publish = run("publish")
    return {"dir": work, "results": work / "results", "html": work / "html", "hashes": hashes,
            "returncode": max(history.returncode, head.returncode), "publish_returncode": publish.returncode,
            "log": log, "env": env, "head_after_full": head_results}


def read_results(results_dir, commit):
    """``{benchmark: {param tuple: value}}`` for one commit (asv results v2, NaN kept as nan)."""
    files = list(Path(results_dir).glob(f"*/{commit[:8]}-*.json"))
    assert len(files) == 1, f"expected one result file for {commit[:8]}, found {files}"
    data = json.loads(files[0].read_text())
    cols = data["result_columns"]
    out = {}
    for name, row in data["results"].items():
        cells = dict(zip(cols, row + [None] * (len(cols) - len(row)), strict=True))
        combos = list(itertools.product(*cells["params"])) or [()]
        values = cells["result"] if cells["result"] is not None else [None] * len(combos)
        out[name] = dict(zip(combos, values, strict=False))
    return out


# --- the API suite's tests: one small dataset and one STAC API server per module -----------------

@pytest.fixture(scope="module")
def api_dataset(tmp_path_factory):
    if "STAC_BENCH_DATA_DIR" not in os.environ:
        os.environ["STAC_BENCH_DATA_DIR"] = str(tmp_path_factory.mktemp("data"))
    return datacache.ensure_dataset(api_env.N)


@pytest.fixture(scope="module")
def api(api_dataset):
    with api_env.new_api(api_dataset) as server:
        yield server


@pytest.fixture
def clean(api):
    api.configure(latency_ms=0, jitter=0.2, fault=None, fault_rate=0.0, fault_match=None, fault_limit=None,
                  retry_after=0, cache=True, reset_stats=True)
    return api

"""The linters the project keeps clean: ruff (pyflakes, bugbear, isort; rules in pyproject.toml) over
the code, actionlint over the GitHub workflows (.github/workflows)."""

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def test_ruff_finds_nothing_in_the_suite_the_tools_and_the_tests():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "benchmarks", "tools", "tests"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_actionlint_finds_nothing_in_the_workflows():
    exe = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
    assert exe, "actionlint is not installed: bash tools/setup.sh (the test extras of pyproject.toml)"
    workflows = sorted(str(p.relative_to(ROOT)) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    assert ".github/workflows/history.yml" in workflows and ".github/workflows/premerge.yml" in workflows
    proc = subprocess.run([exe, "-no-color", *workflows], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]

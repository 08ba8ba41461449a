"""The linter the project keeps clean: ruff (pyflakes, bugbear, isort; rules in pyproject.toml)."""

import subprocess
import sys

from conftest import ROOT


def test_ruff_finds_nothing_in_the_suite_the_tools_and_the_tests():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "benchmarks", "tools", "tests"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]

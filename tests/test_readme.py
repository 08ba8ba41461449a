"""The README's sample outputs are the output of their commands on the committed results."""

import subprocess
import sys

from conftest import ROOT


def test_readme_samples_are_regenerated_not_pasted():
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "readme.py"), "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "generated blocks up to date" in proc.stdout


def test_readme_check_catches_a_hand_edit(tmp_path):
    text = (ROOT / "README.md").read_text()
    start = text.index("<!-- generated: python tools/budget.py")
    body = text.index("-->", start) + len("-->\n")
    edited = tmp_path / "README.md"
    edited.write_text(text[:body] + "| pasted by hand |\n" + text[body:])
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "readme.py"), "--check", "--file", str(edited)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1 and "out of date" in proc.stderr

"""The README and docs/: their sample outputs are the output of their commands on the committed
results, every relative link resolves, and the README stays one screenful a section."""

import re
import subprocess
import sys

import pytest

from conftest import ROOT
from tools import readme


def check(*files):
    argv = [sys.executable, str(ROOT / "tools" / "readme.py"), "--check"]
    for path in files:
        argv += ["--file", str(path)]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_samples_are_regenerated_not_pasted():
    proc = check()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "generated blocks up to date" in proc.stdout
    # the blocks that left the README are still checked where they live now
    for name in ("README.md", "docs/profiles.md", "docs/history.md", "docs/report.md"):
        assert name in proc.stdout


def test_every_generated_block_is_checked_wherever_it_lives():
    files = readme.default_files()
    with_blocks = {p.relative_to(ROOT).as_posix() for p in files if readme.BLOCK.search(p.read_text())}
    assert {"README.md", "docs/profiles.md", "docs/history.md", "docs/report.md"} <= with_blocks
    on_disk = {p.relative_to(ROOT).as_posix() for p in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
               if readme.BLOCK.search(p.read_text())}
    assert on_disk <= with_blocks, f"generated blocks that --check never reads: {on_disk - with_blocks}"


@pytest.mark.parametrize("name,command", [("README.md", "python -m tools.report"),
                                          ("docs/profiles.md", "python -m tools.budget")])
def test_check_catches_a_hand_edit(tmp_path, name, command):
    text = (ROOT / name).read_text()
    start = text.index(f"<!-- generated: {command}")
    body = text.index("-->", start) + len("-->\n")
    edited = tmp_path / "edited.md"
    edited.write_text(text[:body] + "| pasted by hand |\n" + text[body:])
    proc = check(edited)
    assert proc.returncode == 1 and "out of date" in proc.stderr


def test_every_relative_link_resolves():
    broken = {p.relative_to(ROOT).as_posix(): readme.broken_links(p) for p in readme.default_files()}
    assert not {name: links for name, links in broken.items() if links}
    # and the check looks at something: the README links every doc it moved its sections to
    text = (ROOT / "README.md").read_text()
    for doc in ("profiles", "history", "gate", "report", "suite", "offline"):
        assert f"](docs/{doc}.md)" in text


def test_broken_links_finds_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\n## The knobs (`env`)\n")
    page = tmp_path / "README.md"
    page.write_text("[ok](docs/a.md) [ok](docs/a.md#the-knobs-env) ![ok](docs/a.md) [web](https://x.org/y)\n"
                    "[self](#top) [gone](docs/b.md) [bad anchor](docs/a.md#knobs)\n\n# Top\n\n"
                    "```\n[in code](nowhere.md)\n```\n")
    assert readme.broken_links(page) == ["docs/b.md (no such file)", "docs/a.md#knobs (no such heading)"]
    proc = check(page)
    assert proc.returncode == 1 and "broken link" in proc.stderr and "docs/b.md" in proc.stderr


def test_readme_is_one_screenful_a_section():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 220
    headings = re.findall(r"^## (.+)$", text, re.M)
    for wanted in ("Two commands", "Add a strategy", "Add a source", "Add a scenario"):
        assert wanted in headings
    # the two commands, exactly as a newcomer types them
    assert "bash tools/setup.sh && .venv/bin/python -m tools.bench full main^!\n" in text
    assert "bash tools/setup.sh && .venv/bin/python -m pytest\n" in text
    # no commit hash a newcomer has to read (a generated block's command may name one)
    prose = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    assert not re.findall(r"\b[0-9a-f]{7,40}\b", prose)

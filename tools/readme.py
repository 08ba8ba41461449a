"""Regenerate the sample outputs of README.md and docs/*.md from the commands that make them.

    python -m tools.readme            # rewrite every generated block of README.md and docs/*.md
    python -m tools.readme --check    # exit 1 if a block differs from its command's output,
                                      # or a relative link points at no file (or no heading)

A generated block is::

    <!-- generated: python -m tools.report --results results ... -->
    ...the command's standard output...
    <!-- end generated -->

The command runs from the repository root with this interpreter (``python`` is replaced by
``sys.executable``); only ``python -m tools.<name>`` commands are allowed, and they read committed
results, so the blocks are reproducible on a fresh clone with no benchmark run.  A command may
end in ``| between "A" "B"``: only its lines from the first one starting with ``A`` up to the
next one starting with ``B`` (excluded) are kept.  A command that names ``--repo DIR`` needs
that git checkout (for commit subjects): ``--check`` skips its block where DIR is absent.
``--file`` (repeatable) limits the run to the files named.
"""

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- generated: (?P<cmd>.+?) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)
#: ``[text](target)`` and ``![alt](target)``, with an optional ``"title"``.
LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def default_files():
    """The README and every Markdown file of docs/ (a file without blocks is only link-checked)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def run(cmd):
    cmd, _, cut = cmd.partition(" | between ")
    argv = shlex.split(cmd)
    if argv[:2] != ["python", "-m"] or not argv[2].startswith("tools."):
        raise SystemExit(f"readme.py: refusing to run {cmd!r}: only `python -m tools.<name>` commands")
    proc = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=600)
    if proc.returncode not in (0, 1):  # the gate exits 1 on a regression: still a sample
        raise SystemExit(f"readme.py: {cmd!r} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    out = proc.stdout.rstrip("\n") + "\n"
    return between(out, *shlex.split(cut)) if cut else out


def between(text, start, end):
    lines, keep = [], False
    for line in text.splitlines(keepends=True):
        if keep and line.startswith(end):
            break
        keep = keep or line.startswith(start)
        if keep:
            lines.append(line)
    if not lines:
        raise SystemExit(f"readme.py: no line starts with {start!r}")
    return "".join(lines).rstrip("\n") + "\n"


def needs_missing_repo(cmd):
    argv = shlex.split(cmd.partition(" | between ")[0])
    return "--repo" in argv and not (ROOT / argv[argv.index("--repo") + 1]).is_dir()


def regenerate(text, keep_unrunnable=False):
    def replace(match):
        if keep_unrunnable and needs_missing_repo(match.group("cmd")):
            print(f"readme.py: skipped (no checkout): {match.group('cmd')}", file=sys.stderr)
            return match.group(0)
        return match.group(1) + run(match.group("cmd")) + match.group(4)
    return BLOCK.sub(replace, text)


def _prose_lines(text):
    """The lines of ``text`` outside fenced code blocks."""
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            yield line


def anchors(text):
    """GitHub's heading anchors of a Markdown text (lower case, punctuation dropped, spaces to -)."""
    seen, found = {}, set()
    for line in _prose_lines(text):
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(path):
    """Every relative link of the Markdown file ``path`` whose file (or heading) does not exist."""
    path = Path(path)
    text = path.read_text()
    broken = []
    for line in _prose_lines(text):
        for match in LINK.finditer(line):
            target = match.group("target")
            if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
                continue
            rel, _, fragment = target.partition("#")
            dest = (path.parent / rel).resolve() if rel else path
            if not dest.exists():
                broken.append(f"{target} (no such file)")
            elif fragment and dest.suffix == ".md" and fragment not in anchors(dest.read_text()):
                broken.append(f"{target} (no such heading)")
    return broken


def _name(path):
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.readme", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a file is out of date or has a broken relative link")
    parser.add_argument("--file", action="append", help="a Markdown file (default: README.md and docs/*.md)")
    args = parser.parse_args(argv)
    paths = [Path(f) for f in args.file] if args.file else default_files()
    blocks, stale, broken = 0, [], []
    for path in paths:
        old = path.read_text()
        blocks += len(BLOCK.findall(old))
        new = regenerate(old, keep_unrunnable=args.check)
        if not args.check:
            if new != old:
                path.write_text(new)
            continue
        if new != old:
            stale.append(_name(path))
        broken += [f"{_name(path)}: {link}" for link in broken_links(path)]
    names = ", ".join(_name(p) for p in paths)
    if not args.check:
        print(f"readme.py: {names}: {blocks} generated blocks written")
        return 0
    for name in stale:
        print(f"readme.py: {name} is out of date: run python -m tools.readme", file=sys.stderr)
    for link in broken:
        print(f"readme.py: broken link in {link}", file=sys.stderr)
    if stale or broken:
        return 1
    print(f"readme.py: {names}: {blocks} generated blocks up to date, every relative link resolves")
    return 0


if __name__ == "__main__":
    sys.exit(main())

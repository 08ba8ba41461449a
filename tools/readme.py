#!/usr/bin/env python
"""Regenerate the README's sample outputs from the commands that make them (never by hand).

    python tools/readme.py            # rewrite every generated block of README.md
    python tools/readme.py --check    # exit 1 if a block differs from its command's output

A generated block is::

    <!-- generated: python tools/report.py --results results ... -->
    ...the command's standard output...
    <!-- end generated -->

The command runs from the repository root with this interpreter (``python`` is replaced by
``sys.executable``); only ``python tools/...`` commands are allowed, and they read committed
results, so the blocks are reproducible on a fresh clone with no benchmark run.  A command may
end in ``| between "A" "B"``: only its lines from the first one starting with ``A`` up to the
next one starting with ``B`` (excluded) are kept.  A command that names ``--repo DIR`` needs
that git checkout (for commit subjects): ``--check`` skips its block where DIR is absent.
"""

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- generated: (?P<cmd>.+?) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)


def run(cmd):
    cmd, _, cut = cmd.partition(" | between ")
    argv = shlex.split(cmd)
    if argv[:1] != ["python"] or not argv[1].startswith("tools/"):
        raise SystemExit(f"readme.py: refusing to run {cmd!r}: only `python tools/...` commands")
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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tools/readme.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is out of date")
    parser.add_argument("--file", default=str(ROOT / "README.md"))
    args = parser.parse_args(argv)
    path = Path(args.file)
    old = path.read_text()
    new = regenerate(old, keep_unrunnable=args.check)
    if args.check:
        if new != old:
            print(f"readme.py: {path.name} is out of date: run python tools/readme.py", file=sys.stderr)
            return 1
        print(f"readme.py: {path.name}: {len(BLOCK.findall(old))} generated blocks up to date")
        return 0
    path.write_text(new)
    print(f"readme.py: {path.name}: {len(BLOCK.findall(new))} generated blocks written")
    return 0


if __name__ == "__main__":
    sys.exit(main())

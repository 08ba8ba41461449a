#!/usr/bin/env bash
# Create .venv with Python 3.12 and install the harness (asv, the pinned stack) and its tests.
# Python 3.12 is looked up on PATH, then in pyenv (`pyenv root`), then in ~/.pyenv.
set -euo pipefail
cd "$(dirname "$0")/.."
py=""
for candidate in "${PYTHON:-}" python3.12 \
        $(ls -d "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.12*/bin/python 2>/dev/null | sort -V -r); do
    if [ -n "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
        py=$candidate
        break
    fi
done
if [ -z "$py" ]; then
    echo "setup.sh: no Python 3.12 found (PATH, pyenv); set PYTHON=/path/to/python3.12" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check '.[test]'
# Instruction counts (track_instructions) need valgrind with its headers and a C compiler: Debian's
# packages where this is root on Debian; elsewhere the rows are n/a and the reason is said here.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
        ! { command -v valgrind >/dev/null 2>&1 && [ -f /usr/include/valgrind/callgrind.h ]; }; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind gcc >/dev/null || true
fi
.venv/bin/python -c 'from benchmarks.lib import instructions as i; r = i.unavailable(); r and print(f"setup.sh: instruction counts n/a here: {r}")' >&2
echo "setup.sh: .venv ready ($(.venv/bin/python --version), asv $(.venv/bin/asv --version 2>&1 | awk '{print $NF}'))"

"""Checks of the input every command shares, made before any work (one-line ``ReportError``s).

``parse_factor``   a gate factor: a finite number > 1 (report.py and premerge.py alike; the gate's
                   ``check_factor`` is the same rule for a number)
``check_output``   a file to write: its folder exists and is writable, it is not a folder
``check_git_repo`` a ``--repo`` that is a git repository
``host_machine``   this host's asv machine (~/.asv-machine.json), as asv itself picks it
``check_known``    every suite of the results read has entries in benchmarks.json
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess

from .errors import ReportError

MACHINE_FILE = os.path.join("~", ".asv-machine.json")


def check_factor(factor) -> float:
    """The factor must be a finite number > 1 (NaN would compare false and pass anything)."""
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) \
            or factor <= 1:
        raise ReportError(f"--factor must be a finite number > 1 (got {factor!r})")
    return float(factor)


def parse_factor(text, flag: str = "--factor") -> float:
    """A gate factor from the command line: a finite number > 1, else bad input."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ReportError(f"{flag} must be a finite number > 1 (got {text!r})") from None
    try:
        return check_factor(value)
    except ReportError:
        raise ReportError(f"{flag} must be a finite number > 1 (got {text!r})") from None


def check_output(path: str | None, flag: str):
    """Bad input unless ``path`` can be written: an existing, writable folder, not a folder itself."""
    if path is None or path == "-":
        return
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ReportError(f"{flag} {path} is a folder: give a file name")
    if not os.path.isdir(folder):
        raise ReportError(f"{flag} {path}: no folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise ReportError(f"{flag} {path}: not writable")


def check_git_repo(path: str | None):
    """Bad input unless ``path`` (``--repo``) is a git repository."""
    if path is None:
        return
    if not os.path.isdir(path):
        raise ReportError(f"--repo {path}: no such folder")
    try:
        proc = subprocess.run(["git", "-C", path, "rev-parse", "--git-dir"], capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ReportError(f"cannot run git: {exc}") from None
    if proc.returncode != 0:
        raise ReportError(f"--repo {path} is not a git repository")


def host_machine() -> str | None:
    """This host's asv machine name, as ``asv run`` picks it without ``--machine``: the entry of
    ~/.asv-machine.json named after the host, else its only entry; None if there is none."""
    try:
        with open(os.path.expanduser(MACHINE_FILE), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    known = {k: v for k, v in data.items() if isinstance(v, dict)}
    key = platform.node() if platform.node() in known else (next(iter(known)) if len(known) == 1 else None)
    if key is None:
        return None
    name = known[key].get("machine")
    return name if isinstance(name, str) and name else key


def check_known(files: list, benchmarks: dict, results_dir: str):
    """Bad input when a suite (module) of ``files``' rows has no entry at all in benchmarks.json.

    Without its entries the parameter names are unknown: the gate would judge the harness rows
    (the controls) as stac-manager's, and the steps would leave the suite out.  A single benchmark
    missing from a known suite is one removed from it (its results are ignored, and said so)."""
    known = {name.split(".")[0] for name in benchmarks}
    for rf in files:
        unknown = sorted(name for name in rf.rows if name.split(".")[0] not in known)
        if unknown:
            suite = unknown[0].split(".")[0]
            count = sum(n.split(".")[0] == suite for n in unknown)
            raise ReportError(
                f"benchmarks.json in {results_dir} has no entry for suite {suite!r} ({count} benchmark(s) "
                f"of {os.path.basename(rf.path)}, e.g. {unknown[0]}): it is incomplete; run "
                "`asv run --bench just-discover` (or, for a suite removed from the project, `asv rm` its results)")

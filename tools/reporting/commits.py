"""What git says of a results file's commit: a name's hash, its subject line, a branch's commits.

Every call is bounded in time and says no (None, or a ReportError naming the cause) rather than
raising; ``results`` resolves commit names through it, ``history`` and ``level_shifts`` read it.
"""

from __future__ import annotations

import subprocess

from .errors import ReportError


def git_rev_parse(repo: str, name: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", repo, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"],
            capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def git_subject(repo: str | None, commit: str) -> str | None:
    """The subject line of ``commit`` in ``repo`` (``git log -1 --format=%s``), or None."""
    if repo is None:
        return None
    try:
        out = subprocess.run(["git", "-C", repo, "log", "-1", "--format=%s", commit, "--"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def branch_commits(repo: str | None, branch: str) -> set:
    if repo is None:
        raise ReportError("--branch needs a git repository: pass --repo or --config with a local repo")
    try:
        out = subprocess.run(["git", "-C", repo, "rev-list", branch, "--"], capture_output=True,
                             text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ReportError(f"cannot run git: {exc}") from None
    if out.returncode != 0:
        raise ReportError(f"unknown branch {branch!r} in {repo}")
    return set(out.stdout.split())

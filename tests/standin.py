"""Build the stand-in stac-manager's throwaway git repository (see tests/standin/README.md)."""

import shutil
import subprocess
from pathlib import Path

OVERLAYS = Path(__file__).with_name("standin")
COMMITS = ["c1_no_ingest", "c2_old_context", "c3_current", "c4_phase2", "c5_slow"]
#: Commits on side branches, never on ``main`` (asv's history runs ``main``): ``label: (branch, parent)``.
SIDE = {"c6_5pct": ("five-percent", "c4_phase2")}


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def make_repo(repo, upto=None):
    """Create ``repo`` with one commit per overlay (the first ``upto``) on branch ``main``; return
    {label: hash}."""
    upto = len(COMMITS) if upto is None else upto
    repo = Path(repo)
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "bench@example.invalid")
    git(repo, "config", "user.name", "stac-manager-benchmarks tests")
    hashes = {label: _commit(repo, label) for label in COMMITS[:upto]}
    for label, (branch, parent) in SIDE.items():
        if parent in hashes:
            git(repo, "checkout", "-q", "-b", branch, hashes[parent])
            hashes[label] = _commit(repo, label)
            git(repo, "checkout", "-q", "main")
    return hashes


def _commit(repo, label):
    """Apply overlay ``label`` to the checkout and commit it; return the hash."""
    overlay = OVERLAYS / label
    delete = overlay / "DELETE"
    for rel in delete.read_text().split() if delete.exists() else []:
        (repo / rel).unlink()
    for src in overlay.rglob("*"):
        if src.is_file() and src.name != "DELETE" and "__pycache__" not in src.parts:
            dest = repo / src.relative_to(overlay)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", label)
    return git(repo, "rev-parse", "HEAD")

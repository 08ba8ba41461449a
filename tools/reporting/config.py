"""Where the results are: asv.conf.json read by asv itself.

asv's ``Config.load`` strips the // and /* */ comments and trailing commas (json5),
checks the config's ``version`` and ``repo``, and fills asv's defaults (so a config
without ``results_dir`` means ``results``, as for ``asv run``).  Only its errors are
translated into one-line ``ReportError`` messages here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from asv import config as asv_config
from asv import util as asv_util

from .errors import ReportError

#: Results directory when there is neither --results nor an asv.conf.json (this suite's).
DEFAULT_RESULTS_DIR = ".asv/results"


@dataclass
class Config:
    results_dir: str
    repo: str | None = None  # local git directory usable for name -> hash resolution
    branches: list = field(default_factory=list)


def read_asv_config(path: str):
    """asv's own Config object for ``path``; any failure is one ReportError line."""
    if not os.path.exists(path):
        raise ReportError(f"asv config not found: {path}")
    try:
        return asv_config.Config.load(path)
    except asv_util.UserError as exc:
        raise ReportError(f"bad asv config {path}: {exc}") from None
    except OSError as exc:
        raise ReportError(f"cannot read asv config {path}: {exc.strerror}") from None
    except (ValueError, TypeError, AttributeError) as exc:  # json5 syntax errors, not an object
        raise ReportError(f"corrupt asv config {path}: {exc}") from None


def _local_repo(conf, base: str, override: str | None) -> str | None:
    """A git directory to resolve names in: --repo, a local `repo`, or asv's clone of a URL."""
    if override is not None:
        return override
    repo = getattr(conf, "repo", None)
    if isinstance(repo, str) and "://" not in repo and not repo.startswith("git@"):
        git_dir = os.path.join(base, repo)
    elif getattr(conf, "project", None):
        git_dir = os.path.join(base, conf.project)  # asv clones URL repos into <config dir>/<project>
    else:
        return None
    return git_dir if os.path.exists(git_dir) else None


def load_config(path: str | None, results: str | None, repo: str | None) -> Config:
    if path is None and results is None and os.path.isfile("asv.conf.json"):
        path = "asv.conf.json"
    if path is None:
        return Config(results_dir=results or os.path.join(os.getcwd(), DEFAULT_RESULTS_DIR), repo=repo)
    conf = read_asv_config(path)
    base = os.path.dirname(os.path.abspath(path))
    results_dir = results or os.path.join(base, conf.results_dir)
    branches = [b for b in (getattr(conf, "branches", None) or []) if b]
    return Config(results_dir=results_dir, repo=_local_repo(conf, base, repo), branches=branches)

"""The verified dataset cache: a manifest of what was written, checked before use, healed on mismatch.

``ensure_dataset(n)`` returns ``<data_root>/n<n>`` only once it matches its manifest
(``dataset.json``): the exact file list an ``n``-item dataset must hold (so a manifest that
lies about ``n`` or a missing/extra file is caught), every file's size, and every file's
digest.  At 10,000 items (343 MB, 30,000 files) the full check takes about 3 s on the suite's
2-core machine under load (0.6 s for sizes alone); ``setup_cache`` pays it once per
environment and commit, and each benchmark's ``setup`` re-checks the sizes of the source it
reads (``check_source``).

On any mismatch the dataset is regenerated into a temporary folder and swapped in with two
renames, under an ``flock`` (one generator per dataset; the lock dies with its process).
Temporary folders (``.tmp-<pid>-*``, ``.old-<pid>-*``) whose process is dead, or older than
``STALE_SECONDS``, are removed: a killed generation never blocks the next one.

The cache lives in ``settings.cache_dir()`` (``STAC_BENCH_DATA_DIR``), one folder per
``itemgen.GENERATOR_VERSION``, shared by all asv environments.
"""

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from . import sources
from .itemgen import (
    DIGEST_SIZE,
    GENERATOR_VERSION,
    SEED,
    item_digest,
    make_items,
    malformed_files,
    native_digest,
)
from .settings import cache_dir

MANIFEST = "dataset.json"
#: Two 16-byte digests per item of its JSON, canonical and in generated key order: what every
#: check of a source's items compares against.
DIGESTS = "digests.bin"
#: Temporary folders of a generation older than this are abandoned, whatever their pid says.
STALE_SECONDS = 30 * 60


class DatasetError(RuntimeError):
    """A dataset on disk does not match its manifest."""


def expected_files(n):
    """Every file an ``n``-item dataset holds (paths relative to its root, manifest aside)."""
    return sources.source_files(n) | {DIGESTS}


def write_dataset(root, n):
    """Write every source of an ``n``-item dataset below ``root``, its digests and its manifest."""
    root = Path(root)
    items = make_items(n)
    sources.write_sources(items, root)
    (root / DIGESTS).write_bytes(b"".join(item_digest(item) + native_digest(item) for item in items))
    write_manifest(root, n)
    return root


def read_digests(root):
    """The per-item digests stored with a dataset: ``(canonical, native)`` per item, index = item number."""
    data = (Path(root) / DIGESTS).read_bytes()
    step = 2 * DIGEST_SIZE
    return [(data[k:k + DIGEST_SIZE], data[k + DIGEST_SIZE:k + step]) for k in range(0, len(data), step)]


def _file_digest(path):
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, lambda: hashlib.blake2b(digest_size=DIGEST_SIZE)).hexdigest()


def _scan(root):
    """``{relative path: size}`` of every file below ``root`` but the manifest."""
    found = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            if rel != MANIFEST:
                found[rel] = os.stat(path).st_size
    return found


def write_manifest(root, n):
    root = Path(root)
    files = {rel: [size, _file_digest(root / rel)] for rel, size in sorted(_scan(root).items())}
    body = {"n_items": n, "seed": SEED, "generator_version": GENERATOR_VERSION,
            "bad_files": {f"malformed/{k}": v for k, v in malformed_files(n).items()}, "files": files}
    (root / MANIFEST).write_bytes(json.dumps(body, indent=1, sort_keys=True).encode())


def read_manifest(root):
    """The manifest of the dataset at ``root``; raises DatasetError if missing or unreadable."""
    try:
        body = json.loads((Path(root) / MANIFEST).read_bytes())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{root}: no readable {MANIFEST} ({exc})") from exc
    if not isinstance(body, dict):
        raise DatasetError(f"{root}: {MANIFEST} is not a JSON object")
    return body


def verify(root, n, deep=True):
    """Raise DatasetError unless ``root`` holds exactly the ``n``-item dataset of this generator.

    Checks the manifest against what an ``n``-item dataset must hold, then every file's
    size, and (``deep``) every file's digest.
    """
    body = read_manifest(root)
    want = {"n_items": n, "seed": SEED, "generator_version": GENERATOR_VERSION}
    got = {k: body.get(k) for k in want}
    if got != want:
        raise DatasetError(f"{root}: manifest says {got}, expected {want}")
    files = body.get("files", {})
    if set(files) != expected_files(n):
        raise DatasetError(f"{root}: manifest lists {len(files)} files, an {n}-item dataset has "
                           f"{len(expected_files(n))}")
    on_disk = _scan(root)
    lost, extra = sorted(set(files) - set(on_disk)), sorted(set(on_disk) - set(files))
    if lost or extra:
        raise DatasetError(f"{root}: {len(lost)} files missing {lost[:3]}, {len(extra)} unexpected {extra[:3]}")
    resized = sorted(rel for rel, (size, _) in files.items() if on_disk[rel] != size)
    if resized:
        raise DatasetError(f"{root}: {len(resized)} files changed size, e.g. {resized[:3]}")
    if deep:
        changed = sorted(rel for rel, (_, digest) in files.items() if _file_digest(Path(root) / rel) != digest)
        if changed:
            raise DatasetError(f"{root}: {len(changed)} files changed content, e.g. {changed[:3]}")
    return body


def source_sizes(root, source):
    """``{absolute path: size}`` of one source's files, from the manifest."""
    rel = sources.get(source).path
    files = read_manifest(root)["files"]
    return {str(Path(root) / p): size for p, (size, _) in files.items()
            if p == rel or p.startswith(rel + "/")}


def check_source(root, source):
    """Cheap check before a benchmark reads a source: each file still has its manifest size."""
    sizes = source_sizes(root, source)
    if not sizes:
        raise DatasetError(f"{root}: the manifest has no source {source!r}")
    for path, size in sizes.items():
        try:
            actual = os.stat(path).st_size
        except OSError as exc:
            raise DatasetError(f"{path}: {exc}") from exc
        if actual != size:
            raise DatasetError(f"{path}: {actual} bytes, the manifest says {size}")


# --- the cache ---------------------------------------------------------------------------------

def data_root():
    """The datasets of this generator version."""
    return cache_dir() / f"data-v{GENERATOR_VERSION}"


@contextmanager
def lock(path):
    """An exclusive lock on the file ``path`` (made if missing) while the block runs."""
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_abandoned(parent, now=None):
    """Remove temporary folders (``.tmp-<pid>-*``, ``.old-<pid>-*``) whose process is dead or that
    are older than ``STALE_SECONDS``; return their names."""
    now = time.time() if now is None else now
    removed = []
    for path in Path(parent).glob(".*-*"):
        kind, _, rest = path.name[1:].partition("-")
        pid = rest.split("-", 1)[0]
        if kind not in ("tmp", "old") or not pid.isdigit() or not path.is_dir():
            continue
        if not _pid_alive(int(pid)) or now - path.stat().st_mtime > STALE_SECONDS:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


def ensure_dataset(n):
    """Return the directory of the verified ``n``-item dataset, (re)generating it atomically."""
    final = data_root() / f"n{n}"
    try:
        verify(final, n)
        return final
    except DatasetError:
        pass
    final.parent.mkdir(parents=True, exist_ok=True)
    with lock(final.parent / f".n{n}.lock"):
        clean_abandoned(final.parent)
        try:  # another process may have regenerated it while we waited
            verify(final, n)
            return final
        except DatasetError:
            pass
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-n{n}-", dir=final.parent))
        try:
            write_dataset(tmp, n)
            if final.exists() or final.is_symlink():
                old = tempfile.mkdtemp(prefix=f".old-{os.getpid()}-n{n}-", dir=final.parent)
                os.rename(final, Path(old) / "dataset")
                shutil.rmtree(old, ignore_errors=True)
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final

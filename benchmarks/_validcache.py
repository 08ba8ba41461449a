"""The digests of the STAC documents found valid on this machine, kept beside the datasets.

Every asv benchmark is a fresh process.  The items an ingest yields are the generated ones,
validated once per commit in the process asv forks every benchmark from; but the documents
an output or pipeline run writes (links, layout) were validated again in each benchmark
process: a thousand schema passes, 1 to 3 s, inside the first timed sample and the memory
increment.  A document is now validated once per machine: its digest (``datagen.item_digest``
of the document, which names its ``stac_version``) goes to ``valid-<schemas>.bin`` under the
data cache, one file per set of vendored schemas, and every check reads what other processes
added since it last looked.  Only digests of documents that passed, and that may come again,
are written, each once; a file that cannot be read or written costs a validation, never a result.
"""

import fcntl
import functools
import hashlib
from pathlib import Path

from ._datacache import data_root
from .datagen import DIGEST_SIZE

#: The vendored STAC item schemas (``_checks`` validates against them).
SCHEMA_DIR = Path(__file__).with_name("schemas")


@functools.cache
def schema_stamp():
    """A digest of the vendored schema files (names and bytes): new schemas, a new file."""
    h = hashlib.sha256()
    for path in sorted(SCHEMA_DIR.rglob("*.json")):
        h.update(path.relative_to(SCHEMA_DIR).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def store_path():
    return data_root() / f"valid-{schema_stamp()}.bin"


class Store:
    """This process's view of the file: what it has read, and what it found valid since."""

    def __init__(self):
        self.path, self.offset, self.pending = None, 0, bytearray()

    def sync(self, valid):
        """Add to ``valid`` the digests written since the last ``sync`` (by any process)."""
        path = store_path()
        if path != self.path:
            self.path, self.offset = path, 0
        try:
            with open(path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return
        whole = len(data) - len(data) % DIGEST_SIZE
        valid.update(data[i:i + DIGEST_SIZE] for i in range(0, whole, DIGEST_SIZE))
        self.offset += whole

    def add(self, digest):
        """``digest`` passed the schema here: written at the next ``flush``."""
        self.pending += digest

    def flush(self):
        """Append what this process validated since the last flush, in one locked write."""
        pending, self.pending = bytes(self.pending), bytearray()
        if not pending:
            return
        path = store_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "ab") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                fh.write(pending)
        except OSError:
            pass  # the next process validates these again


STORE = Store()

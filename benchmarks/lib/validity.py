"""The digests of the STAC documents found valid on this machine, kept beside the datasets.

Every asv benchmark is a fresh process.  The items an ingest yields are the generated ones,
validated once per commit in the process asv forks every benchmark from; but the documents
an output or pipeline run writes (links, layout) were validated again in each benchmark
process: a thousand schema passes, 1 to 3 s, inside the first timed sample and the memory
increment.  A document is now validated once per machine: its digest (``itemgen.item_digest``
of the document, which names its ``stac_version``) goes to ``valid-<schemas>.bin`` under the
data cache, one file per set of vendored schemas, and every check reads what other processes
added since it last looked.  Only digests of documents that passed, and that may come again,
are written, each once; a file that cannot be read or written costs a validation, never a result.
"""

import fcntl
import functools
import hashlib
import re
from pathlib import Path

from .datacache import data_root
from .itemgen import DIGEST_SIZE

#: The vendored STAC item schemas (``checks`` validates against them).
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

#: Properties the vendored item schemas constrain only as a string ending ``Z`` or ``+00:00``
#: (``datetime.json``: type string, pattern ``(\+00:00|Z)$``, format date-time, which a
#: validator without a format checker does not assert; ``tests/test_checks.py`` holds the
#: schemas to that).  Any two such strings make a document valid or invalid alike.
STAND_IN_PROPS = ("created", "updated")
STAND_IN = "2000-01-01T00:00:00Z"
_UTC = re.compile(r"(\+00:00|Z)$")


def stand_in(doc, props):
    """``(doc', lasting)``: ``doc`` with each of its ``props`` that is a ``STAND_IN_PROPS``
    timestamp the schema accepts replaced by ``STAND_IN``, and whether ``doc'`` has none of
    ``props`` left as they were (a document that may come again, and can be kept)."""
    have = doc.get("properties") if isinstance(doc.get("properties"), dict) else {}
    swap = {k for k in props if k in have and k in STAND_IN_PROPS
            and isinstance(have[k], str) and _UTC.search(have[k])}
    if not swap:
        return doc, not any(k in have for k in props)
    out = {**doc, "properties": {k: STAND_IN if k in swap else v for k, v in have.items()}}
    return out, not any(k in have for k in props if k not in swap)

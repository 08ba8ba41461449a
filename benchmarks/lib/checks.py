"""The check every run passes: exactly the source's items, each equal to its source item and valid STAC.

``ItemCheck`` takes items as they stream by and keeps one byte per expected item:

* every item is compared with its source item through a digest of its canonical JSON
  (``itemgen.item_digest``), against the digests stored with the dataset or computed once
  per process for a projection (the output and pipeline suites compare ``SURVIVE`` keys);
* the count must be exactly ``n`` and every id ``0..n-1`` present (any order);
* every item is validated against the STAC 1.0.0 item JSON schema (vendored in
  ``benchmarks/schemas``, no network) once per process: ``prepare`` validates the
  generated items in ``setup``, outside the timed region, and an item whose canonical
  JSON equals one already validated in this process needs no second pass.  The validator
  is ``jsonschema-rs`` (compiled: about 0.01 ms an item, where ``jsonschema`` takes 1 to 26 ms),
  Draft 7 without format assertions, as ``jsonschema`` validated before it;
  ``tests/test_validator.py`` holds the two to the same verdicts.  A document that is not kept
  is validated inside a timed run (``PipelineModule.time_run``): by ``jsonschema`` still, which
  that history series has always timed.

``WriteThroughput`` is the throughput rule of the suites that time a write apart from its check.
"""

import datetime as dt
import functools
import json
import re

import jsonschema
import jsonschema_rs
from referencing import Registry, Resource

from .itemgen import (
    REQUIRED,
    canonical,
    item_digest,
    item_id,
    item_index,
    make_item,
    native_digest,
)
from .validity import SCHEMA_DIR, STORE, stand_in

#: ``"id": "<id>"`` in serialised JSON (the id of a blob without decoding it).
ID_PATTERN = re.compile(rb'"id":\s*"([^"]*)"')
#: Item properties holding RFC 3339 timestamps.
TIMESTAMPS = ("datetime", "start_datetime", "end_datetime", "created", "updated")


class ResultMismatch(AssertionError):
    """A strategy lost, duplicated or mangled items."""


def sample(n, k=16):
    """About ``k`` spread item numbers of ``0..n-1`` (first and last included)."""
    return sorted({0, n - 1, *range(0, n, max(1, n // k))}) if n else []


def _fail(label, msg):
    raise ResultMismatch(f"{label}: {msg}" if label else msg)


def check_ids(ids, n_items, label, what):
    """Fail unless ``ids`` is exactly ``item_id(0..n-1)``, each once (any order)."""
    expected = {item_id(i) for i in range(n_items)}
    got = set(ids)
    if len(ids) != n_items or got != expected:
        lost = sorted(expected - got)
        extra = sorted(str(x) for x in got - expected)
        _fail(label, f"{what}: expected {n_items} items, found {len(ids)}: {len(lost)} lost {lost[:3]}, "
                     f"{len(extra)} unexpected {extra[:3]}, {len(ids) - len(got)} duplicated")


# --- the schema -------------------------------------------------------------------------------

#: Where each vendored schema folder is published (its files are registered under these URLs).
SCHEMA_BASES = {
    "stac-1.0.0": "https://schemas.stacspec.org/v1.0.0/item-spec/json-schema/",
    "stac-1.1.0": "https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/",
    "geojson": "https://geojson.org/schema/",
}


def _offline(uri):
    """The registry's retriever: every schema is vendored, nothing is fetched."""
    raise LookupError(f"{uri}: not a vendored schema (validation never uses the network)")


@functools.cache
def schema_resources():
    """``{url: schema}`` of every vendored schema file, under the URL it is published at."""
    return {base + path.name: json.loads(path.read_text())
            for folder, base in SCHEMA_BASES.items() for path in sorted((SCHEMA_DIR / folder).glob("*.json"))}


@functools.cache
def _validator(stac_version, compiled=True):
    """A Draft 7 validator of the STAC item schema of ``stac_version`` (None: no schema here),
    from the vendored files, without format assertions (``validity.STAND_IN_PROPS`` rely on it):
    ``jsonschema-rs`` (``compiled``), else ``jsonschema``, the reference it agrees with."""
    if f"stac-{stac_version}" not in SCHEMA_BASES:
        return None
    resources = schema_resources()
    item = SCHEMA_BASES[f"stac-{stac_version}"] + "item.json"
    if not compiled:
        reference = Registry().with_resources((url, Resource.from_contents(doc)) for url, doc in resources.items())
        return jsonschema.Draft7Validator(reference.contents(item), registry=reference)
    registry = jsonschema_rs.Registry(list(resources.items()), retriever=_offline)
    return jsonschema_rs.Draft7Validator(resources[item], registry=registry, retriever=_offline, base_uri=item,
                                         validate_formats=False)


#: Digests of item documents known valid: validated in this process, or read from the
#: machine's store (``validity``), which ``ItemCheck`` and ``prepare`` bring up to date.
VALID = set()


def validate(item, digest=None, label="", keep=True):
    """Fail unless ``item`` is a valid STAC item of its ``stac_version`` (1.0.0 or 1.1.0).

    Each distinct document is validated once per process, and once per machine when ``keep``
    (``validity``): a document that will not come again (a fresh timestamp in it) is not kept,
    and is validated by ``jsonschema``, as the one history series that times it always was.
    """
    digest = item_digest(item) if digest is None else digest
    if digest in VALID:
        return
    version = item.get("stac_version")
    validator = _validator(version, compiled=keep) if isinstance(version, str) else None
    if validator is None:
        _fail(label, f"item {item.get('id')!r} has stac_version {item.get('stac_version')!r}: "
                     f"no STAC item schema for it here ({sorted(SCHEMA_BASES)})")
    error = next(iter(validator.iter_errors(item)), None)
    if error is not None:
        path = error.absolute_path if isinstance(error, jsonschema.ValidationError) else error.instance_path
        where = "/".join(map(str, path)) or "the item"
        _fail(label, f"item {item.get('id')!r} is not a valid STAC {item.get('stac_version')} item: "
                     f"{where}: {error.message[:200]}")
    for valid in (digest, item_digest(complement(item))):  # valid whole, valid in part
        if keep and valid not in VALID:
            STORE.add(valid)
        VALID.add(valid)


def complement(item):
    """What ``skeleton`` leaves out of ``item``: its geometry, bbox and assets on empty links and
    the bare datetime properties (valid whenever ``item`` is)."""
    props = item.get("properties") if isinstance(item.get("properties"), dict) else {}
    out = {k: v for k, v in item.items() if k != "collection"}
    out["links"] = []
    out["properties"] = {k: props[k] for k in ("datetime", "start_datetime", "end_datetime") if k in props}
    return out


def skeleton(item, keys):
    """What a comparison on ``keys`` does not see of ``item``, on a minimal valid item.

    The keys outside ``keys``, ``collection`` and all of ``properties`` come from ``item``;
    the geometry is a point and the assets are none.  With the compared part equal to an
    expected item whose ``complement`` is valid, ``item`` is valid when this is (the STAC
    item schema ties geometry to bbox and collection to links, both pairs kept together).
    """
    base = {"type": "Feature", "stac_version": item.get("stac_version"), "id": "skeleton",
            "geometry": {"type": "Point", "coordinates": [0.0, 0.0]}, "bbox": [0.0, 0.0, 0.0, 0.0],
            "properties": item.get("properties"), "links": [], "assets": {}}
    base.update((k, v) for k, v in item.items() if keys is not None and k not in keys)
    if "collection" in item:
        base["collection"] = item["collection"]
    return base


# --- expected digests -------------------------------------------------------------------------

def exact(i):
    """The expected item ``i``: the generated one."""
    return make_item(i)


def project(item, keys=None, loose_props=()):
    """``item`` on ``keys`` only (None: all), without the ``loose_props`` properties."""
    if keys is None and not loose_props:
        return item
    out = dict(item) if keys is None else {k: item[k] for k in keys if k in item}
    props = out.get("properties")
    if loose_props and isinstance(props, dict):
        out["properties"] = {k: v for k, v in props.items() if k not in loose_props}
    return out


_EXPECTED = {}


def expected_digests(n, expect=exact, keys=None, loose_props=()):
    """Digests of ``project(expect(i))`` for ``i < n``, computed once per process.

    Generating the expected items validates them too (they are what valid output looks like).
    """
    key = (n, expect, tuple(keys) if keys is not None else None, tuple(loose_props))
    if key not in _EXPECTED:
        STORE.sync(VALID)
        digests = []
        for i in range(n):
            want = expect(i)
            # a projected check validates the rest of each item itself (``skeleton``)
            validate(complement(want) if keys is not None or loose_props else want)
            view = project(want, keys, loose_props)
            digests.append((item_digest(view), native_digest(view)))
        _EXPECTED[key] = digests
        STORE.flush()
    return _EXPECTED[key]


def prepare(n, expect=exact, keys=None, loose_props=()):
    """Do the once-per-process work of the checks of ``n`` items now (call it in ``setup``)."""
    expected_digests(n, expect, keys, loose_props)


def canonical_datetimes(item):
    """``item`` with its timestamp properties written one way (``...Z``, UTC).

    An RFC 3339 string is one encoding of an instant: ``+00:00`` and ``Z``, or ``.000``,
    encode the same item.  A timestamp that is not a string (a ``datetime`` object) is
    not JSON and stays as it is (it differs).
    """
    props = item.get("properties")
    if not isinstance(props, dict) or not any(isinstance(props.get(k), str) for k in TIMESTAMPS):
        return item
    props = dict(props)
    for key in TIMESTAMPS:
        value = props.get(key)
        if isinstance(value, str):
            try:
                when = dt.datetime.fromisoformat(value).astimezone(dt.timezone.utc)
            except ValueError:
                continue
            text = when.strftime("%Y-%m-%dT%H:%M:%S")
            if when.microsecond:
                text += f".{when.microsecond:06d}".rstrip("0")
            props[key] = text + "Z"
    return {**item, "properties": props}


# --- the check --------------------------------------------------------------------------------

class ItemCheck:
    """Checks a stream of items as it goes by, keeping one byte per expected item.

    ``finish()`` fails unless the stream was exactly items ``0..n-1`` (any order).  ``add``
    fails at once on a non-dict, or on an item whose ``normalise(item)`` projected on
    ``keys`` (minus ``loose_props``) differs from ``expect(i)``'s, or that is not valid STAC.
    ``digests``: the expected ``(canonical, native)`` digests (default: computed from ``expect``,
    once per process; ``itemgen.read_digests`` for a dataset's).
    ``normalise``: an encoding allowance (e.g. server-added links, timestamp spelling).
    ``origin``: ``id -> str`` naming where an item came from, for the messages.
    ``stand_in``: validate loose timestamps through ``validity.stand_in`` (kept per machine).
    """

    def __init__(self, n_items, label="", digests=None, normalise=None, expect=exact, keys=None,
                 loose_props=(), origin=None, stand_in=False):
        self.n, self.label, self.stand_in = n_items, label, stand_in
        self.where = f"{label}: " if label else ""
        self.expect, self.keys, self.loose = expect, keys, tuple(loose_props)
        self.projected = keys is not None or bool(loose_props)
        self.digests = expected_digests(n_items, expect, keys, loose_props) if digests is None else digests
        self.normalise, self.origin = normalise, origin
        STORE.sync(VALID)  # what other processes validated since this one last looked
        self.seen = bytearray(n_items)
        self.count = 0
        self.unexpected = []

    def _fail(self, msg):
        raise ResultMismatch(self.where + msg)

    def add(self, item):
        if not isinstance(item, dict):
            self._fail(f"got a {type(item).__name__}, not an item dict")
        self.count += 1
        iid = item.get("id")
        i = item_index(iid)
        if i is None or i >= self.n:
            self.unexpected.append(iid)
            return
        self.seen[i] = 1
        got = self.normalise(item) if self.normalise is not None else item
        view = project(got, self.keys, self.loose)
        want_canonical, want_native = self.digests[i]
        try:  # the fast path: the decoder kept the source's key order
            same = native_digest(view) == want_native or item_digest(view) == want_canonical
        except TypeError as exc:
            self._fail(f"item {iid} holds values JSON cannot encode ({exc}); {self._diff(got, i)}")
        if not same:
            self._fail(f"item {iid}{self._from(iid)} differs from the source: {self._diff(got, i)}")
        if self.projected:  # loose properties change from run to run: such a document is not kept
            doc, lasting = skeleton(got, self.keys), not self.loose
            if self.stand_in:  # ... unless stand-ins of the same validity take their place
                doc, lasting = stand_in(doc, self.loose)
            validate(doc, label=self.label, keep=lasting)
        else:
            validate(got, want_canonical, self.label)

    def add_all(self, items):
        for item in items:
            self.add(item)

    def _from(self, iid):
        return f" (from {self.origin(iid)})" if self.origin else ""

    def _diff(self, got, i):
        return describe_difference(project(got, self.keys, self.loose),
                                   project(self.expect(i), self.keys, self.loose))

    def finish(self):
        STORE.flush()
        missing = self.n - sum(self.seen)
        if self.count != self.n or missing:
            lost = [item_id(i) for i, seen in enumerate(self.seen) if not seen]
            extra = sorted(map(str, self.unexpected))
            self._fail(f"expected {self.n} items, got {self.count}: {missing} lost "
                       f"{[x + self._from(x) for x in lost[:3]]}, {len(extra)} unexpected {extra[:3]}, "
                       f"{self.count - len(extra) - (self.n - missing)} duplicated")


def describe_difference(got, want):
    """Which keys of ``got`` differ from ``want`` (and how), for a failure message."""
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    changed = sorted(k for k in set(got) & set(want) if _encoded(got[k]) != _encoded(want[k]))
    parts = []
    if missing:
        parts.append(f"missing {missing}")
    if extra:
        parts.append(f"unexpected {extra[:8]}")
    for key in changed[:6]:
        a, b = got[key], want[key]
        if isinstance(a, dict) and isinstance(b, dict):
            inner = sorted(k for k in set(a) | set(b) if _encoded(a.get(k)) != _encoded(b.get(k)))
            parts.append(f"{key!r} differs in {inner[:8]}")
        else:
            parts.append(f"{key!r} is {_show(a)}, expected {_show(b)}")
    return "; ".join(parts) or "canonical JSON differs"


def _encoded(value):
    try:
        return canonical(value)
    except TypeError:
        return repr(value).encode()


def _show(value):
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def check_items(items, n_items, label="", exact=True, normalise=None):
    """``ItemCheck`` over an iterable of items; returns ``items``.

    ``exact=False`` (deprecated, the API suite's old call): exact ids and the old structural
    test only, no comparison and no schema; pass ``normalise`` (e.g. removing server-added
    links) to compare every item instead.
    """
    check = ItemCheck(n_items, label, normalise=normalise)
    if not exact:
        check.add = functools.partial(_ids_and_structure, check)
    check.add_all(items)
    check.finish()
    return items


def _ids_and_structure(check, item):
    if not isinstance(item, dict):
        check._fail(f"got a {type(item).__name__}, not an item dict")
    check.count += 1
    missing = [k for k in REQUIRED if k not in item]
    if missing or item.get("type") != "Feature":
        check._fail(f"item {item.get('id')} is not a STAC item (missing {missing or 'type Feature'})")
    i = item_index(item.get("id"))
    if i is None or i >= check.n:
        check.unexpected.append(item.get("id"))
        return
    check.seen[i] = 1

"""The compiled validator (``jsonschema-rs``) gives ``jsonschema``'s verdicts on the vendored schemas.

The check used ``jsonschema`` (Draft 7, no format checker) until it cost 7 to 26 ms an item; it
now uses ``jsonschema-rs``.  Here both judge the same documents: the generated items and a few
hundred single mutations of them (a key removed, a value of another type, a string the formats
would refuse), as STAC 1.0.0 and 1.1.0 items.  One differing verdict fails.
"""

import copy
import json

import jsonschema
import jsonschema_rs
import pytest

from benchmarks.lib import checks, datacache, itemgen, loaders, sources, validity

#: Values put in place of each value of an item, one at a time.
REPLACEMENTS = (None, 17, "not a date, Z", [], {}, [0.0, 0.0])


def reference_validator(stac_version):
    """The validator the check used before: ``jsonschema``'s Draft 7, no format checker."""
    validator = checks._validator(stac_version, compiled=False)
    assert type(validator) is jsonschema.Draft7Validator and validator.format_checker is None
    return validator


def paths(doc, prefix=()):
    """Every key path of ``doc``; of a list, its first two and last entries; of the assets, two."""
    if isinstance(doc, dict):
        keys = list(doc)[:2] if prefix == ("assets",) else list(doc)
    elif isinstance(doc, list):
        keys = sorted({*range(min(2, len(doc))), len(doc) - 1}) if doc else []
    else:
        return
    for key in keys:
        yield (*prefix, key)
        yield from paths(doc[key], (*prefix, key))


def mutated(doc, path, value=None, remove=False):
    out = copy.deepcopy(doc)
    parent = out
    for key in path[:-1]:
        parent = parent[key]
    if remove:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return out


def corpus(item):
    """``item`` and its single mutations: each path removed, or replaced by each of ``REPLACEMENTS``."""
    yield item
    for path in paths(item):
        yield mutated(item, path, remove=True)
        for value in REPLACEMENTS:
            yield mutated(item, path, value)


@pytest.mark.parametrize("stac_version", ["1.0.0", "1.1.0"])
def test_the_compiled_validator_gives_the_reference_verdicts(stac_version):
    compiled, reference = checks._validator(stac_version), reference_validator(stac_version)
    docs = list(corpus(dict(itemgen.make_item(0), stac_version=stac_version)))
    verdicts = [reference.is_valid(d) for d in docs]
    differ = [json.dumps(d)[:300] for d, want in zip(docs, verdicts, strict=True) if compiled.is_valid(d) != want]
    # the corpus says something: many documents of each verdict
    assert verdicts.count(True) > 50 and verdicts.count(False) > 200, (verdicts.count(True), verdicts.count(False))
    assert not differ, f"{len(differ)} of {len(docs)} verdicts differ, e.g. {differ[:3]}"


def test_the_compiled_validator_names_the_first_error_where_it_is():
    bad = mutated(itemgen.make_item(0), ("assets", "red", "href"), 17)
    error = next(iter(checks._validator("1.0.0").iter_errors(bad)))
    assert list(error.instance_path) == ["assets", "red", "href"]


def test_a_schema_that_is_not_vendored_is_never_fetched():
    with pytest.raises(LookupError, match="not a vendored schema"):
        checks._offline("https://example.com/schema.json")
    # a document that refers to a schema outside the vendored set cannot be compiled at all
    registry = jsonschema_rs.Registry(list(checks.schema_resources().items()), retriever=checks._offline)
    with pytest.raises(jsonschema_rs.ValidationError, match="not a vendored schema"):
        jsonschema_rs.Draft7Validator({"$ref": "https://example.com/elsewhere.json"}, registry=registry,
                                      retriever=checks._offline)


# --- a planted invalid item is never accepted ---------------------------------------------------

#: 240 items, as the scale tests; item 173 is the planted one (not among ``checks.sample(240)``).
N, PLANTED = 240, 173
GENERATED = itemgen.make_item


def planted(i):
    """The generated item ``i``, but item ``PLANTED``'s ``gsd`` is negative (invalid STAC, which
    every writer of a dataset still writes)."""
    item = GENERATED(i)
    if i == PLANTED:
        item["properties"]["gsd"] = -10
    return item


@pytest.fixture
def fresh_process(monkeypatch, tmp_path):
    """No document known valid: not in this process, not in the machine's store."""
    monkeypatch.setattr(checks, "VALID", set())
    monkeypatch.setattr(checks, "_EXPECTED", {})
    monkeypatch.setattr(checks, "STORE", validity.Store())
    monkeypatch.setenv("STAC_BENCH_DATA_DIR", str(tmp_path / "data"))


def test_an_invalid_expected_item_fails_its_preparation(fresh_process):
    assert PLANTED not in checks.sample(N)
    with pytest.raises(checks.ResultMismatch, match="bench-item-000173' is not a valid STAC 1.0.0 item: properties/gsd"):
        checks.prepare(N, expect=planted)


def read_all(root, source):
    """Every item of ``source`` in the dataset at ``root`` through the harness loader, checked against
    the digests stored with it."""
    check = checks.ItemCheck(N, source, digests=datacache.read_digests(root))
    path = sources.source_path(root, source)
    for unit in sources.units(source, path, N):
        check.add_all(loaders.load(unit))
    check.finish()


@pytest.mark.parametrize("source", ["directory", "ndjson"])
def test_a_dataset_holding_an_invalid_item_fails_every_read_of_it(source, fresh_process, monkeypatch, tmp_path):
    """The generator plants an invalid item: its stored digest matches what is read back, so only
    the schema can tell, and it must.  The same read of the generated dataset passes."""
    read_all(datacache.write_dataset(tmp_path / "good", N), source)
    monkeypatch.setattr(itemgen, "make_item", lambda i, seed=itemgen.SEED: planted(i))
    root = datacache.write_dataset(tmp_path / "planted", N)
    with pytest.raises(checks.ResultMismatch, match="bench-item-000173' is not a valid STAC 1.0.0 item: properties/gsd"):
        read_all(root, source)

"""The check every run passes: each single fault in an otherwise perfect result must fail it."""

import copy
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.lib import checks, formats, itemgen, readback, validity
from benchmarks.lib.checks import ItemCheck, ResultMismatch, check_items

ROOT = Path(__file__).resolve().parents[1]
N = 60
#: An item the old check never looked at (not in the 17-item spread sample).
UNSAMPLED = 7


@pytest.fixture(scope="module")
def items():
    assert UNSAMPLED not in checks.sample(N)
    return itemgen.make_items(N)


def fails(items, match, **kwargs):
    with pytest.raises(ResultMismatch, match=match):
        check_items(items, N, "case", **kwargs)


def with_item(items, i, **changes):
    out = list(items)
    out[i] = {**copy.deepcopy(items[i]), **changes}
    return out


def test_the_exact_items_in_any_order_pass(items):
    check_items(list(reversed(items)), N)
    check_items(iter(items), N)  # a one-shot stream


def test_a_full_set_plus_one_duplicate_fails(items):
    fails(items + [items[UNSAMPLED]], "got 61: 0 lost .* 1 duplicated")


def test_a_duplicate_in_place_of_a_lost_item_fails(items):
    fails(items[:-1] + [items[0]], "1 lost .*bench-item-000059.* 1 duplicated")


def test_one_lost_item_fails(items):
    fails(items[:UNSAMPLED] + items[UNSAMPLED + 1:], "1 lost")


def test_an_unexpected_extra_item_fails(items):
    fails(items + [dict(items[0], id="bench-item-999999")], "1 unexpected")


def test_one_changed_property_outside_the_old_sample_fails(items):
    bad = copy.deepcopy(items)
    bad[UNSAMPLED]["properties"]["eo:cloud_cover"] += 1
    fails(bad, r"bench-item-000007 differs from the source: 'properties' differs in \['eo:cloud_cover'\]")


def test_empty_assets_fail(items):
    fails(with_item(items, UNSAMPLED, assets={}), "'assets' differs")


def test_null_bbox_fails(items):
    fails(with_item(items, UNSAMPLED, bbox=None), "'bbox' is NoneType None")


def test_a_non_dict_fails(items):
    fails(items[:-1] + [[items[-1]]], "got a list, not an item dict")


def test_a_value_json_cannot_encode_fails(items):
    fails(with_item(items, UNSAMPLED, geometry=b"\x01\x03"), "values JSON cannot encode")


# --- the schema (offline) ----------------------------------------------------------------------

def test_generated_items_are_valid_stac_1_0(items, monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("schema validation must not touch the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    checks._validator.cache_clear()
    fresh = dict(items[3], id="bench-item-000003")
    checks.VALID.discard(itemgen.item_digest(fresh))
    checks.validate(fresh)
    assert checks._validator("1.0.0") is not None and checks._validator("1.1.0") is not None


@pytest.mark.parametrize("change,match", [
    ({"bbox": None}, "bbox"),
    ({"geometry": {"type": "Polygon"}}, "geometry"),
    ({"stac_version": "0.9.0"}, "no STAC item schema"),
    ({"links": [{"href": "x"}]}, "links/0"),
    ({"properties": {"platform": "x"}}, "properties"),
])
def test_schema_rejects_invalid_items(items, change, match):
    with pytest.raises(ResultMismatch, match=match):
        checks.validate({**items[0], **change})


def test_items_equal_to_an_invalid_source_still_fail_the_schema(items):
    # Stored digests say what the source holds; they do not make it valid STAC.
    invalid = [dict(i, bbox=None) for i in items]
    digests = [(itemgen.item_digest(i), itemgen.native_digest(i)) for i in invalid]
    check = ItemCheck(N, "stored", digests=digests)
    with pytest.raises(ResultMismatch, match="not a valid STAC 1.0.0 item: bbox"):
        check.add_all(invalid)


@pytest.fixture
def schema_calls(monkeypatch, tmp_path):
    """The ids the schema validator sees, from an empty process view and an empty machine store."""
    calls = []
    real = checks._validator

    def counting(version, compiled=True):
        validator = real(version, compiled)
        return type("V", (), {"iter_errors": lambda self, item: (calls.append(item["id"]),
                                                                 validator.iter_errors(item))[1]})()

    monkeypatch.setattr(checks, "_validator", counting)
    forget_this_process(monkeypatch)
    monkeypatch.setenv("STAC_BENCH_DATA_DIR", str(tmp_path / "data"))
    return calls


def forget_this_process(monkeypatch):
    monkeypatch.setattr(checks, "VALID", set())
    monkeypatch.setattr(checks, "_EXPECTED", {})
    monkeypatch.setattr(checks, "STORE", validity.Store())


def test_every_item_is_validated_once_per_process(items, schema_calls):
    check_items(items, N)
    assert sorted(schema_calls) == sorted(i["id"] for i in items)  # every item once
    check_items(items, N)
    assert len(schema_calls) == N  # and not again in this process


def test_a_document_is_validated_once_per_machine(items, schema_calls, monkeypatch, tmp_path):
    """asv runs every benchmark in a fresh process: what one validated, the next reads."""
    script = "from benchmarks.lib import checks, itemgen; checks.check_items(itemgen.make_items(60), 60)"
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT, timeout=120,
                   env={**os.environ, "STAC_BENCH_PRELOAD": "0"})
    check_items(items, N)
    assert schema_calls == []  # every one came from the other process's store
    monkeypatch.setenv("STAC_BENCH_DATA_DIR", str(tmp_path / "elsewhere"))  # another machine's cache
    forget_this_process(monkeypatch)
    check_items(items, N)
    assert len(schema_calls) == N


def test_an_invalid_document_never_reaches_the_store(items, schema_calls, monkeypatch):
    bad = {**items[0], "bbox": None}
    check_items(items, N)  # the store holds the valid ones
    with pytest.raises(ResultMismatch, match="not a valid STAC 1.0.0 item: bbox"):
        checks.validate(bad)
    checks.STORE.flush()
    stored = validity.store_path().read_bytes()
    assert len(stored) >= 16 * N and itemgen.item_digest(bad) not in {stored[i:i + 16] for i in range(0, len(stored), 16)}
    forget_this_process(monkeypatch)
    check_items(items, N)
    with pytest.raises(ResultMismatch, match="not a valid STAC 1.0.0 item: bbox"):  # a fresh process too
        checks.validate(bad)


def test_the_store_keeps_each_lasting_document_once(items, schema_calls, monkeypatch):
    """A pipeline run's documents carry a fresh ``properties.updated``: they never come again, so
    they are validated in the process and not kept; what is kept, is kept once."""
    def stamped(when):
        return [formats.relative_links(dict(i, properties={**i["properties"], "updated": when}))
                for i in items]

    def stored():
        path = validity.store_path()
        return path.read_bytes() if path.exists() else b""

    checks.prepare(N, keys=readback.SURVIVE, loose_props=("updated",))
    before = stored()
    _output_check(stamped("2030-01-01T00:00:00Z"))
    _output_check(stamped("2030-01-01T00:00:01Z"))
    assert len(schema_calls) == 3 * N and stored() == before  # each run validated, none kept
    check_items(items, N)
    assert len(schema_calls) == 4 * N
    forget_this_process(monkeypatch)  # another process: the store says these are valid
    check_items(items, N)
    kept = stored()
    digests = [kept[i:i + 16] for i in range(0, len(kept), 16)]
    assert len(schema_calls) == 4 * N and len(digests) == len(set(digests)), "a digest kept twice"


def test_stand_ins_make_fresh_stamps_lasting(items, schema_calls, monkeypatch):
    """The hybrid pipeline's check (``stand_in=True``): fresh ``updated`` stamps validate through one
    stand-in each, kept per machine, so a second run and another process validate nothing."""
    def stamped(when):
        return [formats.relative_links(dict(i, properties={**i["properties"], "updated": when}))
                for i in items]

    checks.prepare(N, keys=readback.SURVIVE, loose_props=("updated",))
    before = len(schema_calls)
    _output_check(stamped("2030-01-01T00:00:00Z"), stand_in=True)
    _output_check(stamped("2030-01-01T00:00:01.5+00:00"), stand_in=True)
    assert len(schema_calls) == before + N  # the second run's stand-ins were the first's
    forget_this_process(monkeypatch)
    checks.prepare(N, keys=readback.SURVIVE, loose_props=("updated",))
    before = len(schema_calls)
    _output_check(stamped("2031-05-05T05:05:05Z"), stand_in=True)
    assert len(schema_calls) == before  # kept on the machine


def test_documents_a_timed_run_validates_and_drops_keep_the_reference_validator(items, monkeypatch, tmp_path):
    """``PipelineModule.time_run`` has always timed ``jsonschema`` on its fresh stamps: it still does
    (its series stays one series); what is kept (expected items, stand-ins) goes to ``jsonschema-rs``."""
    used, real = [], checks._validator

    def spy(version, compiled=True):
        used.append(compiled)
        return real(version, compiled)

    monkeypatch.setattr(checks, "_validator", spy)
    forget_this_process(monkeypatch)
    monkeypatch.setenv("STAC_BENCH_DATA_DIR", str(tmp_path / "data"))
    checks.prepare(N, keys=readback.SURVIVE, loose_props=("updated",))
    assert used == [True] * N
    stamped = [formats.relative_links(dict(i, properties={**i["properties"], "updated": "2030-01-01T00:00:00Z"}))
               for i in items]
    used.clear()
    _output_check(stamped)
    assert used == [False] * N
    used.clear()
    _output_check(stamped, stand_in=True)
    assert used == [True] * N


@pytest.mark.parametrize("updated", ["2030-01-01T00:00:00+02:00", 17])
def test_a_stamp_the_schema_rejects_is_never_stood_in(items, updated):
    """Only a value the schema's pattern accepts is replaced: anything else is validated as it is."""
    got = [formats.relative_links(dict(i, properties={**i["properties"], "updated": "2030-01-01T00:00:00Z"}))
           for i in items]
    got[UNSAMPLED]["properties"]["updated"] = updated
    with pytest.raises(ResultMismatch, match="not a valid STAC 1.0.0 item: properties/updated"):
        _output_check(got, stand_in=True)


def test_the_schemas_constrain_stood_in_stamps_by_pattern_only():
    """``validity.stand_in`` is sound while the vendored schemas ask no more of these properties
    than a string ending ``Z`` or ``+00:00`` (format is not asserted: no format checker)."""
    import json
    for folder in ("stac-1.0.0", "stac-1.1.0"):
        texts = "".join(p.read_text() for p in sorted((validity.SCHEMA_DIR / folder).glob("*.json")))
        schema = json.loads((validity.SCHEMA_DIR / folder / "datetime.json").read_text())
        for prop in validity.STAND_IN_PROPS:
            spec = {k: v for k, v in schema["properties"][prop].items() if k != "title"}
            assert spec == {"type": "string", "format": "date-time", "pattern": "(\\+00:00|Z)$"}, (folder, prop)
            assert texts.count(f'"{prop}"') == 1, f"{folder} constrains {prop} elsewhere too"
    # format is not asserted: a stamp the pattern accepts passes, however it reads; one it refuses fails
    item = itemgen.make_item(0)
    for stamp, valid in (("not a date, Z", True), ("2030-01-01T00:00:00+00:00", True),
                         ("2030-01-01T00:00:00+02:00", False)):
        doc = {**item, "properties": {**item["properties"], "created": stamp}}
        assert checks._validator("1.0.0").is_valid(doc) is valid, stamp


# --- allowances that stay: server links, SURVIVE keys, properties.updated, instants ---------

def test_normalise_removes_only_what_it_is_told(items):
    served = [dict(i, links=i["links"] + [{"rel": "self", "href": "http://api/x", "type": "application/json"}])
              for i in items]
    fails(served, "'links'")

    def strip(item):
        return {**item, "links": [ln for ln in item["links"] if not ln["href"].startswith("http://api/")]}
    check_items(served, N, normalise=strip)
    served[UNSAMPLED]["assets"] = {}
    fails(served, "'assets' differs", normalise=strip)


def _output_check(got, stand_in=False):
    check = ItemCheck(N, "out", keys=readback.SURVIVE, loose_props=("updated",), stand_in=stand_in)
    check.add_all(got)
    check.finish()


def test_survive_keys_and_updated_are_the_only_allowances(items):
    relinked = [formats.relative_links(dict(i, properties={**i["properties"], "updated": "2030-01-01T00:00:00Z"}))
                for i in items]
    _output_check(relinked)
    bad = copy.deepcopy(relinked)
    bad[UNSAMPLED]["properties"]["platform"] = "landsat"
    with pytest.raises(ResultMismatch, match="'properties' differs in"):
        _output_check(bad)


def test_outside_survive_an_item_must_still_be_valid_stac(items):
    relinked = [formats.relative_links(i) for i in items]
    relinked[UNSAMPLED]["stac_version"] = "0.8"
    with pytest.raises(ResultMismatch, match="no STAC item schema"):
        _output_check(relinked)
    relinked = [formats.relative_links(i) for i in items]
    relinked[UNSAMPLED]["links"] = [{"rel": "self"}]
    with pytest.raises(ResultMismatch, match="not a valid STAC"):
        _output_check(relinked)


def test_instants_spelled_differently_are_the_same_item(items):
    spelled = copy.deepcopy(items)
    for item in spelled:
        item["properties"]["created"] = item["properties"]["created"].replace("Z", "+00:00")
        item["properties"]["updated"] = item["properties"]["updated"].replace("Z", ".000+00:00")
    fails(spelled, "'properties' differs")
    check_items(spelled, N, normalise=checks.canonical_datetimes)
    objects = copy.deepcopy(items)
    objects[UNSAMPLED]["properties"]["created"] = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    fails(objects, "differs from the source", normalise=checks.canonical_datetimes)


def test_check_ids_is_the_one_id_set_check():
    ids = [itemgen.item_id(i) for i in range(N)]
    checks.check_ids(ids, N, "x", "blobs")
    with pytest.raises(ResultMismatch, match="1 duplicated"):
        checks.check_ids(ids + ids[:1], N, "x", "blobs")
    with pytest.raises(ResultMismatch, match="1 lost"):
        checks.check_ids(ids[1:], N, "x", "blobs")

"""Every schema change is recorded in schemas/history and backward compatible.

When a test here fails after you edited a ``schemas/*.avsc``: check the change
is backward compatible (new fields need a default, enum symbols stay, types only
widen), then copy the new file to ``schemas/history/<Name>.v<N+1>.avsc``.
"""

from __future__ import annotations

import copy
import io
from datetime import date, datetime
from typing import Any

import pytest
from fastavro import schemaless_reader, schemaless_writer

import schemas
from schemas.compat import backward_problems, parse, sample_datum, variant_count

SCHEMA_NAMES = schemas.schema_names()


def test_there_are_schemas_to_check() -> None:
    assert {"ActeSubmission", "FlowState", "Member", "Notification"} <= set(SCHEMA_NAMES)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_current_schema_is_the_latest_recorded_version(name: str) -> None:
    recorded = schemas.history(name)
    if not recorded:
        pytest.fail(
            f"schema {name} has no recorded version: copy it to schemas/history/{name}.v1.avsc"
        )
    latest_version, latest_json = recorded[-1]
    if schemas.load_schema_json(name) != latest_json:
        pytest.fail(
            f"schema {name} changed: copy it to "
            f"schemas/history/{name}.v{latest_version + 1}.avsc after checking compatibility"
        )


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_recorded_versions_are_numbered_from_one_without_gaps(name: str) -> None:
    versions = [version for version, _ in schemas.history(name)]
    assert versions == list(range(1, len(versions) + 1))


@pytest.mark.parametrize(
    ("name", "version"),
    [(name, version) for name in SCHEMA_NAMES for version, _ in schemas.history(name)],
)
def test_every_recorded_version_is_readable_with_the_current_schema(
    name: str, version: int
) -> None:
    old = dict(schemas.history(name))[version]
    problems = backward_problems(old, schemas.load_schema_json(name))
    assert problems == [], f"{name} v{version} -> current:\n" + "\n".join(problems)


# --- sample data ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_samples_of_every_schema_round_trip(name: str) -> None:
    parsed = parse(schemas.load_schema_json(name))
    for variant in range(variant_count(parsed)):
        datum = sample_datum(parsed, variant)
        buffer = io.BytesIO()
        schemaless_writer(buffer, parsed, datum)
        buffer.seek(0)
        assert schemaless_reader(buffer, parsed) == datum


def test_sample_datum_is_deterministic() -> None:
    parsed = parse(schemas.load_schema_json("Notification"))
    assert sample_datum(parsed) == sample_datum(parsed)
    assert sample_datum(parsed, 3) == sample_datum(parsed, 3)


def test_sample_variants_take_every_union_branch_and_enum_symbol() -> None:
    parsed = parse(
        {
            "type": "record",
            "name": "R",
            "fields": [
                {"name": "u", "type": ["null", "string", "int"]},
                {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}},
            ],
        }
    )
    count = variant_count(parsed)
    samples = [sample_datum(parsed, v) for v in range(count)]
    assert sample_datum(parsed)["u"] is not None  # variant 0: the first non-null branch
    assert {type(s["u"]) for s in samples} == {type(None), str, int}
    assert {s["e"] for s in samples} == {"A", "B", "C"}


def test_sample_datum_covers_every_kind_of_type() -> None:
    parsed = parse(
        {
            "type": "record",
            "name": "All",
            "namespace": "t",
            "fields": [
                {"name": "b", "type": "boolean"},
                {"name": "i", "type": "int"},
                {"name": "l", "type": "long"},
                {"name": "f", "type": "float"},
                {"name": "d", "type": "double"},
                {"name": "by", "type": "bytes"},
                {"name": "s", "type": "string"},
                {"name": "n", "type": "null"},
                {"name": "fx", "type": {"type": "fixed", "name": "Four", "size": 4}},
                {"name": "fx2", "type": "Four"},
                {"name": "day", "type": {"type": "int", "logicalType": "date"}},
                {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
                {"name": "m", "type": {"type": "map", "values": "long"}},
                {"name": "a", "type": {"type": "array", "items": "string"}},
                {
                    "name": "next",
                    "type": ["null", "All"],
                    "default": None,
                },
            ],
        }
    )
    datum = sample_datum(parsed)
    assert isinstance(datum["b"], bool)
    assert isinstance(datum["fx"], bytes) and len(datum["fx"]) == 4
    assert len(datum["fx2"]) == 4
    assert isinstance(datum["day"], date)
    assert isinstance(datum["at"], datetime) and datum["at"].tzinfo is not None
    assert len(datum["m"]) == 1 and len(datum["a"]) == 1
    assert datum["next"] is not None  # recursion is cut at a bounded depth
    buffer = io.BytesIO()
    schemaless_writer(buffer, parsed, datum)
    buffer.seek(0)
    assert schemaless_reader(buffer, parsed) == datum


# --- the guard itself can fail -------------------------------------------------------------


def _modified(name: str) -> dict[str, Any]:
    return copy.deepcopy(schemas.load_schema_json(name))


def _field(schema_json: dict[str, Any], field_name: str) -> dict[str, Any]:
    return next(f for f in schema_json["fields"] if f["name"] == field_name)


def test_adding_a_field_without_default_is_reported() -> None:
    old = schemas.load_schema_json("Member")
    new = _modified("Member")
    new["fields"].append({"name": "email", "type": "string"})
    problems = backward_problems(old, new)
    assert any("email" in p and "without a default" in p for p in problems), problems


def test_adding_a_field_without_default_in_a_nested_record_is_reported() -> None:
    old = schemas.load_schema_json("ActeSubmission")
    new = _modified("ActeSubmission")
    blob = _field(_field(new, "document")["type"], "blob")["type"]
    blob["fields"].append({"name": "checksum_kind", "type": "string"})
    problems = backward_problems(old, new)
    assert any("BlobRef.checksum_kind" in p for p in problems), problems


def test_adding_a_field_without_default_inside_an_optional_record_is_reported() -> None:
    """Samples whose union takes the null branch would not fail: the static check must."""
    old = schemas.load_schema_json("Member")
    new = _modified("Member")
    tdt_record = _field(new, "tdt")["type"][1]
    tdt_record["fields"].append({"name": "profile", "type": "string"})
    problems = backward_problems(old, new)
    assert any("TdtSettings.profile" in p and "without a default" in p for p in problems)


def test_removing_an_enum_symbol_old_data_uses_is_reported() -> None:
    old = schemas.load_schema_json("Notification")
    new = _modified("Notification")
    kind = _field(new, "kind")["type"]
    kind["symbols"] = [s for s in kind["symbols"] if s != "PARTNER_MESSAGE"]
    problems = backward_problems(old, new)
    assert any("PARTNER_MESSAGE" in p for p in problems), problems
    # the written samples themselves hit the missing symbol, not only the static check
    assert any("cannot be read" in p for p in problems), problems


def test_changing_string_to_int_is_reported() -> None:
    old = schemas.load_schema_json("FlowState")
    new = _modified("FlowState")
    _field(new, "stage")["type"] = "int"
    problems = backward_problems(old, new)
    assert any("cannot be read" in p for p in problems), problems


def test_changing_a_union_branch_type_is_reported() -> None:
    """Only samples choosing the string branch of the union fail: variants must reach it."""
    old = schemas.load_schema_json("FlowState")
    new = _modified("FlowState")
    _field(new, "partner_ref")["type"] = ["null", "int"]
    problems = backward_problems(old, new)
    assert any("cannot be read" in p for p in problems), problems


def test_adding_an_optional_field_with_null_default_is_accepted() -> None:
    old = schemas.load_schema_json("Member")
    new = _modified("Member")
    new["fields"].append({"name": "email", "type": ["null", "string"], "default": None})
    assert backward_problems(old, new) == []


def test_removing_a_field_and_widening_int_to_long_are_accepted() -> None:
    old = schemas.load_schema_json("FlowState")
    new = _modified("FlowState")
    new["fields"] = [f for f in new["fields"] if f["name"] != "partner_ref"]
    _field(new, "sequence")["type"] = "long"
    assert backward_problems(old, new) == []


def test_adding_an_enum_symbol_is_accepted() -> None:
    old = schemas.load_schema_json("Notification")
    new = _modified("Notification")
    _field(new, "kind")["type"]["symbols"].append("ARCHIVED")
    assert backward_problems(old, new) == []


def test_an_unparsable_new_schema_is_reported() -> None:
    old = schemas.load_schema_json("Member")
    new = _modified("Member")
    new["fields"].append({"name": "x", "type": "NoSuchType"})
    problems = backward_problems(old, new)
    assert len(problems) == 1 and "does not parse" in problems[0]

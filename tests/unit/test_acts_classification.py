"""The member's classification on fakes: a 7-3 answer keeps the current one."""

from __future__ import annotations

from datetime import date

import pytest

from agents.acts.classification import (
    ParsedClassifications,
    is_unchanged_answer,
    refresh_classification,
)
from relais.errors import PartnerReplyError
from relais.wire.avro_codec import AvroCodec
from tests.unit.acts_fakes import (
    CLASSIFICATION_DATE,
    SIREN,
    World,
    classification_xml,
    member,
    unchanged_xml,
)
from topics.acts import ACTS_CLASSIFICATIONS


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec()


def test_a_7_3_answer_is_recognised() -> None:
    assert is_unchanged_answer(unchanged_xml())
    assert not is_unchanged_answer(classification_xml())
    assert not is_unchanged_answer(b"not xml")


async def test_unchanged_keeps_the_current_classification(codec: AvroCodec) -> None:
    world = World(codec)
    world.keep_classification()
    kept = world.snapshots.get(SIREN)
    world.connector.classification_xml = unchanged_xml(date(2026, 6, 1))
    classification = await refresh_classification(world.deps(), member())
    assert classification.date_version == CLASSIFICATION_DATE
    assert classification.check(1, [1, 1], ["99_DE"]) == []
    assert world.snapshots.get(SIREN) is kept
    assert [t for t, _ in world.journal.published if t == ACTS_CLASSIFICATIONS.name] == []


async def test_a_new_classification_is_kept_and_published(codec: AvroCodec) -> None:
    world = World(codec)
    world.connector.classification_xml = classification_xml(date(2026, 6, 1))
    classification = await refresh_classification(world.deps(), member())
    assert classification.date_version == date(2026, 6, 1)
    assert [t for t, _ in world.journal.published] == [ACTS_CLASSIFICATIONS.name]


async def test_unchanged_with_nothing_kept_says_so(codec: AvroCodec) -> None:
    world = World(codec)
    world.connector.classification_xml = unchanged_xml()
    with pytest.raises(PartnerReplyError, match="unchanged"):
        await refresh_classification(world.deps(), member())


def test_a_snapshot_is_parsed_once_and_a_new_one_again() -> None:
    cache = ParsedClassifications()
    kept = classification_xml()
    first = cache.get(SIREN, kept)
    assert cache.get(SIREN, kept) is first
    assert cache.get(SIREN, bytes(bytearray(kept))) is first  # equal bytes, other object
    assert cache.parsed == 1
    newer = cache.get(SIREN, classification_xml(date(2026, 6, 1)))
    assert newer.date_version == date(2026, 6, 1)
    assert cache.parsed == 2 and len(cache) == 1
    assert cache.get(SIREN, kept).date_version == CLASSIFICATION_DATE  # never served stale


def test_the_parsed_classifications_are_bounded() -> None:
    xml = classification_xml()
    by_count = ParsedClassifications(max_members=2)
    for siren in ("1", "2", "3"):
        by_count.get(siren, xml)
    assert len(by_count) == 2
    by_count.get("1", xml)
    assert by_count.parsed == 4  # the oldest was dropped, parsed again
    by_bytes = ParsedClassifications(max_bytes=len(xml) * 2)
    for siren in ("1", "2", "3"):
        by_bytes.get(siren, xml)
    assert len(by_bytes) == 2
    too_big = ParsedClassifications(max_bytes=len(xml) - 1)
    assert too_big.get("1", xml).date_version == CLASSIFICATION_DATE
    assert len(too_big) == 0


def test_an_unreadable_snapshot_is_not_kept() -> None:
    cache = ParsedClassifications()
    with pytest.raises(PartnerReplyError):
        cache.get(SIREN, b"not xml")
    assert len(cache) == 0

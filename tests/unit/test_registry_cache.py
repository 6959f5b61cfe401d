"""The hub-wide registry cache: expiry per kind of answer, negative caching, the topic view."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from relais.errors import ValueDecodeError
from relais.registry.cache import (
    DAY,
    HOUR,
    CachePolicy,
    Outcome,
    RegistryCache,
    entry_from_record,
    entry_record,
    make_entry,
)
from relais.wire.avro_codec import AvroCodec


def test_expiry_depends_on_the_kind_of_answer() -> None:
    policy = CachePolicy()
    active = make_entry("sirene", "212102313", Outcome.FOUND, 1000.0, active=True)
    closed = make_entry("sirene", "00552013500038", Outcome.FOUND, 1000.0, active=False)
    missing = make_entry("sirene", "000000018", Outcome.NOT_FOUND, 1000.0)
    hidden = make_entry("entreprise", "123456782", Outcome.NOT_DIFFUSIBLE, 1000.0)
    assert active.expires_at == 1000.0 + policy.found_active == 1000.0 + DAY
    assert closed.expires_at == 1000.0 + 7 * DAY
    assert missing.expires_at == 1000.0 + HOUR
    assert hidden.expires_at == 1000.0 + DAY


def test_a_fresh_entry_is_a_hit_until_it_expires_including_not_found() -> None:
    cache = RegistryCache()
    cache.put(make_entry("sirene", "000000018", Outcome.NOT_FOUND, 0.0))
    entry = cache.get("sirene", "000000018", HOUR - 1)
    assert entry is not None and entry.outcome is Outcome.NOT_FOUND
    assert cache.get("sirene", "000000018", HOUR) is None
    assert cache.get("entreprise", "000000018", 10.0) is None  # per registry
    assert (cache.hits, cache.misses) == (1, 2)
    assert cache.expired(HOUR) == ["sirene:000000018"]


def test_entries_travel_as_avro_records_and_the_view_keeps_the_newest() -> None:
    codec = AvroCodec()
    entry = make_entry(
        "sirene",
        "212102313",
        Outcome.FOUND,
        1_764_000_000.5,
        active=True,
        payload={"name": "COMMUNE DE DIJON", "legal_category": "7210"},
    )
    raw = codec.encode("RegistryCacheEntry", entry_record(entry))
    back = entry_from_record(codec.decode(raw, expected="RegistryCacheEntry").record)
    assert back == entry
    reader = RegistryCache()
    reader.apply(entry.key, back)
    older = make_entry("sirene", "212102313", Outcome.NOT_FOUND, 5.0)
    reader.apply(entry.key, older)  # a late, older record does not replace the newer one
    assert reader.get("sirene", "212102313", 1_764_000_010.0) == entry
    reader.apply(entry.key, None)
    assert reader.get("sirene", "212102313", 1_764_000_010.0) is None and len(reader) == 0


def test_inconsistent_cache_records_are_refused() -> None:
    good: dict[str, Any] = entry_record(make_entry("sirene", "2", Outcome.NOT_FOUND, 10.0))
    cache = RegistryCache()
    with pytest.raises(ValueDecodeError):
        cache.apply("sirene:1", entry_from_record(good))  # key and content disagree
    with pytest.raises(ValueDecodeError):
        entry_from_record({**good, "outcome": "MAYBE"})
    with pytest.raises(ValueDecodeError):
        entry_from_record({**good, "expires_at": good["stored_at"] - timedelta(seconds=1)})
    with pytest.raises(ValueDecodeError):
        entry_from_record({k: v for k, v in good.items() if k != "registry"})


def test_the_topic_view_fills_the_cache_and_drops_bad_records() -> None:
    from agents.registry.views import RegistryCacheView

    codec = AvroCodec()
    view = RegistryCacheView("127.0.0.1:1", codec)  # never started: records applied by hand
    entry = make_entry("sirene", "212102313", Outcome.FOUND, 100.0, active=True)
    raw = codec.encode("RegistryCacheEntry", entry_record(entry))
    view.view.apply(b"sirene:212102313", raw)
    assert view.cache.get("sirene", "212102313", 200.0) == entry
    view.view.apply(b"sirene:999999999", raw)  # key and entry disagree: dropped, logged
    assert view.cache.get("sirene", "999999999", 200.0) is None
    view.view.apply(b"sirene:212102313", None)
    assert len(view.cache) == 0

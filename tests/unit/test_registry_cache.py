"""The hub-wide registry cache: expiry per kind of answer, negative caching, the topic view."""

from __future__ import annotations

import pytest

from relais.errors import ValueDecodeError
from relais.registry.cache import (
    DAY,
    HOUR,
    CachePolicy,
    Outcome,
    RegistryCache,
    decode_entry,
    encode_entry,
    make_entry,
)


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


def test_the_topic_view_applies_entries_tombstones_and_keeps_the_newest() -> None:
    writer, reader = RegistryCache(), RegistryCache()
    key, value = writer.put(
        make_entry(
            "sirene",
            "212102313",
            Outcome.FOUND,
            10.0,
            active=True,
            payload={"name": "COMMUNE DE DIJON", "legal_category": "7210"},
        )
    )
    assert key == "sirene:212102313"
    reader.apply(key, value)
    entry = reader.get("sirene", "212102313", 20.0)
    assert entry is not None and entry.payload["name"] == "COMMUNE DE DIJON"
    _, older = RegistryCache().put(make_entry("sirene", "212102313", Outcome.NOT_FOUND, 5.0))
    reader.apply(key, older)  # a late, older record does not replace the newer one
    assert reader.get("sirene", "212102313", 20.0) == entry
    reader.apply(key, None)
    assert reader.get("sirene", "212102313", 20.0) is None and len(reader) == 0


def test_hostile_cache_records_are_refused() -> None:
    cache = RegistryCache()
    with pytest.raises(ValueDecodeError):
        cache.apply("sirene:1", b"not json")
    with pytest.raises(ValueDecodeError):
        cache.apply("sirene:1", b"x" * 20_000)
    _, value = RegistryCache().put(make_entry("sirene", "2", Outcome.NOT_FOUND, 0.0))
    with pytest.raises(ValueDecodeError):
        cache.apply("sirene:1", value)  # key and content disagree
    with pytest.raises(ValueDecodeError):
        decode_entry(
            b'{"registry":"s","identifier":"1","outcome":"maybe","stored_at":0,'
            b'"expires_at":1,"active":null,"payload":{}}'
        )
    with pytest.raises(ValueError):
        encode_entry(make_entry("s", "1", Outcome.FOUND, 0.0, payload={"x": "y" * 20_000}))

"""Deterministic ids: the fast UUIDv5 is the standard one, so ids made before and after
it (on the topics, in the journal, in members' systems) stay the same."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from relais.flows import ids

NAMESPACE = uuid.UUID("6f1c1a7e-4d0b-4f57-9b1e-52656c616973")


@given(st.text(max_size=300))
def test_the_uuid5_is_the_standard_one(name: str) -> None:
    assert ids._uuid5(name) == str(uuid.uuid5(NAMESPACE, name))


def test_ids_already_published_do_not_change() -> None:
    # values computed with uuid.uuid5 before the fast version existed
    flow_id = ids.flow_id_for("213300010", "sub-1")
    assert flow_id == f"213300010-{uuid.uuid5(NAMESPACE, '213300010/sub-1')}"
    assert ids.transition_ids(flow_id, "received") == (
        str(uuid.uuid5(NAMESPACE, f"{flow_id}/notification/received/")),
        str(uuid.uuid5(NAMESPACE, f"{flow_id}/state/received/")),
    )
    assert ids.flow_id_for_unreadable("213300010", "t", 2, 7) == ids.flow_id_for(
        "213300010", "unreadable:t:2:7")
    assert uuid.UUID(ids.event_id_for(flow_id, "x")).version == 5


def test_transition_ids_asked_again_are_the_same_and_not_computed_again() -> None:
    flow_id = ids.flow_id_for("213300010", "sub-remembered")
    before = ids.transition_ids.cache_info()
    first = ids.transition_ids(flow_id, "received", "")
    assert ids.transition_ids(flow_id, "received", "") == first
    after = ids.transition_ids.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 1)
    assert ids.transition_ids(flow_id, "received", "k") != first

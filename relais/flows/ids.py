"""Deterministic ids: the same submission always maps to the same flow, and the same
transition of a flow to the same event id, so a redelivery is recognisable."""

from __future__ import annotations

import functools
import hashlib
import uuid

_NAMESPACE = uuid.UUID("6f1c1a7e-4d0b-4f57-9b1e-52656c616973")
_NAMESPACE_BYTES = _NAMESPACE.bytes


def _uuid5(name: str) -> str:
    """``str(uuid.uuid5(_NAMESPACE, name))`` (RFC 4122 §4.3: SHA-1 of the namespace and the
    name, version 5, variant 10), without building the UUID objects: the ingress makes
    several per record. ``tests/unit/test_flow_ids.py`` checks it against :mod:`uuid`."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode("utf-8"),
                                    usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def flow_id_for(member_siren: str, submission_id: str) -> str:
    """The flow id of a member's submission: ``<siren>-<uuid5>``."""
    return f"{member_siren}-{_uuid5(f'{member_siren}/{submission_id}')}"


def flow_id_for_unreadable(member_siren: str, topic: str, partition: int, offset: int) -> str:
    """The flow id given to a record too broken to carry a submission id."""
    return flow_id_for(member_siren, f"unreadable:{topic}:{partition}:{offset}")


def event_id_for(flow_id: str, *parts: str) -> str:
    """A stable event id for one transition or message of a flow."""
    return _uuid5("/".join((flow_id, *parts)))


@functools.lru_cache(maxsize=4096)
def transition_ids(flow_id: str, state: str, event_key: str = "") -> tuple[str, str]:
    """The ids of one flow transition's two records: (notification id, flow event id).

    The one scheme of :func:`relais.flows.emit.emit`: a UUIDv5 of
    ``<flow id>/notification/<state>/<event key>`` and of
    ``<flow id>/state/<state>/<event key>``. It depends on nothing else (no clock, no
    offset unless the emitter puts one in the key), so a redelivered input produces
    the same ids and the member (or any consumer) drops the repeat; a different state
    or a different event key (a child event such as a prefecture message, a failure
    of another input record) gives different ids.

    Remembered for the last 4,096 transitions: one record's emitter, its notification
    and its forward ask for the same ids (a pure function: remembering changes nothing).
    """
    return (event_id_for(flow_id, "notification", state, event_key),
            event_id_for(flow_id, "state", state, event_key))

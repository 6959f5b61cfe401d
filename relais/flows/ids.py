"""Deterministic ids: the same submission always maps to the same flow, and the same
transition of a flow to the same event id, so a redelivery is recognisable."""

from __future__ import annotations

import uuid

_NAMESPACE = uuid.UUID("6f1c1a7e-4d0b-4f57-9b1e-52656c616973")


def flow_id_for(member_siren: str, submission_id: str) -> str:
    """The flow id of a member's submission: ``<siren>-<uuid5>``."""
    return f"{member_siren}-{uuid.uuid5(_NAMESPACE, f'{member_siren}/{submission_id}')}"


def flow_id_for_unreadable(member_siren: str, topic: str, partition: int, offset: int) -> str:
    """The flow id given to a record too broken to carry a submission id."""
    return flow_id_for(member_siren, f"unreadable:{topic}:{partition}:{offset}")


def event_id_for(flow_id: str, *parts: str) -> str:
    """A stable event id for one transition or message of a flow."""
    return str(uuid.uuid5(_NAMESPACE, "/".join((flow_id, *parts))))

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


def transition_ids(flow_id: str, state: str, event_key: str = "") -> tuple[str, str]:
    """The ids of one flow transition's two records: (notification id, flow event id).

    The one scheme of :func:`relais.flows.emit.emit`: a UUIDv5 of
    ``<flow id>/notification/<state>/<event key>`` and of
    ``<flow id>/state/<state>/<event key>``. It depends on nothing else (no clock, no
    offset unless the emitter puts one in the key), so a redelivered input produces
    the same ids and the member (or any consumer) drops the repeat; a different state
    or a different event key (a child event such as a prefecture message, a failure
    of another input record) gives different ids.
    """
    return (event_id_for(flow_id, "notification", state, event_key),
            event_id_for(flow_id, "state", state, event_key))

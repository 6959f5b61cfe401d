"""Registering members: validate, create the member's topics, publish its registry record."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient

from ops.topics import apply_topics
from relais.api.auth import generate_token, hash_token
from relais.kafka.publisher import Publisher, dataschema_uri
from relais.members.model import Member, TdtSettings, check_registration
from relais.wire.headers import EventHeaders
from topics.catalogue import MEMBERS
from topics.member import member_topics
from topics.spec import TopicSpec


@dataclass(frozen=True)
class Registration:
    """A registered member and its API token (shown once, never stored)."""

    member: Member
    token: str


def new_member(
    siren: str,
    name: str,
    department: str,
    *,
    tdt: TdtSettings | None = None,
    token: str | None = None,
) -> Registration:
    """Validate and build a member record with a fresh token (or the given one)."""
    check_registration(siren, name, department)
    secret = token or generate_token()
    member = Member(
        siren=siren, name=name, department=department, token_sha256=hash_token(secret), tdt=tdt
    )
    return Registration(member, secret)


async def register_members(
    admin: AIOKafkaAdminClient, publisher: Publisher, registrations: list[Registration]
) -> None:
    """Create every member's topics, then publish their registry records.

    Topics first: once the hub sees the registry record, the member's topics exist.
    """
    specs: list[TopicSpec] = []
    for registration in registrations:
        specs.extend(member_topics(registration.member.siren))
    await apply_topics(admin, specs)
    items = [
        (
            r.member.siren,
            r.member.to_record(),
            EventHeaders.new(
                source="/relais/ops/members",
                type="fr.relais.members.Member",
                subject=r.member.siren,
                flow_id=None,
                dataschema=dataschema_uri(publisher.codec, "Member"),
            ),
        )
        for r in registrations
    ]
    await publisher.publish_many(MEMBERS.name, items, schema_name="Member")

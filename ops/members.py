"""Registering members: validate, create the member's topics and Kafka principal, publish its
registry record.

On a cluster with SASL (the local broker by default), each member gets the Kafka
user ``member-<siren>`` with a SCRAM-SHA-512 password generated here and shown
once, and the ACLs of ``relais.kafka.acls.member_acls``: write its submissions
topic, read its notifications topic with consumer groups prefixed
``relais.member.<siren>.``, nothing else. Registering again rotates the password.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace

from aiokafka.admin import AIOKafkaAdminClient

from ops.topics import apply_topics
from relais.api.auth import generate_token, hash_token
from relais.kafka.acls import create_acls, member_acls, member_user, set_scram_passwords
from relais.kafka.publisher import Publisher, dataschema_uri
from relais.kafka.security import KafkaSecurity, security_for
from relais.members.model import Member, TdtSettings, check_registration
from relais.wire.headers import EventHeaders
from topics.catalogue import MEMBERS
from topics.member import member_topics
from topics.spec import TopicSpec


@dataclass(frozen=True)
class Registration:
    """A registered member, its API token and its Kafka password (shown once, never stored)."""

    member: Member
    token: str
    kafka_password: str = ""

    @property
    def kafka_user(self) -> str:
        """The member back-office's SASL user name."""
        return member_user(self.member.siren)


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
    return Registration(member, secret, kafka_password=secrets.token_urlsafe(24))


async def register_members(
    admin: AIOKafkaAdminClient,
    publisher: Publisher,
    registrations: list[Registration],
    *,
    principals: bool | None = None,
) -> None:
    """Create every member's topics and Kafka principal, then publish their registry records.

    Topics first: once the hub sees the registry record, the member's topics exist.
    ``principals`` (default: whether the cluster uses SASL) sets each member's
    SCRAM password and ACLs; ``admin`` must then be connected as a super user.
    """
    specs: list[TopicSpec] = []
    for registration in registrations:
        specs.extend(member_topics(registration.member.siren))
    await apply_topics(admin, specs)
    if principals is None:
        principals = security_for(publisher.bootstrap_servers).sasl
    if principals:
        await grant_members(admin, registrations)
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


def member_security(registration: Registration, bootstrap_servers: str) -> KafkaSecurity:
    """How the member's back-office connects: the cluster's protocol, the member's user."""
    cluster = security_for(bootstrap_servers)
    if not cluster.sasl:
        return cluster
    return replace(cluster, username=registration.kafka_user,
                   password=registration.kafka_password)


async def grant_members(admin: AIOKafkaAdminClient, registrations: list[Registration]) -> None:
    """Set each member's SCRAM password (creating or rotating it) and add its ACLs: two
    requests whatever the number of members."""
    bindings = []
    passwords = {}
    for registration in registrations:
        if not registration.kafka_password:
            raise ValueError(f"member {registration.member.siren} has no Kafka password")
        passwords[registration.kafka_user] = registration.kafka_password
        bindings.extend(member_acls(registration.member.siren))
    await set_scram_passwords(admin, passwords)
    await create_acls(admin, bindings)

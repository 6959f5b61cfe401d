"""A member's compromised back-office against the secured broker (issue 13, F3 and F9).

Two members, A and B, are registered on the session's real broker (SASL/SCRAM-SHA-512,
``StandardAuthorizer``, no ACL = denied) exactly as ``relais members add`` does it. A
connects with its own Kafka user and password and tries what an attacker holding them
would: each refusal is the broker's, asserted by the aiokafka error class it becomes.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import NewTopic
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
    for_code,
)

from hub.flows import FLOWS
from ops.kafka.broker import LocalBroker
from ops.members import Registration, member_security, new_member, register_members
from ops.topics import apply_topics
from relais.errors import InfrastructureError
from relais.identifiers import luhn_check_digit
from relais.kafka import clients
from relais.kafka.acls import (
    AclBinding,
    Operation,
    Pattern,
    Resource,
    create_acls,
    member_group_prefix,
    set_scram_password,
)
from relais.kafka.admin import admin_client
from relais.kafka.publisher import Publisher
from relais.kafka.security import HUB_USER, KafkaSecurity, hub_security, security_for
from relais.settings import Settings
from relais.wire.avro_codec import AvroCodec
from topics.acts import ACTS_SUBMITTED
from topics.catalogue import MEMBERS, hub_topics
from topics.member import notifications, submissions

pytestmark = [pytest.mark.integration, pytest.mark.hostile]
TIMEOUT_MS = 10_000
REPO = Path(__file__).resolve().parents[2]


def random_siren() -> str:
    payload = f"{random.randrange(10**7, 10**8)}"
    return payload + luhn_check_digit(payload)


@dataclass(frozen=True)
class Member:
    registration: Registration
    security: KafkaSecurity
    """The cluster's protocol and CA, the member's own user (``member_security``)."""

    @property
    def siren(self) -> str:
        return self.registration.member.siren

    @property
    def group(self) -> str:
        return f"{member_group_prefix(self.siren)}back-office"


async def register(bootstrap: str, registrations: list[Registration]) -> None:
    publisher = Publisher(bootstrap, AvroCodec(), client_id="hostile-tests")
    await publisher.start()
    try:
        async with admin_client(bootstrap) as admin:
            await apply_topics(admin, hub_topics("relais-hub", FLOWS))
            await register_members(admin, publisher, registrations, principals=True)
    finally:
        await publisher.stop()


@pytest.fixture
async def members(kafka_bootstrap: str) -> AsyncIterator[tuple[Member, Member]]:
    if not security_for(kafka_bootstrap).sasl:
        pytest.fail(f"the cluster at {kafka_bootstrap} does not use SASL: these tests need "
                    "the secured broker (RELAIS_KAFKA_AUTH=on) or a SASL cluster")
    a = new_member(random_siren(), "Commune A", "021")
    b = new_member(random_siren(), "Commune B", "021")
    await register(kafka_bootstrap, [a, b])
    yield (Member(a, member_security(a, kafka_bootstrap)),
           Member(b, member_security(b, kafka_bootstrap)))


async def send_as(bootstrap: str, member: Member, topic: str) -> None:
    producer = clients.producer(bootstrap, security=member.security, enable_idempotence=True,
                                request_timeout_ms=TIMEOUT_MS)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"probe", key=b"probe")
    finally:
        await producer.stop()


async def read_as(
    bootstrap: str, security: KafkaSecurity, topic: str, group: str, wanted: int = 1
) -> list[bytes]:
    consumer: AIOKafkaConsumer = clients.consumer(
        topic, bootstrap_servers=bootstrap, security=security, group_id=group,
        auto_offset_reset="earliest", enable_auto_commit=False,
    )
    try:
        await consumer.start()
        values: list[bytes] = []
        async with asyncio.timeout(30):
            while len(values) < wanted:
                batches = await consumer.getmany(timeout_ms=1000)
                values += [r.value for records in batches.values() for r in records]
        await consumer.commit()
        return values
    finally:
        await consumer.stop()


async def write_as_admin(bootstrap: str, topic: str, value: bytes) -> None:
    producer = clients.producer(bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()


async def test_a_member_writes_its_submissions_and_reads_its_notifications_with_its_group(
    kafka_bootstrap: str, members: tuple[Member, Member]
) -> None:
    a, _ = members
    await send_as(kafka_bootstrap, a, submissions(a.siren).name)
    await write_as_admin(kafka_bootstrap, notifications(a.siren).name, b"for A")
    values = await read_as(kafka_bootstrap, a.security, notifications(a.siren).name, a.group)
    assert values == [b"for A"]


async def test_a_member_cannot_read_another_members_notifications(
    kafka_bootstrap: str, members: tuple[Member, Member]
) -> None:
    a, b = members
    await write_as_admin(kafka_bootstrap, notifications(b.siren).name, b"for B only")
    with pytest.raises(TopicAuthorizationFailedError):
        await read_as(kafka_bootstrap, a.security, notifications(b.siren).name, a.group)


async def test_a_member_cannot_write_another_members_submissions(
    kafka_bootstrap: str, members: tuple[Member, Member]
) -> None:
    a, b = members
    with pytest.raises(TopicAuthorizationFailedError):
        await send_as(kafka_bootstrap, a, submissions(b.siren).name)


@pytest.mark.parametrize("topic", [MEMBERS.name, ACTS_SUBMITTED.name])
async def test_a_member_cannot_read_the_registry_or_internal_topics(
    kafka_bootstrap: str, members: tuple[Member, Member], topic: str
) -> None:
    a, _ = members
    with pytest.raises(TopicAuthorizationFailedError):
        await read_as(kafka_bootstrap, a.security, topic, a.group)


async def test_a_member_cannot_write_its_own_notifications_or_the_registry(
    kafka_bootstrap: str, members: tuple[Member, Member]
) -> None:
    a, _ = members
    for topic in (notifications(a.siren).name, MEMBERS.name):
        with pytest.raises(TopicAuthorizationFailedError):
            await send_as(kafka_bootstrap, a, topic)


async def test_a_member_cannot_use_a_group_outside_its_prefix(
    kafka_bootstrap: str, members: tuple[Member, Member]
) -> None:
    a, b = members
    await write_as_admin(kafka_bootstrap, notifications(a.siren).name, b"for A")
    for group in ("relais-hub-ingress", b.group):
        with pytest.raises(GroupAuthorizationFailedError):
            await read_as(kafka_bootstrap, a.security, notifications(a.siren).name, group)


async def test_a_member_cannot_create_topics(
    kafka_bootstrap: str, members: tuple[Member, Member]
) -> None:
    a, _ = members
    name = f"{member_group_prefix(a.siren)}extra-{uuid.uuid4().hex[:8]}"
    admin = clients.admin(kafka_bootstrap, security=a.security, request_timeout_ms=TIMEOUT_MS)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(name, 1, 1)])
        listed = await admin.list_topics()
    finally:
        await admin.close()
    [(topic, code, *_)] = response.topic_errors
    assert topic == name
    assert for_code(code) is TopicAuthorizationFailedError
    # A member does not even see the other topics: not B's, not the hub's.
    assert set(listed) <= {submissions(a.siren).name, notifications(a.siren).name}


async def test_the_hub_user_reads_the_registry_but_creates_no_topic(
    kafka_bootstrap: str, members: tuple[Member, Member], settings_for_tests: Settings
) -> None:
    hub = hub_security(settings_for_tests)
    assert hub.username == HUB_USER
    a, _ = members
    admin = clients.admin(kafka_bootstrap, security=hub, request_timeout_ms=TIMEOUT_MS)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(f"relais.hub-{uuid.uuid4().hex}", 1, 1)])
        listed = await admin.list_topics()
    finally:
        await admin.close()
    [(_, code, *_)] = response.topic_errors
    assert for_code(code) is TopicAuthorizationFailedError
    assert {MEMBERS.name, submissions(a.siren).name} <= set(listed)
    records = await read_as(kafka_bootstrap, hub, MEMBERS.name, "relais-hub-hostile-probe")
    assert records


def broker_log(broker: LocalBroker | None) -> str:
    if broker is None:  # an external cluster: its log is not ours to read
        return ""
    return broker.log_path.read_text(encoding="utf-8", errors="replace")


@pytest.mark.parametrize("who", ["member", "hub"])
async def test_neither_a_member_nor_the_hub_can_grant_itself_more(
    kafka_bootstrap: str, members: tuple[Member, Member], settings_for_tests: Settings, who: str
) -> None:
    """No ACL of its own, no password of another user: only relais-admin may."""
    a, b = members
    security = a.security if who == "member" else hub_security(settings_for_tests)
    grab = AclBinding(f"User:{security.username}", Resource.TOPIC, "relais.", Pattern.PREFIXED,
                      Operation.READ)
    admin = clients.admin(kafka_bootstrap, security=security, request_timeout_ms=TIMEOUT_MS)
    await admin.start()
    try:
        with pytest.raises(InfrastructureError, match=r"ClusterAuthorizationFailedError \(31\)"):
            await create_acls(admin, [grab])
        with pytest.raises(InfrastructureError, match=r"ClusterAuthorizationFailedError \(31\)"):
            await set_scram_password(admin, b.registration.kafka_user, "taken-over")
    finally:
        await admin.close()
    # B's password still works.
    await send_as(kafka_bootstrap, b, submissions(b.siren).name)


async def test_a_wrong_password_or_no_authentication_is_refused(
    kafka_bootstrap: str, kafka_broker: LocalBroker | None, members: tuple[Member, Member]
) -> None:
    """aiokafka reports a refused handshake as a failure to bootstrap; the broker's log
    says it was the credentials."""
    a, _ = members
    wrong = replace(a.security, password="not-the-password")
    before = broker_log(kafka_broker).count("invalid credentials with SASL mechanism SCRAM")
    for security in (wrong, KafkaSecurity()):
        producer = clients.producer(kafka_bootstrap, security=security,
                                    request_timeout_ms=5_000)
        with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
            await asyncio.wait_for(producer.start(), 30)
        await producer.stop()
    if kafka_broker is not None:
        after = broker_log(kafka_broker).count("invalid credentials with SASL mechanism SCRAM")
        assert after > before


async def test_registering_again_rotates_the_kafka_password(
    kafka_bootstrap: str, members: tuple[Member, Member]
) -> None:
    a, _ = members
    rotated = new_member(a.siren, "Commune A", "021")
    await register(kafka_bootstrap, [rotated])
    await send_as(kafka_bootstrap, Member(rotated, member_security(rotated, kafka_bootstrap)),
                  submissions(a.siren).name)
    producer = clients.producer(kafka_bootstrap, security=a.security, request_timeout_ms=5_000)
    with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
        await asyncio.wait_for(producer.start(), 30)
    await producer.stop()


def members_add(bootstrap: str, data_dir: Path, siren: str, *extra: str) -> dict[str, str]:
    """Run `relais members add` as the operator does; the lines it printed, by label."""
    env = {**os.environ, "RELAIS_KAFKA_BOOTSTRAP": bootstrap, "RELAIS_DATA_DIR": str(data_dir),
           "RELAIS_LOG_FORMAT": "console", **security_for(bootstrap).as_env()}
    done = subprocess.run(
        [sys.executable, "-m", "hub.cli.main", "members", "add", siren, "--name", "Commune C",
         "--department", "021", *extra],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    printed = {}
    for line in done.stdout.splitlines():
        label, sep, value = line.strip().partition(": ")
        if sep:
            printed[label] = value.strip()
    return printed


async def test_members_add_prints_a_kafka_user_that_works_and_force_rotates_it(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    await register(kafka_bootstrap, [])
    siren = random_siren()
    first = members_add(kafka_bootstrap, tmp_path, siren)
    assert first["Kafka user"] == f"member-{siren} (SASL SCRAM-SHA-512)"
    assert first["consumer group"] == f"relais.member.{siren}.<any suffix>"
    password = first["Kafka password (shown once, store it now)"]
    cluster = security_for(kafka_bootstrap)
    member = replace(cluster, username=f"member-{siren}", password=password)
    registration = new_member(siren, "Commune C", "021")  # only its SIREN is used below
    await send_as(kafka_bootstrap, Member(registration, member), submissions(siren).name)

    second = members_add(kafka_bootstrap, tmp_path, siren, "--force")
    rotated = second["Kafka password (shown once, store it now)"]
    assert rotated != password
    await send_as(kafka_bootstrap, Member(registration, replace(member, password=rotated)),
                  submissions(siren).name)
    old = clients.producer(kafka_bootstrap, security=member, request_timeout_ms=5_000)
    with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
        await asyncio.wait_for(old.start(), 30)
    await old.stop()

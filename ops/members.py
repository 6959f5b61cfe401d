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
from collections.abc import Mapping
from dataclasses import dataclass, replace

from aiokafka.admin import AIOKafkaAdminClient

from ops.topics import apply_topics
from relais.api.auth import generate_token, hash_token
from relais.kafka.acls import create_acls, member_acls, member_user, set_scram_passwords
from relais.kafka.publisher import Publisher, dataschema_uri
from relais.kafka.security import KafkaSecurity, security_for
from relais.members.model import TDT, WARN, Member, PartnerAccount, check_registration
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
    tdt: PartnerAccount | None = None,
    accounts: Mapping[str, PartnerAccount] | None = None,
    token: str | None = None,
    contractor_check: str = WARN,
    legal_category: str | None = None,
    commune: str | None = None,
    commune_code: str | None = None,
) -> Registration:
    """Validate and build a member record with a fresh token (or the given one).

    ``accounts`` are the member's partner accounts by partner name; ``tdt`` is a
    shorthand for ``accounts["tdt"]`` (giving both is a ValueError).
    ``contractor_check`` is ``warn`` or ``refuse`` (docs/registries.md);
    ``legal_category``, ``commune`` and ``commune_code`` are what Sirene says of the unit
    (:func:`registry_identity`), stored on the record.
    """
    check_registration(siren, name, department, contractor_check)
    merged = dict(accounts or {})
    if tdt is not None:
        if TDT in merged:
            raise ValueError(f"member {siren}: the TdT account is given twice")
        merged[TDT] = tdt
    secret = token or generate_token()
    member = Member(
        siren=siren, name=name, department=department, token_sha256=hash_token(secret),
        accounts=merged, contractor_check=contractor_check, legal_category=legal_category,
        commune=commune, commune_code=commune_code,
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


ACCOUNT_FIELDS = frozenset({"login", "password_env", "cert_file", "key_file", "key_password_env",
                            "ca_file", "api_key_env", "token_env"})
"""Account settings an ``--account-option partner.<setting>=value`` sets; other keys are options."""


def accounts_from_specs(accounts: list[str], options: list[str]) -> dict[str, PartnerAccount]:
    """Partner accounts from ``partner=url`` specs and ``partner.key=value`` settings.

    A key naming an account setting (:data:`ACCOUNT_FIELDS`) sets it; any other key
    goes into the account's ``options`` (``archive.tenant=1``,
    ``parapheur.type=Actes``, ``sirene.timeout.read=20``). Raises ValueError with a
    one-line reason for a malformed spec, a partner given twice or a setting of a
    partner without ``partner=url``.
    """
    urls: dict[str, str] = {}
    for spec in accounts:
        partner, sep, url = spec.partition("=")
        partner = partner.strip()
        if not sep or not partner or not url.strip():
            raise ValueError(f"--account {spec!r}: expected partner=url")
        if partner in urls:
            raise ValueError(f"--account: partner {partner!r} given twice")
        urls[partner] = url.strip()
    settings: dict[str, dict[str, str]] = {p: {} for p in urls}
    extras: dict[str, dict[str, str]] = {p: {} for p in urls}
    for spec in options:
        name, sep, value = spec.partition("=")
        partner, dot, key = name.strip().partition(".")
        if not sep or not dot or not partner or not key:
            raise ValueError(f"--account-option {spec!r}: expected partner.key=value")
        if partner not in urls:
            raise ValueError(f"--account-option {spec.split('=')[0]!r}: no --account "
                             f"{partner}=url")
        (settings if key in ACCOUNT_FIELDS else extras)[partner][key] = value
    return {
        partner: PartnerAccount(url=url, options=extras[partner], **settings[partner])
        for partner, url in urls.items()
    }


@dataclass(frozen=True)
class RegistryIdentity:
    """What Sirene says of a member's own SIREN (``relais members add``)."""

    name: str
    legal_category: str | None
    commune: str | None
    commune_code: str | None
    active: bool

    @property
    def department(self) -> str | None:
        """The department of the commune (code officiel géographique): ``21231`` → ``021``,
        ``2A004`` → ``02A``, ``97411`` → ``974``."""
        code = self.commune_code or ""
        if len(code) != 5:
            return None
        return code[:3] if code.startswith("97") else f"0{code[:2]}"


async def registry_identity(
    bootstrap_servers: str, siren: str, *, timeout: float = 30.0
) -> RegistryIdentity | None:
    """Sirene's answer for ``siren`` through the hub's look-up service (its cache and the
    cluster-wide quota); None when not found, not diffusible or not answered in time. A
    unit has no address in Sirene: the commune is its head office's (a second look-up)."""
    from agents.registry.ask import ask_registry
    from relais.registry.cache import Outcome
    from relais.wire.avro_codec import AvroCodec

    codec = AvroCodec()
    asked = await ask_registry(bootstrap_servers, codec, siren, timeout=timeout)
    entry = asked.entry
    if entry is None or entry.outcome is not Outcome.FOUND or not entry.payload.get("name"):
        return None
    payload = dict(entry.payload)
    head_office = payload.get("head_office_siret")
    if head_office and not payload.get("commune_code"):
        office = (await ask_registry(bootstrap_servers, codec, head_office,
                                     timeout=timeout)).entry
        if office is not None and office.outcome is Outcome.FOUND:
            payload.setdefault("commune", office.payload.get("commune", ""))
            payload.setdefault("commune_code", office.payload.get("commune_code", ""))
    return RegistryIdentity(
        name=payload["name"], legal_category=payload.get("legal_category"),
        commune=payload.get("commune") or None, commune_code=payload.get("commune_code") or None,
        active=entry.active is not False,
    )

"""Principals and ACLs on the broker, over the Kafka protocol.

aiokafka 0.14's admin client has no method for ACLs or SCRAM credentials, but
it sends any request: this module defines ``CreateAcls`` v1 (multiple
bindings per request, prefixed patterns) and ``AlterUserScramCredentials`` v0
(KIP-554; the client salts and hashes the password, the broker stores the
result) and sends them with an admin client the caller has started as a
principal allowed to (the cluster's super user).

The ACLs of Relais's principals:

* a **member** ``User:member-<siren>``: WRITE and DESCRIBE on its submissions
  topic, READ and DESCRIBE on its notifications topic (literal names), READ and
  DESCRIBE on consumer groups prefixed ``relais.member.<siren>.``; nothing
  else, so no topic creation, no other topic, no internal topic;
* the **hub** ``User:relais-hub`` (worker, API): READ, WRITE, DESCRIBE and
  DESCRIBE_CONFIGS on topics prefixed ``relais.`` and ``relais-`` (faust's
  ``<app id>-__assignor-__leader``), READ and DESCRIBE on groups
  and WRITE and DESCRIBE on transactional ids prefixed ``relais-`` (every app
  id such as ``relais-hub``, its stages' ``relais-hub-<stage>``, the test
  hubs' ``relais-test-…``) and with its app id when that has another prefix,
  IDEMPOTENT_WRITE on the cluster; no topic creation. Members' groups are
  prefixed ``relais.member.`` (a dot), which ``relais-`` does not cover;
* the **admin** ``User:relais-admin`` (operator tools) is a super user.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeAlias

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    Array,
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    String,
    TaggedFields,
)

from relais.errors import ConfigurationError, InfrastructureError
from topics.member import member_prefix, notifications, submissions

MEMBER_USER_PREFIX = "member-"
SCRAM_ITERATIONS = 8192


class Resource(IntEnum):
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5


class Pattern(IntEnum):
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DESCRIBE = 8
    DESCRIBE_CONFIGS = 10
    IDEMPOTENT_WRITE = 12


ALLOW = 3
SCRAM_MECHANISMS = {"SCRAM-SHA-256": (1, "sha256"), "SCRAM-SHA-512": (2, "sha512")}


@dataclass(frozen=True)
class AclBinding:
    """One ALLOW rule: ``principal`` may ``operation`` on a resource, from any host."""

    principal: str
    resource: Resource
    name: str
    pattern: Pattern
    operation: Operation

    def describe(self) -> str:
        return (f"{self.principal} {self.operation.name} {self.resource.name} "
                f"{self.pattern.name.lower()} {self.name!r}")


def member_user(siren: str) -> str:
    """The SASL user name of a member's back-office."""
    return f"{MEMBER_USER_PREFIX}{siren}"


def member_group_prefix(siren: str) -> str:
    """The prefix of the consumer groups a member's back-office may use."""
    return member_prefix(siren)  # the same prefix as its topics; another resource type


def member_acls(siren: str) -> list[AclBinding]:
    principal = f"User:{member_user(siren)}"
    sub, notif = submissions(siren).name, notifications(siren).name
    return [
        AclBinding(principal, Resource.TOPIC, sub, Pattern.LITERAL, Operation.WRITE),
        AclBinding(principal, Resource.TOPIC, sub, Pattern.LITERAL, Operation.DESCRIBE),
        AclBinding(principal, Resource.TOPIC, notif, Pattern.LITERAL, Operation.READ),
        AclBinding(principal, Resource.TOPIC, notif, Pattern.LITERAL, Operation.DESCRIBE),
        AclBinding(principal, Resource.GROUP, member_group_prefix(siren), Pattern.PREFIXED,
                   Operation.READ),
        AclBinding(principal, Resource.GROUP, member_group_prefix(siren), Pattern.PREFIXED,
                   Operation.DESCRIBE),
    ]


HUB_GROUP_PREFIX = "relais-"


def hub_acls(user: str, app_id: str) -> list[AclBinding]:
    principal = f"User:{user}"
    topic_ops = (Operation.READ, Operation.WRITE, Operation.DESCRIBE, Operation.DESCRIBE_CONFIGS)
    bindings = [AclBinding(principal, Resource.TOPIC, "relais.", Pattern.PREFIXED, op)
                for op in topic_ops]
    prefixes = [HUB_GROUP_PREFIX]
    if not app_id.startswith(HUB_GROUP_PREFIX):
        prefixes.append(app_id)
    for prefix in prefixes:
        # faust's leader topic, <app id>-__assignor-__leader (created by `relais topics apply`)
        bindings += [AclBinding(principal, Resource.TOPIC, prefix, Pattern.PREFIXED, op)
                     for op in topic_ops]
        bindings += [AclBinding(principal, Resource.GROUP, prefix, Pattern.PREFIXED, op)
                     for op in (Operation.READ, Operation.DESCRIBE)]
        bindings += [AclBinding(principal, Resource.TRANSACTIONAL_ID, prefix, Pattern.PREFIXED,
                                op) for op in (Operation.WRITE, Operation.DESCRIBE)]
    bindings.append(AclBinding(principal, Resource.CLUSTER, "kafka-cluster", Pattern.LITERAL,
                               Operation.IDEMPOTENT_WRITE))
    return bindings


# --------------------------------------------------------------- CreateAcls v1


class _CreateAclsResponse_v1(Response):  # type: ignore[misc]
    API_KEY = 30
    API_VERSION = 1
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("results", Array(("error_code", Int16), ("error_message", String("utf-8")))),
    )


class _CreateAclsRequest_v1(RequestStruct):  # type: ignore[misc]
    API_KEY = 30
    API_VERSION = 1
    RESPONSE_TYPE = _CreateAclsResponse_v1
    SCHEMA = Schema(
        (
            "creations",
            Array(
                ("resource_type", Int8),
                ("resource_name", String("utf-8")),
                ("resource_pattern_type", Int8),
                ("principal", String("utf-8")),
                ("host", String("utf-8")),
                ("operation", Int8),
                ("permission_type", Int8),
            ),
        )
    )


_CreateAclsStruct: TypeAlias = _CreateAclsRequest_v1


class _CreateAcls(Request[_CreateAclsStruct]):  # type: ignore[misc]
    API_KEY = 30

    def __init__(self, bindings: list[AclBinding]) -> None:
        self._rows = [
            (int(b.resource), b.name, int(b.pattern), b.principal, "*", int(b.operation), ALLOW)
            for b in bindings
        ]

    def build(self, request_struct_class: type[_CreateAclsStruct]) -> _CreateAclsStruct:
        return request_struct_class(self._rows)


# ------------------------------------------------- AlterUserScramCredentials v0


class _AlterScramResponse_v0(Response):  # type: ignore[misc]
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _AlterScramRequest_v0(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = _AlterScramResponse_v0
    SCHEMA = Schema(
        (
            "deletions",
            CompactArray(
                ("name", CompactString("utf-8")), ("mechanism", Int8), ("tags", TaggedFields)
            ),
        ),
        (
            "upsertions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


_AlterScramStruct: TypeAlias = _AlterScramRequest_v0


class _AlterScram(Request[_AlterScramStruct]):  # type: ignore[misc]
    API_KEY = 51

    def __init__(self, upsertions: list[tuple[str, int, int, bytes, bytes, dict[int, bytes]]]):
        self._upsertions = upsertions

    def build(self, request_struct_class: type[_AlterScramStruct]) -> _AlterScramStruct:
        return request_struct_class([], self._upsertions, {})


def salted_password(password: str, salt: bytes, iterations: int, mechanism: str) -> bytes:
    """SCRAM's ``Hi(password, salt, i)`` (RFC 5802), i.e. PBKDF2-HMAC."""
    _, digest = SCRAM_MECHANISMS[mechanism]
    return hashlib.pbkdf2_hmac(digest, password.encode("utf-8"), salt, iterations)


def _error(code: int, message: str | None) -> str:
    """``ClusterAuthorizationFailedError (31): …``: aiokafka's name for the broker's code."""
    return f"{for_code(code).__name__} ({code}): {message or ''}".rstrip(": ")


async def set_scram_passwords(
    admin: AIOKafkaAdminClient, passwords: dict[str, str], mechanism: str = "SCRAM-SHA-512"
) -> None:
    """Create or replace each user's SCRAM credential in one request (a rotation
    invalidates the old password at once)."""
    if mechanism not in SCRAM_MECHANISMS:
        raise ConfigurationError(f"SCRAM mechanism {mechanism!r} is not one of "
                                 f"{', '.join(SCRAM_MECHANISMS)}")
    if not passwords:
        return
    code, _ = SCRAM_MECHANISMS[mechanism]
    upsertions: list[tuple[str, int, int, bytes, bytes, dict[int, bytes]]] = []
    for user, password in passwords.items():
        salt = secrets.token_bytes(32)
        hashed = salted_password(password, salt, SCRAM_ITERATIONS, mechanism)
        upsertions.append((user, code, SCRAM_ITERATIONS, salt, hashed, {}))
    response = await admin._send_request(_AlterScram(upsertions))
    failed = [f"{row[0]}: {_error(row[1], row[2])}" for row in response.results if row[1] != 0]
    if failed:
        raise InfrastructureError("the broker refused SCRAM credentials: " + "; ".join(failed))


async def set_scram_password(
    admin: AIOKafkaAdminClient, user: str, password: str, mechanism: str = "SCRAM-SHA-512"
) -> None:
    """Create or replace ``user``'s SCRAM credential."""
    await set_scram_passwords(admin, {user: password}, mechanism)


async def create_acls(admin: AIOKafkaAdminClient, bindings: list[AclBinding]) -> None:
    """Add ``bindings`` (adding an existing binding again is a no-op for the broker)."""
    if not bindings:
        return
    response = await admin._send_request(_CreateAcls(bindings))
    failed = [f"{binding.describe()}: {_error(code, message)}"
              for binding, (code, message) in zip(bindings, response.results, strict=True)
              if code != 0]
    if failed:
        raise InfrastructureError("the broker refused ACLs: " + "; ".join(failed))

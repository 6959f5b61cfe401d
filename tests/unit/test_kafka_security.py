"""Client security settings and the ACLs Relais gives its principals (no broker)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relais.errors import ConfigurationError
from relais.kafka.acls import (
    AclBinding,
    Operation,
    Pattern,
    Resource,
    hub_acls,
    member_acls,
    member_group_prefix,
    member_user,
    salted_password,
)
from relais.kafka.security import (
    KafkaSecurity,
    forget,
    hub_security,
    remember,
    security_for,
    security_from_settings,
)
from relais.settings import Settings


def write_credentials(data_dir: Path) -> None:
    path = data_dir / "kafka" / "credentials.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"users": {"relais-admin": "a-pw", "relais-hub": "h-pw"}}))


def test_local_broker_defaults_to_scram_with_its_generated_admin(tmp_path: Path) -> None:
    write_credentials(tmp_path)
    security = security_from_settings(Settings.from_env({}, data_dir=tmp_path))
    assert security == KafkaSecurity("SASL_PLAINTEXT", "SCRAM-SHA-512", "relais-admin", "a-pw")
    assert security.client_options() == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "relais-admin",
        "sasl_plain_password": "a-pw",
    }
    hub = hub_security(Settings.from_env({}, data_dir=tmp_path))
    assert (hub.username, hub.password) == ("relais-hub", "h-pw")
    assert hub.as_env()["RELAIS_KAFKA_USERNAME"] == "relais-hub"


def test_local_broker_without_credentials_says_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="relais kafka up"):
        security_from_settings(Settings.from_env({}, data_dir=tmp_path))


def test_auth_off_or_external_cluster_default_to_plaintext(tmp_path: Path) -> None:
    off = Settings.from_env({"RELAIS_KAFKA_AUTH": "off"}, data_dir=tmp_path)
    assert security_from_settings(off) == KafkaSecurity()
    external = Settings.from_env({"RELAIS_KAFKA_BOOTSTRAP": "kafka:9092"}, data_dir=tmp_path)
    assert security_from_settings(external).client_options() == {
        "security_protocol": "PLAINTEXT"
    }


def test_an_existing_secured_cluster_is_configured_by_environment(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    env = {
        "RELAIS_KAFKA_BOOTSTRAP": "kafka.example:9094",
        "RELAIS_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "RELAIS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "RELAIS_KAFKA_USERNAME": "hub",
        "RELAIS_KAFKA_PASSWORD": "s3cret",
        "RELAIS_KAFKA_CA_FILE": str(ca),
    }
    security = security_from_settings(Settings.from_env(env))
    assert (security.protocol, security.mechanism, security.username, security.ca_file) == (
        "SASL_SSL", "SCRAM-SHA-256", "hub", str(ca)
    )
    assert security.sasl and security.tls
    rows = {row[0]: row[1] for row in Settings.from_env(env).describe()}
    assert rows["RELAIS_KAFKA_PASSWORD"] == "****"
    assert "s3cret" not in repr(Settings.from_env(env))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"protocol": "SASL_PLAINTEXT", "username": "u"}, "RELAIS_KAFKA_PASSWORD"),
        ({"protocol": "TLS"}, "RELAIS_KAFKA_SECURITY_PROTOCOL"),
        ({"protocol": "SASL_PLAINTEXT", "mechanism": "GSSAPI", "username": "u",
          "password": "p"}, "RELAIS_KAFKA_SASL_MECHANISM"),
    ],
)
def test_incomplete_or_unknown_security_is_a_configuration_error(
    kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        KafkaSecurity(**kwargs)


def test_remembered_security_wins_for_its_bootstrap_only() -> None:
    member = KafkaSecurity("SASL_PLAINTEXT", "SCRAM-SHA-512", "member-213100001", "pw")
    remember("127.0.0.1:1", member)
    try:
        assert security_for("127.0.0.1:1") is member
    finally:
        forget("127.0.0.1:1")


def test_a_member_may_write_its_submissions_and_read_its_notifications_only() -> None:
    principal = "User:member-213100001"
    assert member_user("213100001") == "member-213100001"
    assert set(member_acls("213100001")) == {
        AclBinding(principal, Resource.TOPIC, "relais.member.213100001.submissions",
                   Pattern.LITERAL, Operation.WRITE),
        AclBinding(principal, Resource.TOPIC, "relais.member.213100001.submissions",
                   Pattern.LITERAL, Operation.DESCRIBE),
        AclBinding(principal, Resource.TOPIC, "relais.member.213100001.notifications",
                   Pattern.LITERAL, Operation.READ),
        AclBinding(principal, Resource.TOPIC, "relais.member.213100001.notifications",
                   Pattern.LITERAL, Operation.DESCRIBE),
        AclBinding(principal, Resource.GROUP, member_group_prefix("213100001"),
                   Pattern.PREFIXED, Operation.READ),
        AclBinding(principal, Resource.GROUP, member_group_prefix("213100001"),
                   Pattern.PREFIXED, Operation.DESCRIBE),
    }


def test_the_hub_gets_no_topic_creation_and_no_all() -> None:
    bindings = hub_acls("relais-hub", "relais-hub")
    operations = {b.operation for b in bindings}
    assert Operation.CREATE not in operations and Operation.ALL not in operations
    assert {(b.resource, b.name, b.pattern) for b in bindings} == {
        (Resource.TOPIC, "relais.", Pattern.PREFIXED),
        (Resource.TOPIC, "relais-", Pattern.PREFIXED),
        (Resource.GROUP, "relais-", Pattern.PREFIXED),
        (Resource.TRANSACTIONAL_ID, "relais-", Pattern.PREFIXED),
        (Resource.CLUSTER, "kafka-cluster", Pattern.LITERAL),
    }
    # Members' groups (relais.member.<siren>.…) are not the hub's.
    assert not any(member_group_prefix("213100001").startswith(b.name)
                   for b in bindings if b.resource is Resource.GROUP)
    other = {(b.resource, b.name) for b in hub_acls("relais-hub", "gip-hub")}
    assert {(Resource.GROUP, "gip-hub"), (Resource.TRANSACTIONAL_ID, "gip-hub")} <= other


def test_scram_salted_password_is_pbkdf2_as_rfc_7677_specifies() -> None:
    # RFC 7677 section 3's exchange: user "user", password "pencil", this salt, 4096
    # iterations; its ClientKey = HMAC(SaltedPassword, "Client Key") and StoredKey =
    # SHA-256(ClientKey) give the ClientProof of the RFC's client-final-message.
    import base64
    import hashlib
    import hmac

    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    salted = salted_password("pencil", salt, 4096, "SCRAM-SHA-256")
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    auth_message = (
        b"n=user,r=rOprNGfwEbeRWgbNEkqO,"
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    )
    signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    assert base64.b64encode(proof) == b"dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="

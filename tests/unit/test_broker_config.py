"""The local broker's generated configuration, its pinned jars and its guards (no JVM)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree

from ops.kafka.broker import (
    KAFKA_VERSION,
    LOG4J_CONFIG_PATH,
    POM_PATH,
    LocalBroker,
    new_cluster_id,
    render_server_properties,
)
from relais.errors import ConfigurationError
from relais.settings import Settings

POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def parse_properties(text: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        assert sep, f"not a property line: {line!r}"
        assert key not in result, f"duplicate property {key}"
        result[key] = value
    return result


def settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings.from_env(environ={}, data_dir=tmp_path, **overrides)


def test_server_properties_describe_a_single_kraft_node_on_loopback(tmp_path: Path) -> None:
    props = parse_properties(
        render_server_properties(
            settings(tmp_path, kafka_port=19999, kafka_controller_port=19998), tmp_path / "data"
        )
    )

    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19998"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19999,CONTROLLER://127.0.0.1:19998"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19999"
    assert props["controller.listener.names"] == "CONTROLLER"
    protocol_map = dict(
        item.split(":") for item in props["listener.security.protocol.map"].split(",")
    )
    assert protocol_map == {"PLAINTEXT": "PLAINTEXT", "CONTROLLER": "PLAINTEXT"}
    assert props["log.dirs"] == str(tmp_path / "data")


def test_server_properties_fit_a_single_node_hub(tmp_path: Path) -> None:
    props = parse_properties(render_server_properties(settings(tmp_path), tmp_path))

    assert props["auto.create.topics.enable"] == "false"
    assert props["num.partitions"] == "1"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    # The default message size limit is kept: large documents travel through the blob store.
    assert "message.max.bytes" not in props
    # Nothing listens beyond loopback.
    assert "0.0.0.0" not in render_server_properties(settings(tmp_path), tmp_path)


def test_default_ports_come_from_settings(tmp_path: Path) -> None:
    props = parse_properties(render_server_properties(settings(tmp_path), tmp_path))

    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"


def test_pom_pins_the_broker_version_and_a_log4j2_binding() -> None:
    root = etree.parse(str(POM_PATH)).getroot()
    declared = root.find("m:properties", POM_NS)
    assert declared is not None
    properties = {
        etree.QName(child).localname: (child.text or "")
        for child in declared
        if isinstance(child.tag, str)  # skip XML comments
    }
    deps = {
        (
            dep.findtext("m:groupId", namespaces=POM_NS),
            dep.findtext("m:artifactId", namespaces=POM_NS),
        )
        for dep in root.iterfind("m:dependencies/m:dependency", POM_NS)
    }

    assert properties["kafka.version"] == KAFKA_VERSION
    assert ("org.apache.kafka", "kafka_2.13") in deps
    assert ("org.apache.logging.log4j", "log4j-slf4j-impl") in deps
    assert re.fullmatch(r"2\.24\.\d+", properties["log4j.version"])


def test_log4j_config_writes_server_log_and_nothing_to_the_console() -> None:
    text = LOG4J_CONFIG_PATH.read_text()

    assert "${logDir}/server.log" in text
    assert "property.logDir = ${sys:kafka.logs.dir" in text
    assert "rootLogger.level = INFO" in text
    assert "Console" not in text


def test_files_live_under_the_data_dir_and_libs_can_be_shared(tmp_path: Path) -> None:
    own = LocalBroker(settings(tmp_path))
    shared = LocalBroker(settings(tmp_path, kafka_libs_dir=str(tmp_path / "cache")))

    assert own.home == tmp_path / "kafka"
    assert own.libs_dir == tmp_path / "kafka" / "libs"
    assert own.pid_path == tmp_path / "kafka" / "broker.pid"
    assert own.log_path == tmp_path / "kafka" / "server.log"
    assert shared.libs_dir == tmp_path / "cache"
    assert shared.log_dirs == tmp_path / "kafka" / "data"


def test_libs_dir_setting_reads_its_environment_variable(tmp_path: Path) -> None:
    configured = Settings.from_env({"RELAIS_KAFKA_LIBS_DIR": str(tmp_path / "jars")})

    assert LocalBroker(configured).libs_dir == tmp_path / "jars"


def test_start_refuses_when_an_external_cluster_is_configured(tmp_path: Path) -> None:
    broker = LocalBroker(settings(tmp_path, kafka_bootstrap="kafka.example:9092"))

    with pytest.raises(ConfigurationError, match=r"kafka\.example:9092"):
        broker.start()
    status = broker.status()
    assert status.external
    assert not status.running
    assert status.bootstrap == "kafka.example:9092"
    assert not (tmp_path / "kafka").exists()


def test_status_of_a_broker_never_started(tmp_path: Path) -> None:
    broker = LocalBroker(settings(tmp_path, kafka_port=19997))
    status = broker.status()

    assert not status.running
    assert status.pid is None
    assert status.bootstrap == "127.0.0.1:19997"
    assert status.version == KAFKA_VERSION
    assert status.data_dir == tmp_path / "kafka"
    assert broker.stop() is False


def test_a_stale_pid_file_is_not_a_running_broker(tmp_path: Path) -> None:
    broker = LocalBroker(settings(tmp_path))
    broker.home.mkdir(parents=True)
    broker.pid_path.write_text("1\n")  # init: alive, but not our broker

    assert broker.running_pid() is None
    assert not broker.status().running


def test_missing_maven_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    broker = LocalBroker(settings(tmp_path, kafka_libs_dir=str(tmp_path / "no-jars-yet")))

    with pytest.raises(ConfigurationError, match="mvn"):
        broker.ensure_jars()


def test_cluster_ids_look_like_kafka_uuids() -> None:
    ids = {new_cluster_id() for _ in range(200)}

    assert len(ids) == 200
    for cluster_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id)
        assert not cluster_id.startswith("-")


# ------------------------------------------------------------- authentication

USERS = {"relais-admin": "admin-pw", "relais-hub": "hub-pw", "relais-controller": "ctl-pw"}


def test_secured_broker_listens_with_scram_and_enforces_acls(tmp_path: Path) -> None:
    text = render_server_properties(
        settings(tmp_path, kafka_port=19999, kafka_controller_port=19998), tmp_path, USERS
    )
    props = parse_properties(text)

    assert props["listeners"] == "CLIENT://127.0.0.1:19999,CONTROLLER://127.0.0.1:19998"
    assert props["advertised.listeners"] == "CLIENT://127.0.0.1:19999"
    protocol_map = dict(
        item.split(":") for item in props["listener.security.protocol.map"].split(",")
    )
    # No listener without authentication, and nothing beyond loopback.
    assert protocol_map == {"CLIENT": "SASL_PLAINTEXT", "CONTROLLER": "SASL_PLAINTEXT"}
    assert "PLAINTEXT://" not in text and "0.0.0.0" not in text
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["listener.name.client.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    assert props["inter.broker.listener.name"] == "CLIENT"
    assert 'username="relais-admin" password="admin-pw"' in (
        props["listener.name.client.scram-sha-512.sasl.jaas.config"]
    )
    assert props["sasl.mechanism.controller.protocol"] == "PLAIN"
    assert 'user_relais-controller="ctl-pw"' in (
        props["listener.name.controller.plain.sasl.jaas.config"]
    )
    assert props["authorizer.class.name"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:relais-admin;User:relais-controller"
    # The hub's user is no super user: it has ACLs.
    assert "relais-hub" not in text


def test_kafka_auth_setting_is_on_by_default_and_checked(tmp_path: Path) -> None:
    assert LocalBroker(settings(tmp_path)).auth is True
    assert LocalBroker(settings(tmp_path, kafka_auth="off")).auth is False
    with pytest.raises(ConfigurationError, match="RELAIS_KAFKA_AUTH"):
        _ = LocalBroker(settings(tmp_path, kafka_auth="maybe")).auth


def test_credentials_are_generated_once_private_and_reused(tmp_path: Path) -> None:
    broker = LocalBroker(settings(tmp_path))
    users = broker._ensure_credentials(formatted=False)
    assert users is not None
    assert set(users) == {"relais-admin", "relais-hub", "relais-controller"}
    assert len(set(users.values())) == 3 and all(len(p) >= 32 for p in users.values())
    assert broker.credentials_path.stat().st_mode & 0o777 == 0o600
    assert broker._ensure_credentials(formatted=True) == users
    admin = broker.security()
    assert (admin.protocol, admin.mechanism, admin.username) == (
        "SASL_PLAINTEXT", "SCRAM-SHA-512", "relais-admin"
    )
    assert admin.password == users["relais-admin"]
    assert users["relais-admin"] not in repr(admin)
    assert broker.security("relais-hub").password == users["relais-hub"]

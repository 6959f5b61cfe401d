"""The test session's broker pool: how many brokers it plans, and where they listen."""

from __future__ import annotations

from tests.broker_pool import broker_port_pair, brokers_wanted


def test_one_broker_per_module_and_fixture_plus_one_for_the_session() -> None:
    items = [
        ("tests.faults.test_a", ["fault_broker", "tmp_path_factory"]),
        ("tests.faults.test_a", ["fault_broker"]),  # same module: the same broker
        ("tests.integration.test_b", ["hub_kafka_bootstrap", "kafka_broker"]),
        ("tests.integration.test_c", ["kafka_broker"]),  # the session's, shared
        ("tests.unit.test_d", ["tmp_path"]),
    ]
    assert brokers_wanted(items, external=False) == 3


def test_an_external_cluster_leaves_only_the_brokers_tests_stop() -> None:
    items = [
        ("tests.faults.test_a", ["fault_broker"]),
        ("tests.integration.test_b", ["hub_kafka_bootstrap", "kafka_broker"]),
    ]
    assert brokers_wanted(items, external=True) == 1


def test_unit_tests_alone_start_no_broker() -> None:
    assert brokers_wanted([("tests.unit.test_d", ["tmp_path"])], external=False) == 0


def test_broker_ports_are_adjacent_and_below_the_ephemeral_range() -> None:
    port, controller_port = broker_port_pair()
    assert controller_port == port + 1
    assert 20000 <= port < controller_port < 32768

"""The hub's partitioner places every key where aiokafka's default partitioner (and the
Java client) does: a faster murmur2 must not move one flow's records elsewhere."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from relais.kafka import clients
from relais.wire.partitioner import Murmur2Partitioner, murmur2


def test_murmur2_is_aiokafkas_for_every_length_and_byte() -> None:
    rnd = random.Random(12)
    keys = [b"", b"\x00", b"\xff" * 7, "217500016-é".encode()]
    keys += [bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 80)))
             for _ in range(20_000)]
    for key in keys:
        assert murmur2(key) == aiokafka_murmur2(key), key


def test_known_values_of_the_java_client() -> None:
    # org.apache.kafka.common.utils.UtilsTest.testMurmur2 (as unsigned 32-bit ints)
    cases = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
             b"a-little-bit-longer-string": -1486304829,
             b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
             b"abc": 479470107}
    for key, signed in cases.items():
        assert murmur2(key) == signed & 0xFFFFFFFF, key


def test_the_partition_of_every_key_is_the_default_partitioners() -> None:
    ours, theirs = Murmur2Partitioner(), DefaultPartitioner()
    rnd = random.Random(7)
    for count in (1, 2, 3, 12, 50):
        partitions = list(range(count))
        for _ in range(2_000):
            key = f"217500016-{rnd.getrandbits(64):x}".encode()
            expected = theirs(key, partitions, partitions)
            assert ours(key, partitions, partitions) == expected
            assert ours(key, partitions, partitions) == expected  # remembered: the same
            assert ours(bytearray(key), partitions, partitions) == expected


def test_a_record_without_a_key_goes_to_an_available_partition() -> None:
    ours = Murmur2Partitioner()
    assert {ours(None, [0, 1, 2], [2]) for _ in range(50)} == {2}
    assert {ours(None, [0, 1, 2], []) for _ in range(200)} == {0, 1, 2}


async def test_every_hub_producer_uses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAIS_KAFKA_AUTH", "off")  # a fresh clone has no local credentials
    producer = clients.producer("127.0.0.1:1")
    assert isinstance(producer._partitioner, Murmur2Partitioner)


def test_long_keys_are_placed_alike_and_not_remembered() -> None:
    from relais.wire import partitioner

    partitioner._positive_hash.cache_clear()
    key = b"k" * 100_000
    assert Murmur2Partitioner()(key, [0, 1, 2], [0, 1, 2]) == DefaultPartitioner()(
        key, [0, 1, 2], [0, 1, 2])
    assert partitioner._positive_hash.cache_info().currsize == 0

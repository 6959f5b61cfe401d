"""Which partition a keyed record goes to: Kafka's default partitioner, computed faster.

Kafka's Java client and aiokafka's ``DefaultPartitioner`` place a keyed record on
partition ``(murmur2(key) & 0x7FFFFFFF) % partition count``, with the Java client's
MurmurHash2 (seed ``0x9747B28C``). Every producer of the hub must keep exactly that
mapping: one flow's records, one member's actes stay on one partition, in order, whoever
wrote them.

aiokafka computes murmur2 in pure Python byte by byte, about 9 µs for a flow id, and the
ingress writes three keyed records per submission (two of them keyed by the same flow
id). :func:`murmur2` reads the key four bytes at a time (about 6 µs), and
:class:`Murmur2Partitioner` remembers the hash of the last keys it placed, so a record
keyed like the one before it costs a dictionary look-up.
``tests/unit/test_wire_partitioner.py`` checks both against aiokafka's.
"""

from __future__ import annotations

import functools
import random
import struct
from collections.abc import Sequence

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS = struct.Struct("<I")


def murmur2(data: bytes) -> int:
    """The Java client's ``Utils.murmur2`` of ``data``, as an unsigned 32-bit int (what
    ``aiokafka.partitioner.murmur2`` returns)."""
    length = len(data)
    h = _SEED ^ length
    end = length & ~3
    for (k,) in _WORDS.iter_unpack(data[:end]):
        k = (k * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    extra = length & 3
    if extra:
        if extra == 3:
            h ^= data[end + 2] << 16
        if extra >= 2:
            h ^= data[end + 1] << 8
        h = ((h ^ data[end]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


#: Keys up to this length have their hash remembered (flow ids, SIRENs: 9 to 60 bytes).
_REMEMBERED_KEY_BYTES = 128


@functools.lru_cache(maxsize=8192)
def _positive_hash(key: bytes) -> int:
    return murmur2(key) & 0x7FFFFFFF


class Murmur2Partitioner:
    """An aiokafka ``partitioner``: the same partition as aiokafka's ``DefaultPartitioner``
    for every key (a record without a key: a random available partition, or any when none
    is available, as it does)."""

    def __call__(self, key: bytes | bytearray | None, all_partitions: Sequence[int],
                 available: Sequence[int]) -> int:
        if key is None:
            return random.choice(available or all_partitions)  # noqa: S311 (placement, no secret)
        if type(key) is bytes and len(key) <= _REMEMBERED_KEY_BYTES:
            hashed = _positive_hash(key)
        else:  # a long key (a member's, on a dead letter) is not kept in memory
            hashed = murmur2(bytes(key)) & 0x7FFFFFFF
        return all_partitions[hashed % len(all_partitions)]

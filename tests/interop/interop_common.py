"""Shared by the interop scripts: Kafka's partitioner, the records each
script produces, and the checks on what comes back."""

import sys
import time

TOTAL = 10_000
PARTITIONS = 3


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), as an
    unsigned 32-bit value."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(length // 4):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = length & ~3
    extra = length % 4
    if extra == 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def kafka_partition(key: bytes, partitions: int = PARTITIONS) -> int:
    """The partition Kafka's default partitioner picks for `key`."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def key(i: int) -> bytes:
    return b"key-%d" % i


def value(i: int) -> bytes:
    return b"value-%d-" % i + b"x" * (i % 50)


def fail(msg: str) -> None:
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond: bool, msg: str) -> None:
    if not cond:
        fail(msg)


def check_records(records, total: int = TOTAL) -> None:
    """`records`: (partition, offset, key, value) tuples. Every record i is
    present exactly once with its exact content, in Kafka's partition for its
    key, and each partition holds its records in production order."""
    by_tp = {}
    for p, o, k, v in records:
        if (p, o) in by_tp:
            check(by_tp[(p, o)] == (k, v), f"partition {p} offset {o} read twice with different content")
        by_tp[(p, o)] = (k, v)
    seen = {}
    last_i = {}
    for (p, o) in sorted(by_tp):
        k, v = by_tp[(p, o)]
        check(k is not None and k.startswith(b"key-"), f"unexpected key {k!r} at {p}/{o}")
        i = int(k[4:])
        check(v == value(i), f"record {i} at {p}/{o} has value {v!r}")
        check(p == kafka_partition(k), f"key {k!r} in partition {p}, Kafka's partitioner says {kafka_partition(k)}")
        check(i not in seen, f"record {i} stored twice ({seen.get(i)} and {(p, o)})")
        check(last_i.get(p, -1) < i, f"partition {p} out of order at offset {o}")
        seen[i] = (p, o)
        last_i[p] = i
    missing = [i for i in range(total) if i not in seen]
    check(not missing, f"{len(missing)} records missing, first {missing[:5]}")


def deadline(seconds: float) -> float:
    return time.monotonic() + seconds


def cuts(ends: dict) -> dict:
    """Where the first group commits, per partition: halfway."""
    return {p: end // 2 for p, end in ends.items()}

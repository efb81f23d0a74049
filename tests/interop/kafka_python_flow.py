"""kafka-python 3.0 against the broker.

produce: 10,000 keyed records to a 3-partition topic with the default
producer (idempotent, acks=all); every record's partition is Kafka's.
consume (after a broker restart): a group of two consumers splits the
partitions, reads the first half of each, commits and stops; a new consumer
of the group resumes exactly at the committed offsets; together they read
every record exactly once, in order per partition.
"""

import argparse
import os
import multiprocessing
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata

from interop_common import PARTITIONS, TOTAL, check, check_records, cuts, deadline, fail, kafka_partition, key, value

TOPIC = "kp-keyed"
GROUP = os.environ.get("MOLDAU_INTEROP_GROUP", "kp-group")


def produce(bs):
    admin = KafkaAdminClient(bootstrap_servers=bs)
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bs)
    check(producer.config["enable_idempotence"] in (True, None), "expected the idempotent default")
    futures = [producer.send(TOPIC, key=key(i), value=value(i)) for i in range(TOTAL)]
    producer.flush()
    for i, f in enumerate(futures):
        md = f.get(timeout=30)
        check(md.partition == kafka_partition(key(i)), f"record {i} went to {md.partition}")
    producer.close()
    print(f"kafka-python: produced {TOTAL} records")


def consumer(bs, **kw):
    return KafkaConsumer(
        bootstrap_servers=bs,
        group_id=GROUP,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=500,
        **kw,
    )


def member(bs, name, cut, shared):
    """One member of the first group: reads its partitions up to the cut,
    and commits the cut once the two members split the partitions."""
    if os.environ.get("MOLDAU_INTEROP_DEBUG"):
        import logging

        logging.basicConfig(
            filename=os.path.join(os.environ["MOLDAU_INTEROP_DEBUG"], f"kafka-python-{name}.log"),
            level=logging.DEBUG,
            format="%(asctime)s %(threadName)s %(name)s %(message)s",
        )
    lock, done = shared["lock"], shared["done"]
    assigned, progress, committed = shared["assigned"], shared["progress"], shared["committed"]
    try:
        c = consumer(bs)
        c.subscribe([TOPIC])
        end = deadline(60)
        while not done.is_set():
            if time.monotonic() > end:
                raise RuntimeError(f"the group of two did not settle: {dict(assigned)} {dict(progress)} {cut}")
            # A poll timeout longer than a rebalance's join wait: kafka-python
            # 3.0.12 can drop a SyncGroup answer that arrives after poll gave
            # up waiting for the join (its member then spins without applying
            # the assignment or heartbeating, seen in this suite's logs).
            batch = c.poll(timeout_ms=3000)
            mine = {tp.partition for tp in c.assignment()}
            rows, reached = [], {}
            for tp, msgs in batch.items():
                for m in msgs:
                    if m.offset < cut[tp.partition]:
                        rows.append((tp.partition, m.offset, m.key, m.value))
                    reached[tp.partition] = max(reached.get(tp.partition, 0), m.offset + 1)
            with lock:
                assigned[name] = mine
                for p, o in reached.items():
                    progress[p] = max(progress.get(p, 0), o)
                shared["records"].extend(rows)
                a, b = assigned.get("a", set()), assigned.get("b", set())
                split = a and b and not (a & b) and (a | b) == set(range(PARTITIONS))
                mine_read = all(progress.get(p, 0) >= cut[p] for p in mine)
            if split and mine_read and name not in committed:
                c.commit({TopicPartition(TOPIC, p): OffsetAndMetadata(cut[p], "", -1) for p in mine})
                with lock:
                    committed[name] = True
                    if len(committed) == 2:
                        done.set()
        c.close()
    except BaseException as e:
        shared["errors"].append(f"member {name}: {e!r}")
        done.set()


def consume(bs):
    probe = KafkaConsumer(bootstrap_servers=bs)
    tps = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
    ends = {tp.partition: off for tp, off in probe.end_offsets(tps).items()}
    probe.close()
    check(sum(ends.values()) == TOTAL, f"after the restart the partitions hold {ends}")
    cut = cuts(ends)

    # Each member is its own process, as consumers of a group usually are.
    mp = multiprocessing.get_context("fork")
    manager = mp.Manager()
    shared = {
        "lock": manager.Lock(),
        "records": manager.list(),
        "assigned": manager.dict(),
        "progress": manager.dict(),
        "committed": manager.dict(),
        "done": manager.Event(),
        "errors": manager.list(),
    }
    members = [mp.Process(target=member, args=(bs, n, cut, shared)) for n in ("a", "b")]
    for m in members:
        m.start()
    for m in members:
        m.join()
    if shared["errors"]:
        fail(shared["errors"][0])
    records = list(shared["records"])
    assigned = dict(shared["assigned"])
    print(f"kafka-python: two members split the partitions: {assigned}")

    # A new member resumes exactly at the committed offsets.
    c = consumer(bs)
    c.subscribe([TOPIC])
    first = {}
    end = deadline(60)
    got = 0
    while got < TOTAL - sum(cut.values()):
        check(time.monotonic() < end, f"the resuming consumer read {got} records")
        for tp, msgs in c.poll(timeout_ms=3000).items():
            for m in msgs:
                first.setdefault(tp.partition, m.offset)
                records.append((tp.partition, m.offset, m.key, m.value))
                got += 1
    for p in range(PARTITIONS):
        if ends[p] > cut[p]:
            check(first.get(p) == cut[p], f"partition {p} resumed at {first.get(p)}, committed {cut[p]}")
    c.close()
    check_records(records)
    print("kafka-python: resumed after the committed offsets; every record read exactly once")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("phase", choices=["produce", "consume"])
    args = ap.parse_args()
    {"produce": produce, "consume": consume}[args.phase](args.bootstrap)

"""confluent-kafka 2.16 (librdkafka) against the broker.

produce: AdminClient creates (and deletes) topics; an idempotent producer
with Kafka's murmur2 partitioner sends 10,000 keyed records to 3 partitions.
consume (after a broker restart): the same group flow as kafka_python_flow:
two members split the partitions, commit halfway, a new member resumes
exactly there; every record read exactly once, in order per partition.
"""

import argparse
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from interop_common import PARTITIONS, TOTAL, check, check_records, cuts, deadline, kafka_partition, key, value

TOPIC = "ck-keyed"
GROUP = "ck-group"


def admin_round_trip(admin):
    name = "ck-short-lived"
    for f in admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1,
                                           config={"retention.ms": "3600000"})]).values():
        f.result(timeout=30)
    md = admin.list_topics(timeout=30)
    check(name in md.topics and len(md.topics[name].partitions) == 2, "created topic not listed")
    # A bad config is refused with INVALID_CONFIG.
    bad = admin.create_topics([NewTopic("ck-bad", num_partitions=1, replication_factor=1,
                                        config={"retention.mss": "1"})])
    try:
        bad["ck-bad"].result(timeout=30)
        check(False, "an unknown config key was accepted")
    except KafkaException as e:
        check("retention.mss" in str(e), f"error does not name the key: {e}")
    for f in admin.delete_topics([name]).values():
        f.result(timeout=30)
    end = deadline(30)
    while name in admin.list_topics(timeout=30).topics:
        check(time.monotonic() < end, "deleted topic still listed")
        time.sleep(0.05)
    print("confluent-kafka: AdminClient created, refused and deleted topics")


def produce(bs):
    admin = AdminClient({"bootstrap.servers": bs})
    admin_round_trip(admin)
    for f in admin.create_topics([NewTopic(TOPIC, num_partitions=PARTITIONS, replication_factor=1)]).values():
        f.result(timeout=30)
    errors = []
    placed = {}

    def delivered(err, msg):
        if err is not None:
            errors.append(err)
        else:
            placed[msg.key()] = msg.partition()

    p = Producer({"bootstrap.servers": bs, "enable.idempotence": True, "partitioner": "murmur2_random",
                  "linger.ms": 5})
    for i in range(TOTAL):
        while True:
            try:
                p.produce(TOPIC, key=key(i), value=value(i), on_delivery=delivered)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    check(p.flush(60) == 0, "messages left unflushed")
    check(not errors, f"delivery errors: {errors[:3]}")
    for i in range(TOTAL):
        check(placed[key(i)] == kafka_partition(key(i)), f"record {i} went to {placed[key(i)]}")
    print(f"confluent-kafka: produced {TOTAL} records (idempotent)")


def consumer(bs):
    return Consumer({"bootstrap.servers": bs, "group.id": GROUP, "auto.offset.reset": "earliest",
                     "enable.auto.commit": False, "session.timeout.ms": 10_000})


def end_offsets(bs):
    c = Consumer({"bootstrap.servers": bs, "group.id": "ck-probe"})
    ends = {p: c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=30)[1] for p in range(PARTITIONS)}
    c.close()
    return ends


def consume(bs):
    ends = end_offsets(bs)
    check(sum(ends.values()) == TOTAL, f"after the restart the partitions hold {ends}")
    cut = cuts(ends)
    lock = threading.Lock()
    records = []
    assigned = {}
    progress = {}
    committed = set()
    done = threading.Event()
    errors = []

    def member(name):
        try:
            c = consumer(bs)
            c.subscribe([TOPIC])
            end = deadline(90)
            while not done.is_set():
                check(time.monotonic() < end, f"the group of two did not settle: {assigned} {progress} {cut}")
                msgs = c.consume(num_messages=500, timeout=0.2)
                with lock:
                    assigned[name] = {tp.partition for tp in c.assignment()}
                    for m in msgs:
                        check(m.error() is None, f"consume error {m.error()}")
                        if m.offset() < cut[m.partition()]:
                            records.append((m.partition(), m.offset(), m.key(), m.value()))
                        progress[m.partition()] = max(progress.get(m.partition(), 0), m.offset() + 1)
                    a, b = assigned.get("a", set()), assigned.get("b", set())
                    split = a and b and not (a & b) and (a | b) == set(range(PARTITIONS))
                    mine_read = all(progress.get(p, 0) >= cut[p] for p in assigned[name])
                if split and mine_read and name not in committed:
                    c.commit(offsets=[TopicPartition(TOPIC, p, cut[p]) for p in assigned[name]], asynchronous=False)
                    with lock:
                        committed.add(name)
                        if committed == {"a", "b"}:
                            done.set()
            c.close()
        except BaseException as e:  # reported by the main thread
            errors.append(e)
            done.set()

    threads = [threading.Thread(target=member, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    print(f"confluent-kafka: two members split the partitions: {assigned}")

    c = consumer(bs)
    c.subscribe([TOPIC])
    first = {}
    got = 0
    end = deadline(90)
    while got < TOTAL - sum(cut.values()):
        check(time.monotonic() < end, f"the resuming consumer read {got} records")
        for m in c.consume(num_messages=1000, timeout=0.5):
            check(m.error() is None, f"consume error {m.error()}")
            first.setdefault(m.partition(), m.offset())
            records.append((m.partition(), m.offset(), m.key(), m.value()))
            got += 1
    for p in range(PARTITIONS):
        if ends[p] > cut[p]:
            check(first.get(p) == cut[p], f"partition {p} resumed at {first.get(p)}, committed {cut[p]}")
    c.close()
    check_records(records)
    print("confluent-kafka: resumed after the committed offsets; every record read exactly once")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("phase", choices=["produce", "consume"])
    args = ap.parse_args()
    {"produce": produce, "consume": consume}[args.phase](args.bootstrap)

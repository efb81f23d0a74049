"""End-to-end latency through a Kafka broker with librdkafka (confluent-kafka).

Run by benches/broker.rs: `python3 broker_latency.py BOOTSTRAP TOPIC EVENTS
WARMUP SIZE`. One thread, one event at a time: `Producer.produce` (acks=all,
linger.ms=0), then `Consumer.poll` until that event arrives; the time from
just after `produce` returned (the record queued in librdkafka) to `poll`
returning it, and from just before `produce` was called. Between events the producer is flushed (its acknowledgement
received) and the loop pauses 20 microseconds, so each event starts from
idle clients. Prints two lines, `LATENCY_US p50 p90 p99 p99.9 p99.99 max`
(from `produce` returning) and `LATENCY_CALL_US ...` (from the call).
"""

import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition


def percentile(sorted_ns, p):
    i = max(1, min(len(sorted_ns), -(-len(sorted_ns) * p // 100)))
    return sorted_ns[int(i) - 1]


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    events, warmup, size = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 0,
            "enable.idempotence": False,
        }
    )
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "moldau-latency-bench",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 500,
            "fetch.min.bytes": 1,
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    value = b"x" * size
    latencies = []
    calls = []
    for i in range(warmup + events):
        called = time.perf_counter_ns()
        producer.produce(topic, value=value, partition=0)
        sent = time.perf_counter_ns()
        producer.poll(0)
        while True:
            msg = consumer.poll(10.0)
            if msg is None:
                raise SystemExit(f"event {i} not received within 10 s")
            if msg.error():
                raise SystemExit(f"consumer error: {msg.error()}")
            got = time.perf_counter_ns()
            if msg.offset() == i:
                break
        if i >= warmup:
            latencies.append(got - sent)
            calls.append(got - called)
        if producer.flush(10.0) != 0:
            raise SystemExit("producer did not get its acknowledgement within 10 s")
        time.sleep(20e-6)
    consumer.close()
    for name, values in (("LATENCY_US", latencies), ("LATENCY_CALL_US", calls)):
        values.sort()
        ps = [percentile(values, p) / 1000.0 for p in (50, 90, 99, 99.9, 99.99, 100)]
        print(name + " " + " ".join(f"{p:.1f}" for p in ps))


if __name__ == "__main__":
    main()

"""kcat (librdkafka) against the broker.

produce: keyed lines (Kafka's murmur2 partitioner) to an auto-created
3-partition topic, and 1,000 lines with each compression codec.
consume (after a broker restart): everything back from the beginning, with
exact content and production order within each partition.
"""

import argparse
import subprocess

from interop_common import check, check_records, key, value

KEYED = "kcat-keyed"
LINES = 2_000
CODECS = ["gzip", "snappy", "lz4", "zstd"]


def kcat(bs, *args, stdin=None):
    # No inherited stdin: CI runs without one.
    extra = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    r = subprocess.run(["kcat", "-b", bs, *args], capture_output=True, timeout=120, **extra)
    check(r.returncode == 0, f"kcat {' '.join(args)} failed: {r.stderr.decode(errors='replace')}")
    return r.stdout


def lines(n, prefix=b""):
    return b"".join(key(i) + b":" + prefix + value(i) + b"\n" for i in range(n))


def produce(bs):
    kcat(bs, "-P", "-t", KEYED, "-K:", "-X", "partitioner=murmur2_random", stdin=lines(LINES))
    for codec in CODECS:
        kcat(bs, "-P", "-t", f"kcat-{codec}", "-K:", "-z", codec, stdin=lines(1000, codec.encode() + b"-"))
    print(f"kcat: produced {LINES} keyed lines and 1000 per codec ({', '.join(CODECS)})")


def read(bs, topic):
    out = kcat(bs, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%p\t%o\t%k\t%s\n")
    rows = []
    for line in out.splitlines():
        p, o, k, v = line.split(b"\t")
        rows.append((int(p), int(o), k, v))
    return rows


def consume(bs):
    check_records(read(bs, KEYED), total=LINES)
    for codec in CODECS:
        rows = read(bs, f"kcat-{codec}")
        got = sorted((int(k[4:]), v) for _, _, k, v in rows)
        want = [(i, codec.encode() + b"-" + value(i)) for i in range(1000)]
        check(got == want, f"{codec}: {len(rows)} records back, content differs")
        offsets = sorted(o for p, o, _, _ in rows if p == 0)
        check(offsets == list(range(len(offsets))), f"{codec}: offsets not contiguous")
    print("kcat: every line back, exact content, order kept per partition, every codec")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("phase", choices=["produce", "consume"])
    args = ap.parse_args()
    {"produce": produce, "consume": consume}[args.phase](args.bootstrap)

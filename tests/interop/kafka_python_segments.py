"""Cross-checks moldau's on-disk format with kafka-python's own RecordBatch v2 codec.

  read DIR    decode every .log segment in DIR with kafka-python, checking each
              batch's CRC; print one JSON line per record
  build FILE  write batches built by kafka-python's DefaultRecordBatchBuilder
              (uncompressed and gzip) to FILE, each prefixed by its u32 length
"""
import glob
import json
import os
import struct
import sys

from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords


def hexs(b):
    return None if b is None else bytes(b).hex()


def read(directory):
    for path in sorted(glob.glob(os.path.join(directory, "*.log"))):
        with open(path, "rb") as f:
            records = MemoryRecords(f.read())
        while records.has_next():
            batch = records.next_batch()
            if not batch.validate_crc():
                raise SystemExit(f"CRC mismatch in {path} at batch {batch.base_offset}")
            for r in batch:
                print(json.dumps({
                    "segment": os.path.basename(path),
                    "offset": r.offset,
                    "timestamp": r.timestamp,
                    "key": hexs(r.key),
                    "value": hexs(r.value),
                    "headers": [[k, hexs(v)] for k, v in r.headers],
                }))


def build(out_path):
    with open(out_path, "wb") as out:
        for codec in (DefaultRecordBatchBuilder.CODEC_NONE, DefaultRecordBatchBuilder.CODEC_GZIP):
            b = DefaultRecordBatchBuilder(
                magic=2, compression_type=codec, is_transactional=False,
                producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
            for i in range(5):
                key = None if i == 2 else f"key-{i}".encode()
                value = None if i == 3 else f"value-{codec}-{i}".encode()
                b.append(i, timestamp=1_700_000_000_000 + i, key=key, value=value,
                         headers=[("h", f"{i}".encode())])
            data = bytes(b.build())
            out.write(struct.pack(">I", len(data)))
            out.write(data)


if __name__ == "__main__":
    {"read": read, "build": build}[sys.argv[1]](sys.argv[2])

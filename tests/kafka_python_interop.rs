//! moldau's segments are Kafka's format byte for byte: kafka-python's own
//! RecordBatch v2 codec (an implementation written from Kafka's spec,
//! independently of moldau) decodes and CRC-checks the segment files moldau
//! writes, and moldau stores and decodes batches kafka-python builds.
//!
//! Needs `python3` with `kafka-python`; `.ci/run` installs it and sets
//! `MOLDAU_REQUIRE_INTEROP=1`, which turns a missing client into a failure.
//! Elsewhere the test prints why it skips.

use std::process::Command;

use moldau::{Offset, PartitionConfig, PartitionLog, Record, Timestamp};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/interop/kafka_python_segments.py"
);

/// Runs the script; `None` (after printing why) if kafka-python is missing
/// and not required.
fn python(args: &[&str]) -> Option<String> {
    let probe = Command::new("python3")
        .args(["-c", "import kafka"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var_os("MOLDAU_REQUIRE_INTEROP").is_none(),
            "MOLDAU_REQUIRE_INTEROP is set but python3 with kafka-python is not available"
        );
        eprintln!("skipped: python3 with kafka-python is not installed");
        return None;
    }
    let out = Command::new("python3")
        .arg(SCRIPT)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kafka-python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let start = line.find(&format!("\"{name}\": ")).unwrap() + name.len() + 4;
    let rest = &line[start..];
    let end = rest.find([',', '}']).unwrap();
    rest[..end].trim_matches('"')
}

#[test]
fn kafka_python_decodes_moldau_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    let config = PartitionConfig {
        segment_bytes: 8192,
        index_interval_bytes: 256,
        ..PartitionConfig::default()
    };
    let log = PartitionLog::open(&dir, config).unwrap();
    let mut expected = Vec::new();
    for i in 0..300u64 {
        let mut r = Record::new(format!("value-{i}-{}", "v".repeat((i % 50) as usize)))
            .with_timestamp(Timestamp(1_700_000_000_000 + i as i64 * 7));
        if i % 3 != 0 {
            r = r.with_key(format!("key-{i}"));
        }
        if i % 5 == 0 {
            r = r.with_header("trace", format!("t{i}"));
        }
        if i % 11 == 0 {
            r.value = None;
        }
        expected.push(r.clone());
        // Mix single-record and multi-record batches.
        log.append(&[r]).unwrap();
    }
    assert!(log.stats().segment_count > 2, "several segments");
    log.close().unwrap();

    let Some(out) = python(&["read", dir.to_str().unwrap()]) else {
        return;
    };
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), expected.len());
    for (i, (line, r)) in lines.iter().zip(&expected).enumerate() {
        assert_eq!(field(line, "offset"), i.to_string(), "{line}");
        assert_eq!(
            field(line, "timestamp"),
            r.timestamp.unwrap().0.to_string(),
            "{line}"
        );
        let key = r.key.as_deref().map_or("null".to_string(), hex);
        assert_eq!(field(line, "key"), key, "{line}");
        let value = r.value.as_deref().map_or("null".to_string(), hex);
        assert_eq!(field(line, "value"), value, "{line}");
        if let Some(h) = r.headers.first() {
            assert!(
                line.contains(&format!(
                    "[\"trace\", \"{}\"]",
                    hex(h.value.as_deref().unwrap())
                )),
                "{line}"
            );
        } else {
            assert!(line.contains("\"headers\": []"), "{line}");
        }
    }
}

#[test]
fn moldau_stores_and_decodes_kafka_python_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("batches.bin");
    if python(&["build", file.to_str().unwrap()]).is_none() {
        return;
    }
    let bytes = std::fs::read(&file).unwrap();
    let log = PartitionLog::open(tmp.path().join("t-0"), PartitionConfig::default()).unwrap();
    let mut rest = &bytes[..];
    let mut batches = 0;
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let batch = &rest[4..4 + len];
        let base = log.append_batch(batch).unwrap();
        assert_eq!(base, Offset(batches * 5));
        // Stored verbatim but for the base offset.
        let stored = log.read(base, 1 << 20).unwrap();
        assert_eq!(&stored.bytes()[8..len], &batch[8..]);
        rest = &rest[4 + len..];
        batches += 1;
    }
    assert_eq!(batches, 2, "an uncompressed and a gzip batch");
    let all: Vec<_> = log
        .read(Offset(0), 1 << 20)
        .unwrap()
        .records()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(all.len(), 10);
    for (n, r) in all.iter().enumerate() {
        let (codec, i) = (n / 5, n % 5);
        assert_eq!(r.offset, Offset(n as u64));
        assert_eq!(r.timestamp, Timestamp(1_700_000_000_000 + i as i64));
        let key = (i != 2).then(|| format!("key-{i}").into_bytes());
        assert_eq!(r.key.as_deref(), key.as_deref());
        let value = (i != 3).then(|| format!("value-{codec}-{i}").into_bytes());
        assert_eq!(r.value.as_deref(), value.as_deref());
        assert_eq!(r.headers.len(), 1);
        assert_eq!(&r.headers[0].key[..], b"h");
    }
}

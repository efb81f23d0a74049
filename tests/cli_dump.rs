//! `moldau dump`: batches of a segment with CRC validity and records, index
//! entries, and a non-zero exit naming the byte position of corruption.
#![cfg(feature = "cli")]

mod cli_common;

use std::io::Write;

use cli_common::{flip_byte, Moldau};

/// A topic with three batches in partition 0, each indexed.
fn three_batches() -> Moldau {
    let m = Moldau::new();
    m.run(&[
        "topics",
        "create",
        "t",
        "--config",
        "index.interval.bytes=1",
    ])
    .ok();
    for batch in ["a\nb\n", "c\n", "d\ne\nf\n"] {
        m.run_with_input(&["produce", "t"], batch.as_bytes()).ok();
    }
    m
}

/// The `position:` of each batch line.
fn positions(out: &str) -> Vec<u64> {
    out.lines()
        .filter(|l| l.starts_with("baseOffset:"))
        .map(|l| {
            let at = l.find(" position: ").unwrap() + " position: ".len();
            l[at..].split(' ').next().unwrap().parse().unwrap()
        })
        .collect()
}

#[test]
fn batches_records_and_indexes() {
    let m = three_batches();
    let log = m.segment_file("t", 0, 0, "log");
    let out = m.run(&["dump", log.to_str().unwrap()]).ok();
    assert_eq!(positions(&out).len(), 3, "{out}");
    assert_eq!(out.matches("isvalid: true").count(), 3, "{out}");
    assert!(
        out.contains("baseOffset: 3 lastOffset: 5 count: 3"),
        "{out}"
    );
    assert!(out.contains("compresscodec: none"), "{out}");
    let size = std::fs::metadata(&log).unwrap().len();
    assert!(
        out.contains(&format!("3 batches, {size} valid bytes of {size}")),
        "{out}"
    );

    let out = m
        .run(&["dump", log.to_str().unwrap(), "--print-records"])
        .ok();
    assert!(out.contains("| offset: 4 CreateTime: "), "{out}");
    assert!(
        out.contains("keySize: -1 valueSize: 1 headerKeys: [] key: null payload: e"),
        "{out}"
    );

    let index = m.segment_file("t", 0, 0, "index");
    let out = m.run(&["dump", index.to_str().unwrap()]).ok();
    let entries: Vec<&str> = out.lines().filter(|l| l.starts_with("offset: ")).collect();
    assert!(!entries.is_empty(), "{out}");
    assert!(
        entries.last().unwrap().starts_with("offset: 5 position: "),
        "{out}"
    );
    let time = m.segment_file("t", 0, 0, "timeindex");
    let out = m.run(&["dump", time.to_str().unwrap()]).ok();
    assert!(out.lines().any(|l| l.starts_with("timestamp: ")), "{out}");
}

#[test]
fn corrupt_batch_exits_non_zero_with_its_position() {
    let m = three_batches();
    let log = m.segment_file("t", 0, 0, "log");
    let ok = m.run(&["dump", log.to_str().unwrap()]).ok();
    let pos = positions(&ok);
    // A byte inside the second batch's records, which its CRC covers.
    flip_byte(&log, pos[1] + 64);
    let r = m.run(&["dump", log.to_str().unwrap()]);
    assert!(r.stdout.contains("isvalid: false"), "{r:?}");
    assert_eq!(positions(&r.stdout), pos[..2], "stops after the bad batch");
    let e = r.error();
    assert!(
        e.contains(&format!("at byte {}: checksum mismatch", pos[1])),
        "{e}"
    );
}

#[test]
fn torn_tail_and_zero_tail() {
    let m = three_batches();
    let log = m.segment_file("t", 0, 0, "log");
    let pos = positions(&m.run(&["dump", log.to_str().unwrap()]).ok());
    let size = std::fs::metadata(&log).unwrap().len();

    // Zeros after the last batch (preallocated space) are not corruption.
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(&[0u8; 4096]).unwrap();
    drop(f);
    let out = m.run(&["dump", log.to_str().unwrap()]).ok();
    assert!(
        out.contains(&format!(
            "Zero-filled tail: 4096 bytes from position {size}"
        )),
        "{out}"
    );

    // A torn last batch is.
    let f = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
    f.set_len(size - 3).unwrap();
    let e = m.run(&["dump", log.to_str().unwrap()]).error();
    assert!(e.contains(&format!("at byte {}: truncated", pos[2])), "{e}");
}

#[test]
fn bad_index_entry_and_wrong_files() {
    let m = three_batches();
    let index = m.segment_file("t", 0, 0, "index");
    let out = m.run(&["dump", index.to_str().unwrap()]).ok();
    let n = out.lines().filter(|l| l.starts_with("offset: ")).count();
    // Point the last entry's position somewhere no batch starts.
    let last = (n as u64 - 1) * 8;
    flip_byte(&index, last + 7);
    let e = m.run(&["dump", index.to_str().unwrap()]).error();
    assert!(e.contains(&format!("at byte {last}")), "{e}");

    let e = m
        .run(&["dump", m.tmp.path().join("x.txt").to_str().unwrap()])
        .error();
    assert!(e.contains("not a segment file"), "{e}");
    let missing = m.segment_file("t", 0, 99, "log");
    let e = m.run(&["dump", missing.to_str().unwrap()]).error();
    assert!(e.contains("open"), "{e}");
}

//! The log-wide clean-shutdown marker: a child process killed after the log
//! opened, while it appends, or while it closes, makes every partition
//! recover on the next open, which finds every acknowledged record; a close
//! that finished makes the next open skip recovery everywhere. A data
//! directory without the marker (written by an older version, or whose
//! close was cut short) recovers, and is clean again after its next close.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use common::workload::report;
use moldau::{
    Consumer, ConsumerConfig, FlushPolicy, Log, LogConfig, Offset, PartitionId, ProducerConfig,
    Record, TopicPartition,
};

const CHILD_DIR: &str = "MOLDAU_CLEAN_SHUTDOWN_CHILD_DIR";
const CHILD_MODE: &str = "MOLDAU_CLEAN_SHUTDOWN_CHILD_MODE";
/// The marker a clean close leaves in the data directory.
const MARKER: &str = ".clean_shutdown";
/// Topics and their partition counts, present before the child runs.
const TOPICS: [(&str, u32); 2] = [("a", 3), ("b", 2)];
/// A topic the appending child creates while it runs.
const CREATED: &str = "c";

fn config() -> LogConfig {
    common::workload::log_config(FlushPolicy::Never)
}

/// The child: opens the log in `CHILD_DIR`, and by `CHILD_MODE`
/// - `idle`: prints `ack opened` and waits to be killed;
/// - `append`: appends to every partition in turn, printing
///   `ack <topic> <partition> <offset> <value>` for each record, creating
///   topic `c` after the first 20, until killed;
/// - `close`: appends 50 records the same way, prints `ack closing`, closes
///   the log (the parent's kill may land anywhere in the close), then
///   prints `ack closed` and waits to be killed.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let mode = std::env::var(CHILD_MODE).unwrap();
    // Ends the harness's `test crash_child ... ` line, so that the first
    // ack starts a line of its own.
    report("");
    let log = Log::open(&dir, config()).unwrap();
    if mode == "idle" {
        report("ack opened");
        loop {
            std::thread::park();
        }
    }
    let producer = log.producer(ProducerConfig::default()).unwrap();
    let mut topics: Vec<(&str, u32)> = TOPICS.to_vec();
    for i in 0u64.. {
        if mode == "close" && i == 50 {
            break;
        }
        if mode == "append" && i == 20 {
            log.create_topic(CREATED, 2, None).unwrap();
            topics.push((CREATED, 2));
        }
        let slots: u32 = topics.iter().map(|t| t.1).sum();
        let mut slot = (i % u64::from(slots)) as u32;
        let (topic, p) = topics
            .iter()
            .find_map(|&(t, n)| match slot < n {
                true => Some((t, slot)),
                false => {
                    slot -= n;
                    None
                }
            })
            .unwrap();
        let value = format!("{topic}-{p}-{i}");
        let at = producer
            .send_to(topic, PartitionId(p), Record::new(value.clone()))
            .unwrap();
        report(&format!("ack {topic} {p} {} {value}", at.offset.0));
    }
    drop(producer);
    report("ack closing");
    log.close().unwrap();
    report("ack closed");
    loop {
        std::thread::park();
    }
}

/// Acknowledged records by partition: offset to value.
type Acked = BTreeMap<(String, u32), BTreeMap<u64, String>>;

/// Runs the child in `mode` on `dir`, kills it after `kill_after` acks, and
/// returns the records it acknowledged and whether it printed `closed`.
fn run_child(dir: &Path, mode: &str, kill_after: usize) -> (Acked, bool) {
    run_child_with(dir, mode, kill_after, Duration::ZERO)
}

/// [`run_child`], with the kill `delay` after the last ack it waits for
/// (to land at different points of the work that follows it).
fn run_child_with(dir: &Path, mode: &str, kill_after: usize, delay: Duration) -> (Acked, bool) {
    let mut child = common::spawn_child_with(&[
        (CHILD_DIR, dir.as_os_str()),
        (CHILD_MODE, std::ffi::OsStr::new(mode)),
    ]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut acked = Acked::new();
    let (mut closed, mut seen, mut killed) = (false, 0, false);
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        // A line the kill cut short was not acknowledged.
        let Some(whole) = line.strip_suffix('\n') else {
            break;
        };
        let words: Vec<&str> = whole.split(' ').collect();
        match words[..] {
            ["ack", "closed"] => closed = true,
            ["ack", topic, p, offset, value] => {
                acked
                    .entry((topic.to_string(), p.parse().unwrap()))
                    .or_default()
                    .insert(offset.parse().unwrap(), value.to_string());
            }
            _ => {}
        }
        if words.first() == Some(&"ack") {
            seen += 1;
            if seen == kill_after {
                // A deliberate delay that moves the kill, not a wait for state.
                let until = Instant::now() + delay;
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                child.kill().unwrap();
                killed = true;
            }
        }
    }
    assert!(killed, "the child exited before it was killed");
    child.wait().unwrap();
    (acked, closed)
}

/// Creates the topics with one record in each partition, and closes cleanly.
fn prepare(dir: &Path) -> Acked {
    let log = Log::open(dir, config()).unwrap();
    let producer = log.producer(ProducerConfig::default()).unwrap();
    let mut acked = Acked::new();
    for (topic, n) in TOPICS {
        log.create_topic(topic, n, None).unwrap();
        for p in 0..n {
            let value = format!("{topic}-{p}-first");
            let at = producer
                .send_to(topic, PartitionId(p), Record::new(value.clone()))
                .unwrap();
            acked
                .entry((topic.to_string(), p))
                .or_default()
                .insert(at.offset.0, value);
        }
    }
    drop(producer);
    log.close().unwrap();
    assert!(dir.join(MARKER).exists(), "a clean close writes the marker");
    acked
}

/// Whether each partition of the log recovered when it opened.
fn recovered(log: &Log) -> BTreeMap<(String, u32), bool> {
    let mut out = BTreeMap::new();
    for topic in log.list_topics() {
        for p in log.describe_topic(&topic).unwrap().partitions {
            out.insert((topic.to_string(), p.partition.0), p.recovered);
        }
    }
    out
}

/// Reads every record of every partition in `acked` and checks each
/// acknowledged one is there with its value.
fn assert_acked(log: &Log, acked: &Acked, what: &str) {
    for ((topic, p), records) in acked {
        let tp = TopicPartition::new(moldau::TopicName::new(topic.as_str()).unwrap(), *p);
        let end = log.describe_topic(topic).unwrap().partitions[*p as usize].end_offset;
        let mut consumer: Consumer = log.consumer(ConsumerConfig::default()).unwrap();
        consumer.assign(std::slice::from_ref(&tp)).unwrap();
        consumer.seek_to_beginning(&[]).unwrap();
        let mut found = BTreeMap::new();
        while found.len() < end.0 as usize {
            let polled = consumer.poll(std::time::Duration::from_secs(5)).unwrap();
            assert!(!polled.is_empty(), "{what}: {tp} ends early");
            for r in polled {
                let value = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
                found.insert(r.offset.0, value);
            }
        }
        for (offset, value) in records {
            assert_eq!(
                found.get(offset),
                Some(value),
                "{what}: acknowledged record {tp}@{offset}"
            );
        }
    }
}

fn merge(into: &mut Acked, more: Acked) {
    for (k, v) in more {
        into.entry(k).or_default().extend(v);
    }
}

#[test]
fn a_kill_after_open_before_any_append_recovers_every_partition() {
    let dir = tempfile::tempdir().unwrap();
    let acked = prepare(dir.path());
    run_child(dir.path(), "idle", 1);
    assert!(
        !dir.path().join(MARKER).exists(),
        "the open removed the marker"
    );
    let log = Log::open(dir.path(), config()).unwrap();
    let recovered = recovered(&log);
    assert!(recovered.values().all(|r| *r), "{recovered:?}");
    assert_acked(&log, &acked, "kill after open");
}

#[test]
fn a_kill_while_appending_recovers_every_partition_and_keeps_every_ack() {
    for kill_after in [5, 23, 61] {
        let dir = tempfile::tempdir().unwrap();
        let mut acked = prepare(dir.path());
        let (more, _) = run_child(dir.path(), "append", kill_after);
        merge(&mut acked, more);
        let log = Log::open(dir.path(), config()).unwrap();
        let recovered = recovered(&log);
        let what = format!("kill after {kill_after} acks");
        // Partitions of the topic the child created have segments too
        // (created with the topic), so they recover as well.
        assert!(recovered.values().all(|r| *r), "{what}: {recovered:?}");
        assert_eq!(
            recovered.keys().any(|(t, _)| t == CREATED),
            kill_after > 20,
            "{what}: the topic created while running"
        );
        assert_acked(&log, &acked, &what);
        // Its clean close makes the next open skip recovery.
        log.close().unwrap();
        drop(log);
        let log = Log::open(dir.path(), config()).unwrap();
        let recovered = self::recovered(&log);
        assert!(recovered.values().all(|r| !*r), "{what}: {recovered:?}");
        assert_acked(&log, &acked, &what);
    }
}

#[test]
fn a_finished_close_makes_the_next_open_skip_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked = prepare(dir.path());
    // 50 records, `closing`, `closed`: killed only after the close returned.
    let (more, closed) = run_child(dir.path(), "close", 52);
    assert!(closed);
    merge(&mut acked, more);
    let log = Log::open(dir.path(), config()).unwrap();
    let recovered = recovered(&log);
    assert!(recovered.values().all(|r| !*r), "{recovered:?}");
    assert_acked(&log, &acked, "after a clean close");
}

#[test]
fn a_kill_during_close_recovers_every_partition_unless_the_close_finished() {
    let (mut clean, mut unclean) = (0, 0);
    for trial in 0..12u32 {
        let dir = tempfile::tempdir().unwrap();
        let mut acked = prepare(dir.path());
        // Killed 0 to 11 ms after it says it is closing: at different
        // points of the close (some checkpoints rewritten, some not), or
        // after it.
        let delay = Duration::from_millis(u64::from(trial));
        let (more, closed) = run_child_with(dir.path(), "close", 51, delay);
        merge(&mut acked, more);
        let marker = dir.path().join(MARKER).exists();
        assert!(!closed || marker, "trial {trial}: closed without a marker");
        let log = Log::open(dir.path(), config()).unwrap();
        let recovered = recovered(&log);
        // All or nothing: a partition is trusted only with the marker.
        assert!(
            recovered.values().all(|r| *r != marker),
            "trial {trial} (marker: {marker}): {recovered:?}"
        );
        match marker {
            true => clean += 1,
            false => unclean += 1,
        }
        assert_acked(&log, &acked, &format!("trial {trial}"));
    }
    eprintln!("kills during close: {unclean} before the marker, {clean} after");
}

#[test]
fn an_interrupted_close_with_torn_checkpoints_recovers_everything() {
    let dir = tempfile::tempdir().unwrap();
    let acked = prepare(dir.path());
    // What a crash in the middle of the close leaves: some checkpoints
    // rewritten, one torn (its temp file), none trusted without the marker.
    std::fs::remove_file(dir.path().join(MARKER)).unwrap();
    let a0 = dir.path().join("a-0");
    std::fs::copy(
        a0.join(common::CHECKPOINT),
        a0.join("partition.checkpoint.tmp"),
    )
    .unwrap();
    common::set_len(&a0.join("partition.checkpoint.tmp"), 5);
    let log = Log::open(dir.path(), config()).unwrap();
    let recovered = recovered(&log);
    assert!(recovered.values().all(|r| *r), "{recovered:?}");
    assert!(!a0.join("partition.checkpoint.tmp").exists());
    assert_acked(&log, &acked, "interrupted close");
}

#[test]
fn a_directory_without_the_marker_recovers_once_then_opens_clean() {
    // Regression guard for data directories written before the marker
    // existed: their partitions' clean checkpoints alone are not trusted.
    let dir = tempfile::tempdir().unwrap();
    let acked = prepare(dir.path());
    std::fs::remove_file(dir.path().join(MARKER)).unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert!(recovered(&log).values().all(|r| *r));
    assert_acked(&log, &acked, "first open without a marker");
    assert_eq!(
        log.describe_topic("a").unwrap().partitions[0].end_offset,
        Offset(1)
    );
    log.close().unwrap();
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    assert!(recovered(&log).values().all(|r| !*r));
    assert_acked(&log, &acked, "second open");
}

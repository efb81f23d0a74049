//! The crash-test workload shared by the process-crash and power-loss suites:
//! a child process that produces, commits, and runs retention and compaction
//! passes until it is killed, and the checks a reopened data directory must
//! pass.
//!
//! Every record is a pure function of (writer, n): the harness regenerates
//! what each writer meant to send and checks each partition against it. The
//! child reports on standard output (`ack <writer> <n>` once every record up
//! to `n` of that writer was acknowledged; `commit <topic>:<p>=<offset> ...`
//! once a group commit returned; `maint <segments deleted> <partitions
//! compacted>` after a maintenance pass that did something). A line is written only after the call it
//! reports returned, and the pipe outlives the killed child.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ChildStdout};
use std::time::Duration;

use moldau::{
    partition_for_key, AutoOffsetReset, CleanupPolicy, ConsumerConfig, FlushPolicy, Log, LogConfig,
    OffsetAndMetadata, PartitionConfig, PartitionLog, ProducerConfig, Record, Timestamp,
    TopicConfig, TopicName, TopicPartition,
};

/// The child's data directory; its presence is the child's cue.
pub const CHILD_DIR: &str = "MOLDAU_RELIABILITY_CHILD_DIR";
/// The trial's seed (the writers' plans derive from it).
pub const CHILD_SEED: &str = "MOLDAU_RELIABILITY_CHILD_SEED";
/// The flush policy of the data topics, by index into [`POLICIES`].
pub const CHILD_POLICY: &str = "MOLDAU_RELIABILITY_CHILD_POLICY";

/// The topics (name, partitions) the child writes: `a` keeps at most
/// [`RETAINED_BYTES`] per partition (retention deletes its oldest segments),
/// `b` keeps everything, `c` is compacted.
pub const TOPICS: [(&str, u32); 3] = [("a", 3), ("b", 2), ("c", 2)];
/// `retention_bytes` of topic `a`: one segment, so that retention deletes
/// within the few hundred records of a trial.
pub const RETAINED_BYTES: u64 = 4096;
/// Producer threads in the child.
pub const WRITERS: u64 = 2;
/// The consumer group that commits.
pub const GROUP: &str = "g";

/// The flush policies trials cycle through.
pub const POLICIES: [FlushPolicy; 4] = [
    FlushPolicy::Always,
    FlushPolicy::EveryRecords(7),
    FlushPolicy::Interval(Duration::from_millis(2)),
    FlushPolicy::Never,
];

/// Small segments and indexes, so a few hundred records roll many times.
pub fn topic_config(flush: FlushPolicy) -> TopicConfig {
    TopicConfig {
        segment_bytes: 4096,
        segment_index_bytes: 4096,
        index_interval_bytes: 256,
        flush,
        ..TopicConfig::default()
    }
}

/// The config of topic `name`: retention for `a`, compaction for `c`.
pub fn topic_config_of(name: &str, flush: FlushPolicy) -> TopicConfig {
    let base = topic_config(flush);
    match name {
        "a" => TopicConfig {
            retention_bytes: Some(RETAINED_BYTES),
            ..base
        },
        "c" => TopicConfig {
            cleanup_policy: CleanupPolicy::Compact,
            min_cleanable_dirty_ratio: 0.2,
            ..base
        },
        _ => base,
    }
}

/// Whether topic `name` may lose its oldest records to retention.
fn retained(name: &str) -> bool {
    name == "a"
}

/// Whether topic `name` is compacted.
fn compacted(name: &str) -> bool {
    name == "c"
}

/// The `LogConfig` of the child and of the checks.
pub fn log_config(flush: FlushPolicy) -> LogConfig {
    LogConfig {
        topic_defaults: topic_config(flush),
        ..LogConfig::default()
    }
}

/// xorshift64: the trials' only source of randomness, so a seed replays.
pub struct Rng(pub u64);

impl Rng {
    /// The next pseudo-random number.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0 | 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number below `n` (which must be positive).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Record `n` of writer `w`.
pub fn record(w: u64, n: u64) -> Record {
    Record::new(value(w, n))
        .with_key(key(w, n))
        .with_header("n", n.to_string())
}

fn key(w: u64, n: u64) -> String {
    format!("w{w}-k{}", n % 11)
}

fn value(w: u64, n: u64) -> Vec<u8> {
    let mut v = format!("w{w}:n{n}:").into_bytes();
    v.resize(v.len() + (n * 7 % 300) as usize, b'a' + (n % 26) as u8);
    v
}

/// One call a writer makes: `count` records starting at `first`, to `topic`
/// (a single `send` when `count` is 1, else one `send_batch`).
#[derive(Debug, Clone, Copy)]
pub struct Step {
    pub topic: &'static str,
    pub first: u64,
    pub count: u64,
}

/// The calls writer `w` makes in a trial with `seed`, as an endless iterator.
pub fn plan(seed: u64, w: u64) -> impl Iterator<Item = Step> {
    let mut rng = Rng(seed ^ (w + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut next = 0u64;
    std::iter::from_fn(move || {
        let topic = match rng.below(6) {
            0..=2 => "a",
            3 => "b",
            _ => "c",
        };
        let count = match rng.below(4) {
            0 => 2 + rng.below(7),
            _ => 1,
        };
        let step = Step {
            topic,
            first: next,
            count,
        };
        next += count;
        Some(step)
    })
}

fn partitions_of(topic: &str) -> u32 {
    TOPICS
        .iter()
        .find(|(t, _)| *t == topic)
        .map(|(_, n)| *n)
        .expect("a workload topic")
}

/// The partition record `n` of writer `w` goes to (Kafka's key partitioning).
pub fn partition_of(topic: &str, w: u64, n: u64) -> u32 {
    partition_for_key(key(w, n).as_bytes(), partitions_of(topic))
        .expect("topics have partitions")
        .0
}

/// Writes one line to standard output (the side channel) at once.
pub fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .expect("report to parent");
}

/// The child: opens the log, then writers, a committing consumer and (with
/// `maintenance`) retention and compaction passes run until the process is
/// killed. `observe` runs first (the power-loss suite installs its fsync
/// observer there).
pub fn child(observe: impl FnOnce(), maintenance: bool) {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    // libtest has printed `test crash_child ... ` without a newline: end
    // that line, so that every report starts a line of its own.
    report("");
    observe();
    let seed: u64 = env_number(CHILD_SEED);
    let policy = POLICIES[env_number(CHILD_POLICY) as usize];
    let log = Log::open(&dir, log_config(policy)).expect("open");
    for (name, n) in TOPICS {
        log.create_topic(name, n, Some(topic_config_of(name, policy)))
            .expect("create topic");
    }
    // Retention and compaction passes among the appends, as fast as they
    // go (a pass with nothing to do costs a few checks).
    if maintenance {
        let maintainer = log.clone();
        std::thread::spawn(move || loop {
            let r = maintainer
                .run_maintenance(Timestamp::now())
                .expect("maintenance");
            if r.segments_deleted > 0 || r.partitions_compacted > 0 {
                report(&format!(
                    "maint {} {}",
                    r.segments_deleted, r.partitions_compacted
                ));
            }
            // The pace of the passes, not a wait for state.
            std::thread::sleep(Duration::from_millis(2));
        });
    }
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let producer = log.producer(ProducerConfig::default()).expect("producer");
            std::thread::spawn(move || {
                for step in plan(seed, w) {
                    let records = (step.first..step.first + step.count).map(|n| record(w, n));
                    match step.count {
                        1 => drop(
                            producer
                                .send(step.topic, record(w, step.first))
                                .expect("send"),
                        ),
                        _ => drop(
                            producer
                                .send_batch(step.topic, records.collect())
                                .expect("send_batch"),
                        ),
                    }
                    report(&format!("ack {w} {}", step.first + step.count - 1));
                }
            })
        })
        .collect();
    let mut consumer = log
        .consumer(ConsumerConfig {
            // Retention may move a partition's start past the position.
            auto_offset_reset: AutoOffsetReset::Earliest,
            ..ConsumerConfig::default()
        })
        .expect("consumer");
    let tps: Vec<TopicPartition> = TOPICS
        .iter()
        .flat_map(|(t, n)| (0..*n).map(|p| tp(t, p)))
        .collect();
    consumer.assign_in_group(GROUP, &tps).expect("assign");
    loop {
        consumer.poll(Duration::from_millis(50)).expect("poll");
        let mut offsets = Vec::new();
        for tp in &tps {
            let position = consumer.position(tp).expect("position");
            offsets.push((tp.clone(), OffsetAndMetadata::new(position)));
        }
        consumer.commit_offsets(&offsets).expect("commit");
        let line: Vec<String> = offsets
            .iter()
            .map(|(tp, o)| format!("{}:{}={}", tp.topic, tp.partition.0, o.offset.0))
            .collect();
        report(&format!("commit {}", line.join(" ")));
        if writers.iter().all(|w| w.is_finished()) {
            panic!("a writer stopped");
        }
    }
}

fn env_number(var: &str) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{var} is not set to a number"))
}

/// A topic partition of the workload.
pub fn tp(topic: &str, p: u32) -> TopicPartition {
    TopicPartition::new(TopicName::new(topic).expect("topic name"), p)
}

/// What the parent learnt from the child's reports.
#[derive(Debug, Default)]
pub struct Acks {
    /// Per writer, the last record acknowledged.
    pub records: BTreeMap<u64, u64>,
    /// The last acknowledged commit, per partition.
    pub committed: BTreeMap<(String, u32), u64>,
    /// Segments deleted by retention, over the maintenance passes reported.
    pub segments_deleted: u64,
    /// Partitions compacted, over the maintenance passes reported.
    pub partitions_compacted: u64,
    /// Lines that are neither acks nor commits (the power-loss events).
    pub other: Vec<String>,
}

impl Acks {
    /// Takes one line of the child's output.
    pub fn take(&mut self, line: &str) {
        // The child ends libtest's `test crash_child ... ` line before its
        // first report; were it not to, that report would still count.
        let line = line.strip_prefix("test crash_child ... ").unwrap_or(line);
        if let Some(rest) = line.strip_prefix("ack ") {
            let mut f = rest
                .split(' ')
                .map(|x| x.parse::<u64>().expect("ack field"));
            let (w, n) = (f.next().expect("writer"), f.next().expect("n"));
            self.records.insert(w, n);
        } else if let Some(rest) = line.strip_prefix("commit ") {
            for part in rest.split(' ') {
                let (tp, offset) = part.split_once('=').expect("tp=offset");
                let (topic, p) = tp.split_once(':').expect("topic:p");
                self.committed.insert(
                    (topic.to_string(), p.parse().expect("partition")),
                    offset.parse().expect("offset"),
                );
            }
        } else if let Some(rest) = line.strip_prefix("maint ") {
            let mut f = rest
                .split(' ')
                .map(|x| x.parse::<u64>().expect("maint field"));
            self.segments_deleted += f.next().expect("segments");
            self.partitions_compacted += f.next().expect("partitions");
        } else if !line.is_empty() {
            self.other.push(line.to_string());
        }
    }
}

/// Starts the child for a trial (this test binary's `crash_child` test).
pub fn spawn(dir: &Path, seed: u64, policy_index: u64) -> Child {
    let (seed, policy) = (seed.to_string(), policy_index.to_string());
    super::spawn_child_with(&[
        (CHILD_DIR, dir.as_os_str()),
        (CHILD_SEED, seed.as_ref()),
        (CHILD_POLICY, policy.as_ref()),
    ])
}

/// One trial: starts the child on `dir` and kills it after a number of acks
/// drawn from `rng` (mostly early: open, topic creation, first rolls; some
/// later); returns what it reported. Panics naming `what` if the child died
/// on its own.
pub fn crash_trial(dir: &Path, seed: u64, policy_index: u64, rng: &mut Rng, what: &str) -> Acks {
    let kill_after = match rng.below(4) {
        0 => rng.below(4),
        // Long enough for retention and compaction passes to run.
        1 => rng.below(400),
        _ => rng.below(120),
    };
    let child = spawn(dir, seed, policy_index);
    let mut acks = Acks::default();
    let mut seen = 0;
    let status = run_until_killed(child, &mut acks, |_| {
        seen += 1;
        seen > kill_after
    });
    assert_eq!(
        status.signal(),
        Some(9),
        "{what}: the child died on its own"
    );
    acks
}

/// Reads the child's reports until `stop` says so (after each ack line) or
/// the child exits, then kills it and reads whatever it wrote before dying.
pub fn run_until_killed(
    mut child: Child,
    acks: &mut Acks,
    mut stop: impl FnMut(&Acks) -> bool,
) -> std::process::ExitStatus {
    let stdout: ChildStdout = child.stdout.take().expect("piped stdout");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    while !stop(acks) {
        line.clear();
        if reader.read_line(&mut line).expect("child output") == 0 {
            break;
        }
        // Skip up to the next ack: `stop` is asked after acks only.
        while !line.starts_with("ack ") {
            acks.take(line.trim_end());
            line.clear();
            if reader.read_line(&mut line).expect("child output") == 0 {
                break;
            }
        }
        acks.take(line.trim_end());
    }
    child.kill().expect("kill child");
    // A line cut off by the kill is no acknowledgement; whole lines are.
    let mut rest = String::new();
    reader
        .read_to_string(&mut rest)
        .expect("drain child output");
    let whole = match rest.rfind('\n') {
        Some(end) => &rest[..end],
        None => "",
    };
    for line in whole.lines() {
        acks.take(line);
    }
    child.wait().expect("wait for child")
}

/// Reopens the data directory and checks the workload's invariants: the log
/// opens; each partition holds, from offset 0 without a gap, each writer's
/// records for it in the planned order, intact (CRC-checked by reads); with
/// `acked_must_survive`, every acknowledged record is there; and every
/// acknowledged group commit survived (the offsets topic always syncs).
/// Panics naming `what` (the seed) on a violation.
pub fn check(
    dir: &Path,
    seed: u64,
    policy: FlushPolicy,
    acks: &Acks,
    acked_must_survive: bool,
    what: &str,
) {
    let log = Log::open(dir, log_config(policy)).unwrap_or_else(|e| panic!("{what}: open: {e}"));
    let topics: Vec<String> = log.list_topics().iter().map(|t| t.to_string()).collect();
    for ((topic, p), offset) in &acks.committed {
        let got = log
            .committed(GROUP, &tp(topic, *p))
            .unwrap_or_else(|e| panic!("{what}: committed: {e}"))
            .map_or(0, |c| c.offset.0);
        assert!(
            got >= *offset,
            "{what}: commit of {topic}-{p} at {offset} was acknowledged, found {got}"
        );
    }
    log.close().unwrap_or_else(|e| panic!("{what}: close: {e}"));
    for (topic, n) in TOPICS {
        if !topics.iter().any(|t| t == topic) {
            // Never acknowledged: creation is the child's first step.
            assert!(acks.records.is_empty(), "{what}: topic {topic} lost");
            continue;
        }
        for p in 0..n {
            let want = Want {
                seed,
                policy,
                acks,
                acked_must_survive,
                what,
            };
            check_partition(dir, &want, topic, p);
        }
    }
}

/// What [`check`] checks a partition against.
struct Want<'a> {
    seed: u64,
    policy: FlushPolicy,
    acks: &'a Acks,
    acked_must_survive: bool,
    what: &'a str,
}

fn check_partition(dir: &Path, want: &Want<'_>, topic: &str, p: u32) {
    let Want {
        seed,
        policy,
        acks,
        acked_must_survive,
        what,
    } = *want;
    let config = PartitionConfig {
        flush: policy,
        compacted: compacted(topic),
        ..PartitionConfig::default()
    };
    let log = PartitionLog::open(dir.join(format!("{topic}-{p}")), config)
        .unwrap_or_else(|e| panic!("{what}: open {topic}-{p}: {e}"));
    // Per writer, the n of each record found, in offset order. Retention
    // moves the start; elsewhere it stays 0.
    let mut found: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut next = log.start_offset();
    assert!(
        next.0 == 0 || retained(topic),
        "{what}: {topic}-{p} starts at {next} without retention"
    );
    while next < log.end_offset() {
        let batches = log
            .read(next, 1 << 20)
            .unwrap_or_else(|e| panic!("{what}: read {topic}-{p} at {next}: {e}"));
        for r in batches.records() {
            let r = r.unwrap_or_else(|e| panic!("{what}: {topic}-{p} at {next}: {e}"));
            // Compaction leaves gaps; nothing else may.
            if compacted(topic) {
                assert!(r.offset >= next, "{what}: {topic}-{p}: reordering");
            } else {
                assert_eq!(r.offset, next, "{what}: {topic}-{p}: gap or reordering");
            }
            let text = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).to_string();
            let (w, n) = parse_value(&text)
                .unwrap_or_else(|| panic!("{what}: {topic}-{p} at {next}: foreign value {text:?}"));
            let want = record(w, n);
            assert_eq!(r.value, want.value, "{what}: {topic}-{p} at {next}: value");
            assert_eq!(r.key, want.key, "{what}: {topic}-{p} at {next}: key");
            found.entry(w).or_default().push(n);
            next = r.offset.plus(1);
        }
        // Compaction can empty a batch's tail (or all of it): continue after
        // the last batch read, which the records alone may not reach.
        let after = batches.next_offset();
        if compacted(topic) {
            next = next.max(after.unwrap_or(next));
        }
        assert!(
            after.is_some(),
            "{what}: {topic}-{p}: nothing read at {next}, below the end {}",
            log.end_offset()
        );
    }
    log.close()
        .unwrap_or_else(|e| panic!("{what}: close {topic}-{p}: {e}"));
    for w in 0..WRITERS {
        let got = found.remove(&w).unwrap_or_default();
        let last = got.last().copied().max(acks.records.get(&w).copied());
        // What the writer meant for this partition, up to what is relevant.
        let planned: Vec<u64> = plan(seed, w)
            .take_while(|s| last.is_some_and(|l| s.first <= l))
            .filter(|s| s.topic == topic)
            .flat_map(|s| s.first..s.first + s.count)
            .filter(|&n| partition_of(topic, w, n) == p)
            .collect();
        let acked = acks.records.get(&w).map_or(0, |a| a + 1);
        let needed = planned.iter().take_while(|&&n| n < acked).count();
        if compacted(topic) {
            check_compacted(
                &planned,
                &got,
                needed,
                acked_must_survive,
                what,
                topic,
                p,
                w,
            );
            continue;
        }
        // What is kept is a gap-free run of the plan: from its start without
        // retention; from where retention cut (a prefix of each writer's
        // records in the partition goes with the oldest segments) with it.
        let skipped = match got.first() {
            Some(first) if retained(topic) => planned.iter().take_while(|&n| n != first).count(),
            _ => 0,
        };
        assert!(
            planned[skipped.min(planned.len())..].starts_with(&got),
            "{what}: {topic}-{p}: writer {w}'s records {got:?} are not a run of {planned:?}"
        );
        // Under retention, a writer with nothing left here lost it all to
        // retention (its records are all below the start), or never wrote.
        if acked_must_survive && !(retained(topic) && got.is_empty()) {
            assert!(
                skipped + got.len() >= needed,
                "{what}: {topic}-{p}: writer {w} acknowledged up to {acked}, \
                 only {} of its {needed} records here survived ({skipped} retention removed)",
                got.len()
            );
        }
    }
    assert!(
        found.is_empty(),
        "{what}: {topic}-{p}: unknown writers {found:?}"
    );
}

/// A compacted partition, one writer: its records are intact plan entries in
/// plan order (compaction removes, never reorders); with
/// `acked_must_survive`, every key's latest acknowledged record (or a newer
/// one of that key) is there.
#[allow(
    clippy::too_many_arguments,
    reason = "the parts of one check's context"
)]
fn check_compacted(
    planned: &[u64],
    got: &[u64],
    needed: usize,
    acked_must_survive: bool,
    what: &str,
    topic: &str,
    p: u32,
    w: u64,
) {
    let mut rest = planned.iter();
    for n in got {
        assert!(
            rest.any(|x| x == n),
            "{what}: {topic}-{p}: writer {w}'s records {got:?} are not a subsequence of {planned:?}"
        );
    }
    if acked_must_survive {
        let mut latest: BTreeMap<String, u64> = BTreeMap::new();
        for &n in &planned[..needed] {
            latest.insert(key(w, n), n);
        }
        for (k, n) in latest {
            assert!(
                got.iter().any(|&g| g >= n && key(w, g) == k),
                "{what}: {topic}-{p}: key {k}'s latest acknowledged record {n} is gone \
                 (found {got:?})"
            );
        }
    }
}

fn parse_value(text: &str) -> Option<(u64, u64)> {
    let rest = text.strip_prefix('w')?;
    let (w, rest) = rest.split_once(":n")?;
    let (n, _) = rest.split_once(':')?;
    Some((w.parse().ok()?, n.parse().ok()?))
}

/// Trials to run: `MOLDAU_CRASH_TRIALS` or `default`.
pub fn trials(default: u64) -> u64 {
    std::env::var("MOLDAU_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The first trial's seed: `MOLDAU_CRASH_SEED` (to replay a failure) or a
/// fixed default, so CI runs are reproducible.
pub fn base_seed() -> u64 {
    std::env::var("MOLDAU_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_0000)
}

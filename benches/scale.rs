//! Many partitions: 10,000 partitions across 100 topics, a few records each,
//! under an open-file limit of 1,024.
//!
//! Reports, for each phase (create, append rounds, close, reopen, read back), the
//! time, the file descriptors and memory maps held, and the process's RSS,
//! with the baselines measured in the same run:
//! - appends spread one record at a time over every partition, against the
//!   same number of one-record appends to a single partition;
//! - reopening the log, against listing the partition directories and
//!   reading each one's checkpoint file (the least any open must do);
//! - reading every record back through one consumer, against reading the
//!   same number of records from a single partition.
//!
//! `MOLDAU_SCALE_PARTITIONS` (default 10,000; `-- --test`: 200, first
//! configuration only) and
//! `MOLDAU_SCALE_DIR` (default cargo's target tmp dir) set the size and the
//! place. The second configuration raises the open-file limit to the hard
//! limit and the open-segment bound with it, to show what the bound costs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use moldau::{
    ConsumerConfig, Log, LogConfig, OpenSegments, PartitionId, ProducerConfig, Record, TopicName,
    TopicPartition,
};
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

#[path = "shared/scale.rs"]
mod shared_scale;
use shared_scale::smoke;

const TOPICS: u32 = 100;
const RECORDS_PER_PARTITION: u32 = 3;
const VALUE_BYTES: usize = 100;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn maps_under(dir: &Path) -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let dir = dir.to_string_lossy();
    maps.lines().filter(|l| l.contains(&*dir)).count()
}

struct Row {
    phase: String,
    ms: f64,
    per_sec: Option<f64>,
    fds: usize,
    maps: usize,
    rss: f64,
}

fn row(phase: &str, took: Duration, ops: Option<u64>, dir: &Path) -> Row {
    let ms = took.as_secs_f64() * 1e3;
    Row {
        phase: phase.into(),
        ms,
        per_sec: ops.map(|n| n as f64 / took.as_secs_f64()),
        fds: open_fds(),
        maps: maps_under(dir),
        rss: rss_mib().0,
    }
}

fn topic(t: u32) -> String {
    format!("topic-{t:03}")
}

fn all_partitions(per_topic: u32) -> Vec<TopicPartition> {
    (0..TOPICS)
        .flat_map(|t| (0..per_topic).map(move |p| (t, p)))
        .map(|(t, p)| TopicPartition::new(TopicName::new(topic(t)).expect("name"), p))
        .collect()
}

/// Reads `expected` records through one consumer assigned `partitions`.
fn consume(log: &Log, partitions: &[TopicPartition], expected: u64) -> u64 {
    let mut consumer = log
        .consumer(ConsumerConfig {
            max_poll_records: 10_000,
            ..ConsumerConfig::default()
        })
        .expect("consumer");
    consumer.assign(partitions).expect("assign");
    consumer.seek_to_beginning(&[]).expect("seek");
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(600);
    while seen < expected && Instant::now() < deadline {
        seen += consumer
            .poll(Duration::from_millis(100))
            .expect("poll")
            .len() as u64;
    }
    assert_eq!(seen, expected, "records read back");
    seen
}

fn run(dir: &Path, partitions: u32, nofile: u64, max_open: usize) -> Vec<Row> {
    let hard = getrlimit(Resource::Nofile).maximum;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(nofile),
            maximum: hard,
        },
    )
    .expect("setrlimit");
    let per_topic = partitions / TOPICS;
    let total = u64::from(per_topic * TOPICS);
    let config = LogConfig {
        max_open_segments: max_open,
        ..LogConfig::default()
    };
    let value = vec![0x42u8; VALUE_BYTES];
    let mut rows = Vec::new();

    let t = Instant::now();
    let log = Log::open(dir, config.clone()).expect("open");
    for t in 0..TOPICS {
        log.create_topic(topic(t), per_topic, None).expect("create");
    }
    log.create_topic("baseline", 1, None).expect("create");
    rows.push(row("create topics", t.elapsed(), Some(total), dir));

    let producer = log.producer(ProducerConfig::default()).expect("producer");
    for round in 0..RECORDS_PER_PARTITION {
        let t = Instant::now();
        for t in 0..TOPICS {
            let name = topic(t);
            for p in 0..per_topic {
                producer
                    .send_to(&name, PartitionId(p), Record::new(value.clone()))
                    .expect("send");
            }
        }
        rows.push(row(
            &format!("append round {} (1 record to each partition)", round + 1),
            t.elapsed(),
            Some(total),
            dir,
        ));
    }
    let t = Instant::now();
    for _ in 0..total {
        producer
            .send_to("baseline", PartitionId(0), Record::new(value.clone()))
            .expect("send");
    }
    rows.push(row(
        "baseline: same appends to 1 partition",
        t.elapsed(),
        Some(total),
        dir,
    ));
    drop(producer);
    let evictions = log.open_segments().evictions();
    let t = Instant::now();
    log.close().expect("close");
    rows.push(row("close (clean)", t.elapsed(), Some(total), dir));
    drop(log);

    let t = Instant::now();
    let log = Log::open(dir, config).expect("reopen");
    rows.push(row("reopen (clean)", t.elapsed(), Some(total), dir));
    // The close was clean: no partition may have run recovery.
    for t in 0..TOPICS {
        let d = log.describe_topic(topic(t)).expect("describe");
        assert!(
            d.partitions.iter().all(|p| !p.recovered),
            "{} recovered",
            d.name
        );
    }
    let t = Instant::now();
    let mut checkpoint_bytes = 0;
    for e in std::fs::read_dir(dir).expect("list") {
        let path = e.expect("entry").path();
        if path.is_dir() {
            checkpoint_bytes +=
                std::fs::read(path.join("partition.checkpoint")).map_or(0, |b| b.len());
        }
    }
    assert!(checkpoint_bytes > 0);
    rows.push(row(
        "baseline: list partitions, read each checkpoint",
        t.elapsed(),
        Some(total),
        dir,
    ));

    let records = total * u64::from(RECORDS_PER_PARTITION);
    let t = Instant::now();
    consume(&log, &all_partitions(per_topic), records);
    rows.push(row(
        "read back every record (1 consumer)",
        t.elapsed(),
        Some(records),
        dir,
    ));
    let baseline = [TopicPartition::new(
        TopicName::new("baseline").expect("name"),
        0,
    )];
    let t = Instant::now();
    consume(&log, &baseline, total);
    rows.push(row(
        "baseline: read as many records from 1 partition",
        t.elapsed(),
        Some(total),
        dir,
    ));
    rows.push(Row {
        phase: format!("(segments closed to make room while appending: {evictions})"),
        ms: 0.0,
        per_sec: None,
        fds: 0,
        maps: 0,
        rss: 0.0,
    });
    log.close().expect("close");
    rows
}

fn print(title: &str, rows: &[Row]) {
    println!("\n### {title}\n");
    println!("| phase | ms | per second | fds | maps | RSS MiB |");
    println!("|---|---:|---:|---:|---:|---:|");
    for r in rows {
        let per = r.per_sec.map_or(String::new(), |p| format!("{p:.0}"));
        println!(
            "| {} | {:.0} | {} | {} | {} | {:.0} |",
            r.phase, r.ms, per, r.fds, r.maps, r.rss
        );
    }
}

fn main() {
    let partitions: u32 = match std::env::var("MOLDAU_SCALE_PARTITIONS") {
        Ok(n) => n.parse().expect("MOLDAU_SCALE_PARTITIONS is a number"),
        Err(_) if smoke() => 200,
        Err(_) => 10_000,
    };
    let base: PathBuf = std::env::var_os("MOLDAU_SCALE_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from);
    std::fs::create_dir_all(&base).expect("mkdir");
    let hard = getrlimit(Resource::Nofile).maximum.unwrap_or(u64::MAX);
    println!(
        "# {partitions} partitions in {TOPICS} topics, {RECORDS_PER_PARTITION} records of {VALUE_BYTES} bytes each"
    );
    println!("(fds and maps: the whole process / mappings of files in the data directory)");

    let before = open_fds();
    let tmp = tempfile::tempdir_in(&base).expect("tempdir");
    let limit = 1024;
    let bound = (limit / 4) as usize;
    let rows = run(tmp.path(), partitions, limit, bound);
    print(
        &format!("RLIMIT_NOFILE {limit}, max_open_segments {bound} (the default under that limit); {before} fds open before"),
        &rows,
    );
    drop(tmp);
    if smoke() {
        return;
    }

    // The bound raised as far as the hard limit allows, to show its cost.
    let limit = hard.min(65_536);
    let bound = usize::try_from(limit / 3 - 100).unwrap_or(usize::MAX);
    let tmp = tempfile::tempdir_in(&base).expect("tempdir");
    let rows = run(tmp.path(), partitions, limit, bound);
    print(
        &format!("RLIMIT_NOFILE {limit} (hard limit), max_open_segments {bound}"),
        &rows,
    );
    println!(
        "\nOpenSegments::default_max() under the raised limit: {}",
        OpenSegments::default_max()
    );
}

/// `VmRSS` and `VmHWM` (peak) in MiB.
fn rss_mib() -> (f64, f64) {
    let [rss, peak] = shared_scale::status_mib(["VmRSS:", "VmHWM:"]);
    (rss, peak)
}

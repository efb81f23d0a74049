//! Memory of a consumer scanning a whole log: heap (counted by this
//! program's global allocator) and RSS, sampled as the scan goes.
//!
//! The log: `MOLDAU_SCALE_GIB` GiB (default 10) in 10 topics of one
//! partition, 1,000-byte records, built under `MOLDAU_SCALE_DIR` (default
//! cargo's target tmp dir) as `startup-<bytes>` (shared with
//! `benches/startup.rs`; reused if present). One consumer assigned every
//! partition polls from the beginning to the end. The baseline is the same
//! process before the scan: heap and RSS right after opening the log. A
//! flat heap shows as the same live heap at 10% and at 100% of the scan.
//!
//! `-- --test` (CI): a 64 MiB log.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use moldau::{ConsumerConfig, Log, LogConfig, ProducerConfig, Record, TopicName, TopicPartition};

#[path = "shared/scale.rs"]
mod shared_scale;
use shared_scale::{smoke, topic};

/// The system allocator, counting live and peak bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` with the caller's arguments;
// the counters are only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (the caller upholds `alloc`'s contract).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            let live = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const TOPICS: u32 = 10;
const VALUE_BYTES: usize = 1000;
const MIB: u64 = 1 << 20;

/// The log `benches/startup.rs` builds: about `bytes` in 10 topics.
fn build(base: &Path, bytes: u64) -> PathBuf {
    let dir = base.join(format!("startup-{bytes}"));
    if dir.join("built").exists() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let log = Log::open(&dir, LogConfig::default()).expect("open");
    let producer = log
        .producer(ProducerConfig {
            batch_size: 2 << 20,
            ..ProducerConfig::default()
        })
        .expect("producer");
    let value = vec![0x61u8; VALUE_BYTES];
    for t in 0..TOPICS {
        log.create_topic(topic(t), 1, None).expect("create");
        let mut written = 0u64;
        while written < bytes / u64::from(TOPICS) {
            let records: Vec<Record> = (0..1000).map(|_| Record::new(value.clone())).collect();
            producer.send_batch(&topic(t), records).expect("append");
            written += 1000 * (VALUE_BYTES as u64 + 10);
        }
    }
    drop(producer);
    log.close().expect("close");
    std::fs::write(dir.join("built"), b"").expect("marker");
    dir
}

fn main() {
    let bytes = match std::env::var("MOLDAU_SCALE_GIB") {
        Ok(g) => (g.parse::<f64>().expect("MOLDAU_SCALE_GIB") * (1u64 << 30) as f64) as u64,
        Err(_) if smoke() => 64 * MIB,
        Err(_) => 10 << 30,
    };
    let base: PathBuf = std::env::var_os("MOLDAU_SCALE_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from);
    std::fs::create_dir_all(&base).expect("mkdir");
    let dir = build(&base, bytes);

    let log = Log::open(&dir, LogConfig::default()).expect("open");
    let partitions: Vec<TopicPartition> = (0..TOPICS)
        .map(|t| TopicPartition::new(TopicName::new(topic(t)).expect("name"), 0))
        .collect();
    let total: u64 = partitions
        .iter()
        .map(|tp| {
            log.describe_topic(tp.topic.as_str())
                .expect("describe")
                .partitions[0]
                .end_offset
                .0
        })
        .sum();
    let mut consumer = log.consumer(ConsumerConfig::default()).expect("consumer");
    consumer.assign(&partitions).expect("assign");
    consumer.seek_to_beginning(&[]).expect("seek");
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    let heap0 = LIVE.load(Ordering::Relaxed) as f64 / MIB as f64;
    let rss0 = rss_mib();
    println!(
        "# Scanning {} records ({} MiB) with one consumer over {TOPICS} partitions",
        total,
        bytes / MIB
    );
    println!("\n| scanned | live heap MiB | peak heap MiB | RSS MiB | anon RSS MiB | file RSS MiB | MB/s |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| 0% (baseline: log open) | {heap0:.2} | {heap0:.2} | {:.0} | {:.1} | {:.0} | |",
        rss0[0], rss0[2], rss0[3]
    );
    let mut seen = 0u64;
    let mut value_bytes = 0u64;
    let mut next_report = 1;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(3600);
    while seen < total && Instant::now() < deadline {
        for r in consumer.poll(Duration::from_millis(100)).expect("poll") {
            value_bytes += r.value.map_or(0, |v| v.len() as u64);
            seen += 1;
        }
        if seen * 10 >= total * next_report {
            let rss = rss_mib();
            println!(
                "| {}% | {:.2} | {:.2} | {:.0} | {:.1} | {:.0} | {:.0} |",
                next_report * 10,
                LIVE.load(Ordering::Relaxed) as f64 / MIB as f64,
                PEAK.load(Ordering::Relaxed) as f64 / MIB as f64,
                rss[0],
                rss[2],
                rss[3],
                value_bytes as f64 / start.elapsed().as_secs_f64() / 1e6
            );
            next_report += 1;
        }
    }
    assert_eq!(seen, total, "records scanned");
    println!(
        "\npeak RSS (VmHWM) {:.0} MiB; peak heap during the scan {:.2} MiB",
        rss_mib()[1],
        PEAK.load(Ordering::Relaxed) as f64 / MIB as f64
    );
    drop(consumer);
    log.close().expect("close");
    if std::env::var_os("MOLDAU_SCALE_KEEP").is_none() {
        std::fs::remove_dir_all(&dir).expect("remove");
    }
}

/// `(VmRSS, VmHWM, RssAnon, RssFile)` in MiB.
fn rss_mib() -> [f64; 4] {
    shared_scale::status_mib(["VmRSS:", "VmHWM:", "RssAnon:", "RssFile:"])
}

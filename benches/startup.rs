//! Startup: how long `Log::open` takes.
//!
//! - Clean open of a log of `MOLDAU_SCALE_GIB` GiB (default 10) in 10 topics,
//!   against the same for a log of 10 MiB (the baseline), opened
//!   alternately, median of 9.
//! - Recovery after a crash: a child process opens the log, appends an
//!   unflushed tail (1 MiB, 64 MiB, 512 MiB), and is killed (SIGKILL; the
//!   page cache keeps the bytes, so recovery validates them all and keeps
//!   them); the next open is timed. The same 1 MiB trial on the small log is
//!   the baseline.
//!
//! Logs are built under `MOLDAU_SCALE_DIR` (default cargo's target tmp dir)
//! in `startup-<bytes>`, reused when present (`benches/scan_memory.rs` reads
//! the same big log), and removed at the end unless `MOLDAU_SCALE_KEEP` is set.
//! `-- --test` (CI) uses a 64 MiB log and tails of 1 and 4 MiB.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use moldau::{Log, LogConfig, ProducerConfig, Record};

#[path = "shared/scale.rs"]
mod shared_scale;
use shared_scale::{smoke, topic};

const TOPICS: u32 = 10;
const VALUE_BYTES: usize = 1000;
const BATCH: usize = 1000;
const MIB: u64 = 1 << 20;

/// Appends about `bytes` of 1,000-byte records, spread evenly over the
/// topics, in batches of 1,000.
fn append(log: &Log, bytes: u64) {
    let producer = log
        .producer(ProducerConfig {
            batch_size: 2 << 20,
            ..ProducerConfig::default()
        })
        .expect("producer");
    let per_topic = bytes / u64::from(TOPICS);
    let value = vec![0x61u8; VALUE_BYTES];
    for t in 0..TOPICS {
        let name = topic(t);
        let mut written = 0u64;
        while written < per_topic {
            let records: Vec<Record> = (0..BATCH).map(|_| Record::new(value.clone())).collect();
            producer.send_batch(&name, records).expect("append");
            written += (BATCH * (VALUE_BYTES + 10)) as u64;
        }
    }
}

/// A log of about `bytes` in 10 topics of one partition, closed cleanly.
fn build(base: &Path, bytes: u64) -> PathBuf {
    let dir = base.join(format!("startup-{bytes}"));
    let marker = dir.join("built");
    if marker.exists() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let t = Instant::now();
    let log = Log::open(&dir, LogConfig::default()).expect("open");
    for t in 0..TOPICS {
        log.create_topic(topic(t), 1, None).expect("create");
    }
    append(&log, bytes);
    log.close().expect("close");
    std::fs::write(&marker, b"").expect("marker");
    eprintln!(
        "built {} MiB in {:.1} s",
        bytes / MIB,
        t.elapsed().as_secs_f64()
    );
    dir
}

fn du(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).expect("list") {
        let e = e.expect("entry");
        let m = e.metadata().expect("stat");
        total += match m.is_dir() {
            true => du(&e.path()),
            false => m.len(),
        };
    }
    total
}

/// Size of each partition's last (active) segment, in MiB.
fn active_segments_mib(dir: &Path) -> Vec<u64> {
    (0..TOPICS)
        .map(|t| {
            let pdir = dir.join(format!("{}-0", topic(t)));
            let mut logs: Vec<PathBuf> = std::fs::read_dir(&pdir)
                .expect("list")
                .map(|e| e.expect("entry").path())
                .filter(|p| p.extension().is_some_and(|e| e == "log"))
                .collect();
            logs.sort();
            logs.last()
                .map_or(0, |p| std::fs::metadata(p).expect("stat").len() / MIB)
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn open_once(dir: &Path) -> Duration {
    let t = Instant::now();
    let log = Log::open(dir, LogConfig::default()).expect("open");
    let took = t.elapsed();
    log.close().expect("close");
    took
}

/// Median clean-open times of the two logs, opened alternately (so that
/// disk noise from other work on the machine hits both alike).
fn clean_opens(small: &Path, big: &Path) -> (Duration, Duration) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..9 {
        a.push(open_once(small));
        b.push(open_once(big));
    }
    (median(a), median(b))
}

/// Kills a child that appended `tail` unflushed bytes, then times the open
/// that recovers.
fn crash_and_recover(dir: &Path, tail: u64) -> Duration {
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .env("MOLDAU_STARTUP_CHILD", dir)
        .env("MOLDAU_STARTUP_TAIL", tail.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read child");
    assert_eq!(line.trim(), "ready", "child did not get ready");
    child.kill().expect("kill");
    child.wait().expect("wait");
    let t = Instant::now();
    let log = Log::open(dir, LogConfig::default()).expect("recover");
    let took = t.elapsed();
    log.close().expect("close");
    took
}

fn child(dir: &Path, tail: u64) -> ! {
    let log = Log::open(dir, LogConfig::default()).expect("child open");
    append(&log, tail);
    let mut out = std::io::stdout();
    writeln!(out, "ready").expect("write");
    out.flush().expect("flush");
    loop {
        std::thread::park();
    }
}

fn main() {
    if let Some(dir) = std::env::var_os("MOLDAU_STARTUP_CHILD") {
        let tail = std::env::var("MOLDAU_STARTUP_TAIL")
            .expect("tail")
            .parse()
            .expect("tail bytes");
        child(Path::new(&dir), tail);
    }
    let big = match std::env::var("MOLDAU_SCALE_GIB") {
        Ok(g) => (g.parse::<f64>().expect("MOLDAU_SCALE_GIB") * (1u64 << 30) as f64) as u64,
        Err(_) if smoke() => 64 * MIB,
        Err(_) => 10 << 30,
    };
    let small = 10 * MIB;
    let tails: &[u64] = match smoke() {
        true => &[MIB, 4 * MIB],
        false => &[MIB, 64 * MIB, 512 * MIB],
    };
    let base: PathBuf = std::env::var_os("MOLDAU_SCALE_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from);
    std::fs::create_dir_all(&base).expect("mkdir");
    let small_dir = build(&base, small);
    let big_dir = build(&base, big);
    println!(
        "# Startup: {TOPICS} topics of 1 partition, {VALUE_BYTES}-byte records, default segments (1 GiB)"
    );
    println!(
        "\nlogs: {} MiB and {} MiB on disk; active segments of the big log (MiB): {:?}",
        du(&small_dir) / MIB,
        du(&big_dir) / MIB,
        active_segments_mib(&big_dir)
    );
    let (small_open, big_open) = clean_opens(&small_dir, &big_dir);
    println!("\n| clean open (median of 9, alternating) | ms | vs 10 MiB log |");
    println!("|---|---:|---:|");
    println!(
        "| {} MiB log (baseline) | {:.2} | 1.00 |",
        small / MIB,
        small_open.as_secs_f64() * 1e3
    );
    println!(
        "| {} MiB log | {:.2} | {:.2} |",
        big / MIB,
        big_open.as_secs_f64() * 1e3,
        big_open.as_secs_f64() / small_open.as_secs_f64()
    );

    let small_crash = crash_and_recover(&small_dir, tails[0]);
    println!("\n| open after a crash | ms | vs 10 MiB log, 1 MiB tail |");
    println!("|---|---:|---:|");
    println!(
        "| {} MiB log, {} MiB unflushed (baseline) | {:.1} | 1.00 |",
        small / MIB,
        tails[0] / MIB,
        small_crash.as_secs_f64() * 1e3
    );
    for &tail in tails {
        let took = crash_and_recover(&big_dir, tail);
        println!(
            "| {} MiB log, {} MiB unflushed | {:.1} | {:.2} |",
            big / MIB,
            tail / MIB,
            took.as_secs_f64() * 1e3,
            took.as_secs_f64() / small_crash.as_secs_f64()
        );
    }
    println!(
        "\nactive segments of the big log after the trials (MiB): {:?}",
        active_segments_mib(&big_dir)
    );
    if std::env::var_os("MOLDAU_SCALE_KEEP").is_none() {
        std::fs::remove_dir_all(&small_dir).expect("remove");
        std::fs::remove_dir_all(&big_dir).expect("remove");
    }
}

//! The main job: a producer writes 200,000 keyed events to a topic, and a
//! consumer group of two readers drains them, committing as it goes.
//!
//! ```sh
//! cargo run --release --example quickstart
//! ```
//!
//! Data lives in `./moldau-data` (or `$MOLDAU_DATA_DIR`). Run it again: the
//! second run finds the first run's events, and the group `quickstart-readers`
//! resumes at its committed offsets, so it reads only the new 200,000.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use moldau::{
    AutoOffsetReset, Consumer, ConsumerConfig, Error, Log, LogConfig, Offset, PartitionId,
    ProducerConfig, Record, TopicPartition,
};

const TOPIC: &str = "quickstart-events";
const PARTITIONS: u32 = 3;
const GROUP: &str = "quickstart-readers";
const READERS: usize = 2;
const EVENTS: u64 = 200_000;
/// Events sent one at a time to show where each lands; the rest go in batches.
const SINGLE_SENDS: u64 = 3;
const BATCH_RECORDS: usize = 1_000;
const USERS: u64 = 1_000;
const ACTIONS: [&str; 4] = ["view", "click", "add_to_cart", "purchase"];
/// A reader gives up if the group has not drained the topic by then.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let started = Instant::now();
    let data_dir = std::env::var_os("MOLDAU_DATA_DIR")
        .map_or_else(|| PathBuf::from("./moldau-data"), PathBuf::from);
    // Absolute: `Log::open` of a new directory fsyncs its parent, which for a
    // bare relative name like `moldau-data` is "" and fails.
    let log = Log::open(&data_dir, LogConfig::default())?;
    println!("opened log in {}", data_dir.display());

    // Creating is not idempotent; an existing topic is the previous run's.
    match log.create_topic(TOPIC, PARTITIONS, None) {
        Ok(()) => println!("created topic {TOPIC} with {PARTITIONS} partitions"),
        Err(Error::TopicExists { .. }) => println!("found topic {TOPIC} from an earlier run"),
        Err(e) => return Err(e.into()),
    }
    let before = end_offsets(&log)?;
    print_offsets(&log, "before producing")?;
    let earlier: u64 = before.values().map(|o| o.0).sum();

    produce(&log, earlier)?;
    let after = end_offsets(&log)?;

    let (readers, read) = consume(&log, &after)?;
    let produced: u64 = after.values().map(|o| o.0).sum::<u64>() - earlier;
    println!("the group read {read} events; {produced} were produced this run");

    // Describe while the readers are still members, to show who owns what.
    print_group(&log)?;
    for reader in readers {
        reader.close()?;
    }
    log.close()?;
    println!(
        "closed cleanly after {:.2}s; run again to add {EVENTS} more",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Sends `EVENTS` events keyed by user, numbered on from `first_seq`.
fn produce(log: &Log, first_seq: u64) -> Result<(), BoxError> {
    let producer = log.producer(ProducerConfig::default())?;
    let started = Instant::now();
    let mut bytes = 0usize;

    // A keyed record always lands on the partition of its key (Kafka's murmur2).
    for seq in first_seq..first_seq + SINGLE_SENDS {
        let record = event(seq);
        bytes += record.value.as_ref().map_or(0, |v| v.len());
        let key = String::from_utf8_lossy(record.key.as_deref().unwrap_or_default()).into_owned();
        let sent = producer.send(TOPIC, record)?;
        println!(
            "sent {key:<9} -> {}-{} at offset {} (timestamp {})",
            sent.topic, sent.partition, sent.offset, sent.timestamp
        );
    }

    let mut batch = Vec::with_capacity(BATCH_RECORDS);
    for seq in first_seq + SINGLE_SENDS..first_seq + EVENTS {
        let record = event(seq);
        bytes += record.value.as_ref().map_or(0, |v| v.len());
        batch.push(record);
        if batch.len() == BATCH_RECORDS {
            producer.send_batch(TOPIC, std::mem::take(&mut batch))?;
        }
    }
    if !batch.is_empty() {
        producer.send_batch(TOPIC, batch)?;
    }
    let sent_secs = started.elapsed().as_secs_f64();
    // Sends are readable at once; flush makes them durable too.
    producer.flush()?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "produced {EVENTS} events ({:.1} MB of values) in {sent_secs:.3}s, {:.3}s with fsync: \
         {:.0} events/s",
        bytes as f64 / 1e6,
        secs,
        EVENTS as f64 / secs
    );
    print_offsets(log, "after producing")
}

/// Event number `seq`: a JSON-ish value keyed by its user, with a header.
fn event(seq: u64) -> Record {
    let user = seq * 7919 % USERS;
    let action = ACTIONS[(seq % ACTIONS.len() as u64) as usize];
    let value = format!(r#"{{"seq":{seq},"user":{user},"action":"{action}"}}"#);
    Record::new(value)
        .with_key(format!("user-{user}"))
        .with_header("source", "quickstart")
}

/// What one reader did.
#[derive(Debug, Default)]
struct ReaderStats {
    per_partition: BTreeMap<PartitionId, u64>,
    commits: u64,
    first: Option<String>,
}

/// Runs the group's readers, each on its own thread, until the group's
/// committed offsets reach `ends`. Returns the readers, still members, and
/// the number of events they read.
fn consume(
    log: &Log,
    ends: &BTreeMap<TopicPartition, Offset>,
) -> Result<(Vec<Consumer>, u64), BoxError> {
    let config = ConsumerConfig {
        auto_offset_reset: AutoOffsetReset::Earliest,
        enable_auto_commit: false,
        // Bigger polls mean fewer commits, each of which is fsynced.
        max_poll_records: 5_000,
        ..ConsumerConfig::default()
    };
    // Both join before either polls, so the group settles in one rebalance.
    let mut readers = Vec::with_capacity(READERS);
    for _ in 0..READERS {
        let mut reader = log.consumer(config.clone())?;
        reader.subscribe(GROUP, &[TOPIC])?;
        readers.push(reader);
    }
    let resumed: u64 = ends
        .keys()
        .map(|tp| Ok(log.committed(GROUP, tp)?.map_or(0, |c| c.offset.0)))
        .sum::<Result<u64, Error>>()?;
    println!("{GROUP} resumes after its committed offsets ({resumed} events already read)");
    let started = Instant::now();
    let results = thread::scope(|s| {
        let handles: Vec<_> = readers
            .into_iter()
            .map(|reader| s.spawn(move || read_until_drained(reader, log, ends)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect::<Result<Vec<_>, BoxError>>()
    })?;
    let secs = started.elapsed().as_secs_f64();

    let mut readers = Vec::with_capacity(READERS);
    let mut total = 0;
    for (i, (reader, stats)) in results.into_iter().enumerate() {
        let read: u64 = stats.per_partition.values().sum();
        total += read;
        let parts: Vec<String> = stats
            .per_partition
            .iter()
            .map(|(p, n)| format!("{TOPIC}-{p}: {n}"))
            .collect();
        println!(
            "reader {} ({}) read {read} events in {} commits [{}]",
            i + 1,
            reader.member_id().unwrap_or("?"),
            stats.commits,
            parts.join(", ")
        );
        if let Some(first) = &stats.first {
            println!("  first: {first}");
        }
        readers.push(reader);
    }
    println!(
        "consumed {total} events in {secs:.3}s: {:.0} events/s",
        total as f64 / secs.max(1e-9)
    );
    Ok((readers, total))
}

/// Polls and commits until the whole group has committed `ends`; one reader
/// may finish its partitions first and wait for the other.
fn read_until_drained(
    mut reader: Consumer,
    log: &Log,
    ends: &BTreeMap<TopicPartition, Offset>,
) -> Result<(Consumer, ReaderStats), BoxError> {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    let mut stats = ReaderStats::default();
    loop {
        let records = reader.poll(Duration::from_millis(50))?;
        if let Some(r) = records.first().filter(|_| stats.first.is_none()) {
            let header = r.headers.first().map_or(String::new(), |h| {
                let value = h.value.as_deref().unwrap_or_default();
                format!(
                    " [{}={}]",
                    String::from_utf8_lossy(&h.key),
                    String::from_utf8_lossy(value)
                )
            });
            stats.first = Some(format!(
                "{}-{}@{} key={} value={}{header}",
                r.topic,
                r.partition,
                r.offset,
                String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()),
                String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()),
            ));
        }
        for r in &records {
            *stats.per_partition.entry(r.partition).or_default() += 1;
        }
        if !records.is_empty() {
            // The records are processed (counted): commit the positions after them.
            reader.commit()?;
            stats.commits += 1;
        }
        if group_caught_up(log, ends)? {
            return Ok((reader, stats));
        }
        if Instant::now() > deadline {
            return Err(format!("{GROUP} did not drain {TOPIC} within {DRAIN_TIMEOUT:?}").into());
        }
    }
}

/// Whether the group's committed offsets have reached `ends`.
fn group_caught_up(log: &Log, ends: &BTreeMap<TopicPartition, Offset>) -> Result<bool, BoxError> {
    for (tp, end) in ends {
        let committed = log.committed(GROUP, tp)?.map_or(Offset(0), |c| c.offset);
        if committed < *end {
            return Ok(false);
        }
    }
    Ok(true)
}

fn end_offsets(log: &Log) -> Result<BTreeMap<TopicPartition, Offset>, BoxError> {
    let topic = log.describe_topic(TOPIC)?;
    Ok(topic
        .partitions
        .iter()
        .map(|p| {
            let tp = TopicPartition::new(topic.name.clone(), p.partition);
            (tp, p.end_offset)
        })
        .collect())
}

fn print_offsets(log: &Log, when: &str) -> Result<(), BoxError> {
    let topic = log.describe_topic(TOPIC)?;
    let total: u64 = topic
        .partitions
        .iter()
        .map(|p| p.end_offset.0 - p.start_offset.0)
        .sum();
    println!("{TOPIC} {when}: {total} events");
    for p in &topic.partitions {
        println!(
            "  partition {}: offsets {:>7}..{:<7} {:>6.1} MB in {} segment(s)",
            p.partition,
            p.start_offset,
            p.end_offset,
            p.size_bytes as f64 / 1e6,
            p.segments
        );
    }
    Ok(())
}

fn print_group(log: &Log) -> Result<(), BoxError> {
    let group = log.describe_group(GROUP)?;
    let assignor = group.assignor.map_or("none", |a| a.name());
    println!(
        "group {} (generation {}, assignor {assignor}):",
        group.group, group.generation
    );
    for m in &group.members {
        let owned: Vec<String> = m.assignment.iter().map(ToString::to_string).collect();
        println!("  member {} owns [{}]", m.member_id, owned.join(", "));
    }
    for p in &group.offsets {
        let committed = p
            .committed
            .as_ref()
            .map_or_else(|| "-".to_owned(), |c| c.offset.to_string());
        println!(
            "  {}: committed {committed:>7}, end {:>7}, lag {}",
            p.partition, p.end_offset, p.lag
        );
    }
    Ok(())
}

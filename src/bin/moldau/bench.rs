//! `moldau bench`: produce then consume N records on a temporary directory
//! and print records/s and MB/s for each, so a user sees this machine's
//! speed in one command.

use std::time::{Duration, Instant};

use moldau::{
    AutoOffsetReset, ConsumerConfig, Log, LogConfig, ProducerConfig, Record, TopicName,
    TopicPartition,
};

use crate::cli::BenchArgs;
use crate::error::{self, CliError};

/// Records per `send_batch` call.
const CHUNK: u64 = 1000;

pub fn run(args: BenchArgs) -> Result<(), CliError> {
    if args.records == 0 {
        return Err(CliError::Message("--records must be at least 1".into()));
    }
    let tmp = tempfile::Builder::new()
        .prefix("moldau-bench-")
        .tempdir()
        .map_err(|e| CliError::Message(format!("cannot create a temporary directory: {e}")))?;
    let log = Log::open(tmp.path(), LogConfig::default())?;
    log.create_topic("bench", args.partitions, None)?;
    let value = bytes::Bytes::from(vec![b'x'; args.record_size]);
    error::say(&format!(
        "{} records of {} bytes, {} partition(s), in {}",
        args.records,
        args.record_size,
        args.partitions,
        tmp.path().display()
    ))?;

    // Produce: batches of keyless records, as a bulk loader would send them.
    let producer = log.producer(ProducerConfig::default())?;
    let start = Instant::now();
    let mut sent = 0;
    while sent < args.records {
        let n = CHUNK.min(args.records - sent);
        let records = (0..n).map(|_| Record::new(value.clone())).collect();
        producer.send_batch("bench", records)?;
        sent += n;
    }
    producer.flush()?;
    let produce = start.elapsed();
    drop(producer);
    report("produce", args.records, args.record_size, produce)?;

    // Consume: every partition from the beginning until all records are read.
    let mut consumer = log.consumer(ConsumerConfig {
        auto_offset_reset: AutoOffsetReset::Earliest,
        max_poll_records: 10_000,
        ..ConsumerConfig::default()
    })?;
    let topic = TopicName::new("bench")?;
    let parts: Vec<_> = (0..args.partitions)
        .map(|p| TopicPartition::new(topic.clone(), p))
        .collect();
    consumer.assign(&parts)?;
    let start = Instant::now();
    let mut read = 0u64;
    let mut bytes = 0u64;
    while read < args.records {
        let records = consumer.poll(Duration::from_secs(5))?;
        if records.is_empty() {
            return Err(CliError::Message(format!(
                "consumer stopped after {read} of {} records",
                args.records
            )));
        }
        read += records.len() as u64;
        bytes += records
            .iter()
            .map(|r| r.value.as_ref().map_or(0, |v| v.len() as u64))
            .sum::<u64>();
    }
    let consume = start.elapsed();
    if bytes != args.records * args.record_size as u64 {
        return Err(CliError::Message(format!(
            "consumed {bytes} value bytes, expected {}",
            args.records * args.record_size as u64
        )));
    }
    consumer.close()?;
    report("consume", args.records, args.record_size, consume)?;
    log.close()?;
    Ok(())
}

fn report(what: &str, records: u64, record_size: usize, took: Duration) -> Result<(), CliError> {
    let secs = took.as_secs_f64().max(1e-9);
    let mb = (records * record_size as u64) as f64 / 1e6;
    error::say(&format!(
        "{what}: {:>12.0} records/s  {:>9.1} MB/s  ({records} records in {:.3} s)",
        records as f64 / secs,
        mb / secs,
        took.as_secs_f64()
    ))
}

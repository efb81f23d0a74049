//! `moldau consume`: print records as they arrive (kafka-console-consumer.sh,
//! kcat -C), following like `tail -f` unless told when to stop.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use moldau::{
    AutoOffsetReset, Consumer, ConsumerConfig, ConsumerRecord, Log, Offset, OffsetAndMetadata,
    TopicName, TopicPartition,
};

use crate::cli::ConsumeArgs;
use crate::error::{self, CliError};
use crate::format::{self, Format};
use crate::signals::StopFlag;

/// How long one poll waits; bounds how late a Ctrl-C is noticed.
const POLL_WAIT: Duration = Duration::from_millis(200);

/// How each record is printed.
enum Output {
    Format(Format),
    Json,
}

pub fn run(dir: &Path, args: ConsumeArgs) -> Result<(), CliError> {
    let output = match (&args.format, args.json) {
        (_, true) => Output::Json,
        (Some(f), false) => Output::Format(Format::parse(f)?),
        (None, false) => Output::Format(Format::parse("%v\\n")?),
    };
    let from_time = match &args.from_time {
        Some(t) => Some(crate::time::parse("--from-time", t)?),
        None => None,
    };
    let stop = StopFlag::install()?;
    let log = error::open_existing(dir)?;
    let topic = TopicName::new(&args.topic)?;
    let count = log.describe_topic(&topic)?.partitions.len() as u32;
    let partitions: Vec<TopicPartition> = match args.partition {
        Some(p) if p >= count => {
            return Err(moldau::Error::UnknownPartition {
                topic: topic.to_string(),
                partition: p,
                partitions: count,
            }
            .into())
        }
        Some(p) => vec![TopicPartition::new(topic.clone(), p)],
        None => (0..count)
            .map(|p| TopicPartition::new(topic.clone(), p))
            .collect(),
    };
    let mut consumer = log.consumer(ConsumerConfig {
        auto_offset_reset: match args.from_beginning {
            true => AutoOffsetReset::Earliest,
            false => AutoOffsetReset::Latest,
        },
        enable_auto_commit: false,
        ..ConsumerConfig::default()
    })?;
    match (&args.group, args.partition) {
        // Kafka's console consumer joins the group; with a partition it assigns.
        (Some(g), None) => consumer.subscribe(g, &[topic.as_str()])?,
        (Some(g), Some(_)) => consumer.assign_in_group(g, &partitions)?,
        (None, _) => {
            consumer.assign(&partitions)?;
            position(&log, &mut consumer, &partitions, &args, from_time)?;
        }
    }
    let result = consume(&log, &mut consumer, &args, &output, &stop);
    // Leave the group and close the log whatever happened.
    let closed = consumer.close();
    let log_closed = error::close(log);
    result?;
    closed?;
    log_closed
}

/// Sets the start positions of an assigned consumer.
fn position(
    log: &Log,
    consumer: &mut Consumer,
    partitions: &[TopicPartition],
    args: &ConsumeArgs,
    from_time: Option<moldau::Timestamp>,
) -> Result<(), CliError> {
    if args.from_beginning {
        consumer.seek_to_beginning(partitions)?;
    } else if let Some(offset) = args.offset {
        for tp in partitions {
            let d = log.describe_topic(&tp.topic)?;
            let p = &d.partitions[tp.partition.0 as usize];
            if offset < p.start_offset.0 || offset > p.end_offset.0 {
                return Err(moldau::Error::OffsetOutOfRange {
                    offset: Offset(offset),
                    start: p.start_offset,
                    end: p.end_offset,
                }
                .into());
            }
            consumer.seek(tp, Offset(offset))?;
        }
    } else if let Some(ts) = from_time {
        for tp in partitions {
            match log.offset_for_timestamp(tp, ts)? {
                Some(o) => consumer.seek(tp, o)?,
                None => consumer.seek_to_end(std::slice::from_ref(tp))?,
            }
        }
    } else {
        consumer.seek_to_end(partitions)?;
    }
    Ok(())
}

fn consume(
    log: &Log,
    consumer: &mut Consumer,
    args: &ConsumeArgs,
    output: &Output,
    stop: &StopFlag,
) -> Result<(), CliError> {
    let mut printed = 0u64;
    let mut stdout = std::io::stdout().lock();
    let mut buf = Vec::with_capacity(1 << 16);
    let mut committed: BTreeMap<TopicPartition, Offset> = BTreeMap::new();
    while !stop.raised() {
        if args.max_messages.is_some_and(|max| printed >= max) {
            break;
        }
        let records = consumer.poll(POLL_WAIT)?;
        // The first record of each partition polled but not printed (past
        // --max-messages): its offset is where the group must resume.
        let mut unprinted: BTreeMap<TopicPartition, Offset> = BTreeMap::new();
        buf.clear();
        for r in &records {
            if args.max_messages.is_some_and(|max| printed >= max) {
                let tp = TopicPartition::new(r.topic.clone(), r.partition);
                unprinted.entry(tp).or_insert(r.offset);
                continue;
            }
            print(&mut buf, output, r);
            printed += 1;
        }
        stdout.write_all(&buf).map_err(error::output)?;
        stdout.flush().map_err(error::output)?;
        if consumer.group_id().is_some() {
            commit(consumer, &mut committed, &unprinted)?;
        }
        if args.exit_at_end && records.is_empty() && at_end(log, consumer)? {
            break;
        }
    }
    Ok(())
}

/// Commits, for every assigned partition, the offset after the last record
/// printed (the consumer's position, unless records were polled but not
/// printed), as Kafka's console consumer commits its positions: partitions
/// with nothing new get an offset too, so `groups describe` shows their
/// lag. Writes only when something moved.
fn commit(
    consumer: &mut Consumer,
    committed: &mut BTreeMap<TopicPartition, Offset>,
    unprinted: &BTreeMap<TopicPartition, Offset>,
) -> Result<(), CliError> {
    let mut offsets = Vec::new();
    for tp in consumer.assignment() {
        let offset = match unprinted.get(&tp) {
            Some(&o) => o,
            None => consumer.position(&tp)?,
        };
        if committed.get(&tp) != Some(&offset) {
            offsets.push((tp, OffsetAndMetadata::new(offset)));
        }
    }
    if !offsets.is_empty() {
        consumer.commit_offsets(&offsets)?;
        for (tp, o) in offsets {
            committed.insert(tp, o.offset);
        }
    }
    Ok(())
}

/// Whether every assigned partition has been read to its end (false while
/// a group has not assigned anything yet).
fn at_end(log: &Log, consumer: &mut Consumer) -> Result<bool, CliError> {
    let assigned = consumer.assignment();
    if assigned.is_empty() {
        return Ok(false);
    }
    for tp in assigned {
        let d = log.describe_topic(&tp.topic)?;
        let end = d
            .partitions
            .get(tp.partition.0 as usize)
            .map_or(Offset(0), |p| p.end_offset);
        if consumer.position(&tp)? < end {
            return Ok(false);
        }
    }
    Ok(true)
}

fn print(buf: &mut Vec<u8>, output: &Output, r: &ConsumerRecord) {
    match output {
        Output::Format(f) => f.write(buf, r),
        Output::Json => format::write_json(buf, r),
    }
}

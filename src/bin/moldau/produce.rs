//! `moldau produce`: records from stdin or a file, one per line
//! (kafka-console-producer.sh).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::Path;

use bytes::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use moldau::{Header, PartitionId, ProducerConfig, Record};

use crate::cli::ProduceArgs;
use crate::error::{self, CliError};

/// Records sent per call: bounds memory, keeps batches large.
const CHUNK_RECORDS: usize = 4096;
/// Input bytes per call, whichever comes first.
const CHUNK_BYTES: usize = 4 << 20;
/// Files at least this large get a progress bar (on a terminal).
const PROGRESS_MIN_BYTES: u64 = 16 << 20;

pub fn run(dir: &Path, args: ProduceArgs) -> Result<(), CliError> {
    let headers = args
        .headers
        .iter()
        .map(|h| {
            let (k, v) = error::key_value("--header", h)?;
            Ok(Header::new(k.to_owned(), v.to_owned()))
        })
        .collect::<Result<Vec<_>, CliError>>()?;
    let separator = match args.key_separator.as_deref() {
        Some("") => {
            return Err(CliError::Message(
                "--key-separator must not be empty".into(),
            ))
        }
        s => s.map(|s| s.as_bytes().to_vec()),
    };
    let (input, progress): (Box<dyn BufRead>, Option<ProgressBar>) = match &args.file {
        Some(path) => {
            let file = File::open(path)
                .map_err(|e| CliError::Message(format!("cannot open {}: {e}", path.display())))?;
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            let bar = (len >= PROGRESS_MIN_BYTES).then(|| progress_bar(len));
            let reader: Box<dyn Read> = match &bar {
                Some(bar) => Box::new(bar.wrap_read(file)),
                None => Box::new(file),
            };
            (Box::new(BufReader::with_capacity(1 << 20, reader)), bar)
        }
        None => (Box::new(std::io::stdin().lock()), None),
    };
    // Typed lines are sent as they are entered, as Kafka's console producer does.
    let chunk_records = match args.file.is_none() && std::io::stdin().is_terminal() {
        true => 1,
        false => CHUNK_RECORDS,
    };
    let log = error::open_existing(dir)?;
    let producer = log.producer(ProducerConfig::default())?;
    let mut sender = Sender {
        producer: &producer,
        topic: &args.topic,
        partition: args.partition.map(PartitionId),
        records: 0,
        bytes: 0,
        per_partition: BTreeMap::new(),
    };
    let result = read_lines(
        input,
        separator.as_deref(),
        &headers,
        chunk_records,
        &mut sender,
    );
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    // Flush what was sent, even after an input error midway.
    let summary = sender.summary();
    producer.flush()?;
    drop(producer);
    error::close(log)?;
    result?;
    error::say(&summary)?;
    Ok(())
}

fn progress_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    // The template is a constant known to parse; fall back to the default style.
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)")
    {
        bar.set_style(style);
    }
    bar
}

/// Reads `input` line by line and sends records in chunks.
fn read_lines(
    mut input: Box<dyn BufRead>,
    separator: Option<&[u8]>,
    headers: &[Header],
    chunk_records: usize,
    sender: &mut Sender<'_>,
) -> Result<(), CliError> {
    let mut chunk = Vec::with_capacity(chunk_records);
    let mut chunk_bytes = 0;
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(|e| CliError::Message(format!("cannot read input: {e}")))?;
        if n == 0 {
            break;
        }
        number += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        let mut record = match separator {
            None => Record::new(Bytes::copy_from_slice(&line)),
            Some(sep) => {
                let Some(at) = find(&line, sep) else {
                    // The lines before it are produced, as Kafka's console
                    // producer would have sent them.
                    sender.send(std::mem::take(&mut chunk))?;
                    return Err(CliError::Message(format!(
                        "line {number} has no key separator {:?} (the {} records before it were produced)",
                        String::from_utf8_lossy(sep),
                        sender.records
                    )));
                };
                Record::new(Bytes::copy_from_slice(&line[at + sep.len()..]))
                    .with_key(Bytes::copy_from_slice(&line[..at]))
            }
        };
        record.headers = headers.to_vec();
        chunk_bytes += line.len();
        chunk.push(record);
        if chunk.len() >= chunk_records || chunk_bytes >= CHUNK_BYTES {
            sender.send(std::mem::take(&mut chunk))?;
            chunk_bytes = 0;
        }
    }
    if !chunk.is_empty() {
        sender.send(chunk)?;
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Sends chunks and counts what was written.
struct Sender<'a> {
    producer: &'a moldau::Producer,
    topic: &'a str,
    partition: Option<PartitionId>,
    records: u64,
    bytes: u64,
    per_partition: BTreeMap<u32, u64>,
}

impl Sender<'_> {
    fn send(&mut self, records: Vec<Record>) -> Result<(), CliError> {
        if records.is_empty() {
            return Ok(());
        }
        let bytes: u64 = records.iter().map(record_bytes).sum();
        let sent = match self.partition {
            Some(p) => self.producer.send_batch_to(self.topic, p, records)?,
            None => self.producer.send_batch(self.topic, records)?,
        };
        self.records += sent.len() as u64;
        self.bytes += bytes;
        for m in sent {
            *self.per_partition.entry(m.partition.0).or_default() += 1;
        }
        Ok(())
    }

    fn summary(&self) -> String {
        let parts: Vec<String> = self
            .per_partition
            .iter()
            .map(|(p, n)| format!("{p}: {n}"))
            .collect();
        format!(
            "Produced {} records ({} bytes) to {}; records per partition: {}",
            self.records,
            self.bytes,
            self.topic,
            if parts.is_empty() {
                "none".to_owned()
            } else {
                parts.join(", ")
            }
        )
    }
}

/// Key, value and header bytes of a record.
fn record_bytes(r: &Record) -> u64 {
    let len = |b: &Option<Bytes>| b.as_ref().map_or(0, |b| b.len() as u64);
    len(&r.key)
        + len(&r.value)
        + r.headers
            .iter()
            .map(|h| h.key.len() as u64 + len(&h.value))
            .sum::<u64>()
}

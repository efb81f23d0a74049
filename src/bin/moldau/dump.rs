//! `moldau dump`: the batches of a `.log` segment, or the entries of an
//! `.index` / `.timeindex` file, in kafka-dump-log.sh's style; exits
//! non-zero with the byte position on corruption.

use std::io::{BufWriter, Write};
use std::path::Path;

use moldau::inspect::{dump_index, IndexEntry, LogFileWalk};
use moldau::record::{Compression, TimestampType};
use moldau::StoredRecord;

use crate::cli::DumpArgs;
use crate::error::{self, CliError};

pub fn run(args: DumpArgs) -> Result<(), CliError> {
    let path = &args.path;
    let ext = path.extension().and_then(|e| e.to_str());
    if !matches!(ext, Some("log" | "index" | "timeindex")) {
        return Err(CliError::Message(format!(
            "{}: not a segment file (expected a .log, .index or .timeindex file)",
            path.display()
        )));
    }
    let stdout = std::io::stdout().lock();
    let mut out = BufWriter::new(stdout);
    writeln!(out, "Dumping {}", path.display()).map_err(error::output)?;
    let result = match ext {
        Some("log") => dump_log(&mut out, path, args.print_records),
        _ => dump_index_file(&mut out, path),
    };
    out.flush().map_err(error::output)?;
    result
}

fn dump_log(out: &mut impl Write, path: &Path, print_records: bool) -> Result<(), CliError> {
    let mut walk = LogFileWalk::open(path)?;
    if let Some(base) = walk.base_offset() {
        writeln!(out, "Log starting offset: {base}").map_err(error::output)?;
    }
    let (mut batches, mut records) = (0u64, 0u64);
    for batch in walk.by_ref() {
        let b = batch?;
        let h = &b.header;
        let codec = match h.compression() {
            Ok(Compression::None) => "none",
            Ok(Compression::Gzip) => "gzip",
            Ok(Compression::Snappy) => "snappy",
            Ok(Compression::Lz4) => "lz4",
            Ok(Compression::Zstd) => "zstd",
            Err(_) => "unknown",
        };
        let time_type = match h.timestamp_type() {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        };
        let last_sequence = match h.base_sequence {
            -1 => -1,
            s => s.wrapping_add(h.last_offset_delta),
        };
        writeln!(
            out,
            "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} \
             producerId: {} producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} \
             isControl: {} position: {} {time_type}: {} size: {} magic: {} compresscodec: {codec} \
             crc: {} isvalid: {}",
            h.base_offset,
            h.last_offset(),
            h.record_count,
            h.base_sequence,
            last_sequence,
            h.producer_id,
            h.producer_epoch,
            h.partition_leader_epoch,
            h.is_transactional(),
            h.is_control(),
            b.position,
            h.max_timestamp,
            h.total_size(),
            h.magic,
            h.crc,
            b.crc_valid,
        )
        .map_err(error::output)?;
        batches += 1;
        if print_records && b.crc_valid {
            let iter = b
                .batch
                .records()
                .map_err(|r| corrupt(path, b.position, r))?;
            for r in iter {
                let r = r.map_err(|reason| corrupt(path, b.position, reason))?;
                print_record(out, &r, time_type).map_err(error::output)?;
                records += 1;
            }
        }
    }
    if walk.zero_tail_bytes() > 0 {
        writeln!(
            out,
            "Zero-filled tail: {} bytes from position {} (preallocated, or an unclean stop's tail)",
            walk.zero_tail_bytes(),
            walk.valid_bytes()
        )
        .map_err(error::output)?;
    }
    let summary = match print_records {
        true => format!(
            "{batches} batches, {records} records, {} valid bytes",
            walk.valid_bytes()
        ),
        false => format!("{batches} batches, {} valid bytes", walk.valid_bytes()),
    };
    writeln!(out, "Summary: {summary} of {}", walk.file_bytes()).map_err(error::output)?;
    match walk.corruption() {
        Some(c) => Err(c.clone().into_error(path).into()),
        None => Ok(()),
    }
}

fn corrupt(path: &Path, position: u64, reason: moldau::FormatError) -> CliError {
    moldau::inspect::Corruption { position, reason }
        .into_error(path)
        .into()
}

fn print_record(out: &mut impl Write, r: &StoredRecord, time_type: &str) -> std::io::Result<()> {
    let len = |b: &Option<bytes::Bytes>| b.as_ref().map_or(-1, |b| b.len() as i64);
    let text = |b: &Option<bytes::Bytes>| match b {
        Some(b) => String::from_utf8_lossy(b).into_owned(),
        None => "null".to_owned(),
    };
    let header_keys: Vec<String> = r
        .headers
        .iter()
        .map(|h| String::from_utf8_lossy(&h.key).into_owned())
        .collect();
    writeln!(
        out,
        "| offset: {} {time_type}: {} keySize: {} valueSize: {} headerKeys: [{}] key: {} payload: {}",
        r.offset,
        r.timestamp,
        len(&r.key),
        len(&r.value),
        header_keys.join(","),
        text(&r.key),
        text(&r.value),
    )
}

fn dump_index_file(out: &mut impl Write, path: &Path) -> Result<(), CliError> {
    let dump = dump_index(path)?;
    for e in &dump.entries {
        match e {
            IndexEntry::Offset { offset, position } => {
                writeln!(out, "offset: {offset} position: {position}")
            }
            IndexEntry::Time { timestamp, offset } => {
                writeln!(out, "timestamp: {timestamp} offset: {offset}")
            }
        }
        .map_err(error::output)?;
    }
    writeln!(
        out,
        "Summary: {} entries, {} bytes of unused (zero) entries",
        dump.entries.len(),
        dump.zero_tail_bytes
    )
    .map_err(error::output)?;
    match dump.corruption {
        Some(c) => Err(c.into_error(path).into()),
        None => Ok(()),
    }
}

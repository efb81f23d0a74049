//! Appends events to a partition log in `./moldau-data` (or `$MOLDAU_DATA_DIR`),
//! reads them back, and shows what survives a restart.
//!
//! Run it twice: the second run finds the first run's events on disk.

use std::time::Instant;

use moldau::{FlushPolicy, Offset, PartitionConfig, PartitionLog, Record, Timestamp};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data_dir = std::env::var_os("MOLDAU_DATA_DIR")
        .map_or_else(|| "moldau-data".into(), std::path::PathBuf::from);
    let dir = data_dir.join("quickstart-0");
    let config = PartitionConfig {
        flush: FlushPolicy::Never,
        ..PartitionConfig::default()
    };
    let log = PartitionLog::open(&dir, config)?;
    let before = log.end_offset();
    println!(
        "opened {} at offsets {}..{}",
        dir.display(),
        log.start_offset(),
        before
    );

    // Append 200,000 events in batches of 1,000, each keyed by user.
    let started = Instant::now();
    let mut batch = Vec::with_capacity(1000);
    for i in 0..200_000u64 {
        let event = format!("{{\"user\":{},\"action\":\"click\",\"seq\":{i}}}", i % 97);
        batch.push(
            Record::new(event)
                .with_key(format!("user-{}", i % 97))
                .with_header("source", "quickstart"),
        );
        if batch.len() == 1000 {
            log.append(&batch)?;
            batch.clear();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "appended 200000 records in {:.3}s ({:.0} records/s)",
        secs,
        200_000.0 / secs
    );

    // Read everything this run appended, batch by batch, zero-copy.
    let started = Instant::now();
    let (mut count, mut bytes, mut next) = (0u64, 0usize, before);
    while next < log.end_offset() {
        let batches = log.read(next, 1 << 20)?;
        for record in batches.records() {
            let record = record?;
            bytes += record.value.as_ref().map_or(0, |v| v.len());
            count += 1;
        }
        next = batches.next_offset().unwrap_or(log.end_offset());
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "read back {count} records ({bytes} value bytes) in {secs:.3}s ({:.0} records/s)",
        count as f64 / secs
    );

    // Look up by time and by offset.
    let an_hour_ago = Timestamp(Timestamp::now().0 - 3_600_000);
    println!(
        "first offset in the last hour: {:?}",
        log.offset_for_timestamp(an_hour_ago)?
    );
    if let Some(first) = log.read(Offset(before.0), 1)?.records().next() {
        let first = first?;
        println!(
            "offset {}: key={:?} value={:?}",
            first.offset,
            first.key.as_deref().map(String::from_utf8_lossy),
            first.value.as_deref().map(String::from_utf8_lossy)
        );
    }
    let stats = log.stats();
    println!(
        "{} segment(s), offsets {}..{}",
        stats.segment_count, stats.start_offset, stats.end_offset
    );
    log.close()?;
    println!("closed cleanly; run again to append more");
    Ok(())
}

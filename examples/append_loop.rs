//! Appends N single 100-byte records, one `append` call each, to a partition
//! in DIR. Used to show that the append path makes no system call per record:
//!
//! ```sh
//! cargo build --release --example append_loop
//! strace -f -c target/release/examples/append_loop /tmp/loop-1k 1000
//! strace -f -c target/release/examples/append_loop /tmp/loop-100k 100000
//! ```
//! The two system-call totals differ by a handful of `fallocate`s, not by 99,000.

use bytes::Bytes;
use moldau::{PartitionConfig, PartitionLog, Record};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(n)) = (args.next(), args.next()) else {
        return Err("usage: append_loop DIR N".into());
    };
    let n: u64 = n.parse()?;
    let log = PartitionLog::open(dir, PartitionConfig::default())?;
    let value = Bytes::from(vec![b'x'; 100]);
    for _ in 0..n {
        log.append(&[Record {
            value: Some(value.clone()),
            ..Record::default()
        }])?;
    }
    log.close()?;
    println!("appended {n} records; end offset {}", log.end_offset());
    Ok(())
}

//! moldau: an embeddable, Kafka-compatible, partitioned commit log.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod batches;
mod checkpoint;
mod clock;
mod config;
mod error;
mod fsutil;
mod mmap;
mod notify;
mod partition;
pub mod record;
mod segment;
mod types;

pub use batches::{BatchIter, Batches, RecordIter};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{FlushPolicy, PartitionConfig};
pub use error::{Error, FormatError, Result};
pub use notify::{Doorbell, Rung};
pub use partition::{PartitionLog, PartitionStats, Subscription};
pub use record::{Header, Record, StoredRecord};
pub use types::{Offset, Timestamp};

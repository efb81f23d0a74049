//! moldau: an embeddable, Kafka-compatible, partitioned commit log.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod record;
mod types;

pub use error::{Error, FormatError, Result};
pub use types::{Offset, Timestamp};

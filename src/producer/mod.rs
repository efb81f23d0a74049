//! The producer: partitioning and batching of sends.

mod combiner;

pub(crate) use combiner::{approx_size, BatchLimits, Combiner};

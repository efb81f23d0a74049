//! The producer: partitioning and batching of sends.

pub(crate) mod partitioner;

//! Broker throughput: see tests/interop/bench.sh (a real librdkafka client
//! against the broker example); this target only keeps the feature building.
fn main() {}

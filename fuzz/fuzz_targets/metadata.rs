//! Fuzz target: decoders of the small metadata files (`partition.checkpoint`,
//! `topics.checkpoint`) and of `__consumer_offsets` records. The first byte
//! picks the decoder; for checkpoints, whether the rest is a whole file or
//! only a payload to be framed with a valid header and CRC.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moldau::fuzzing;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // Errors are answers; only a panic (or a hang) is a finding.
    let _ = match mode % 5 {
        0 => fuzzing::partition_checkpoint(rest, false),
        1 => fuzzing::partition_checkpoint(rest, true),
        2 => fuzzing::topic_catalog(rest, false),
        3 => fuzzing::topic_catalog(rest, true),
        _ => {
            // The next byte is the key's length.
            let Some((&key_len, kv)) = rest.split_first() else {
                return;
            };
            let (key, value) = kv.split_at(usize::from(key_len).min(kv.len()));
            fuzzing::offset_commit(key, value)
        }
    };
});

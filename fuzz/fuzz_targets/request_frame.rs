//! Fuzz target: the broker's request-frame decoder (`src/broker/conn.rs`,
//! through `moldau::fuzzing::request_frame`): the input is the bytes after a
//! frame's length prefix, decoded as the request header, checked against
//! the advertised API versions, and decoded as that API's body. Seeds are
//! valid frames of the common APIs (`tests/reliability_request_frames_prop.rs`
//! writes them).
#![no_main]

use libfuzzer_sys::fuzz_target;
use moldau::fuzzing;

fuzz_target!(|data: &[u8]| {
    // A refusal is an answer; only a panic, a hang or an allocation beyond
    // the input's size (the RSS limit) is a finding.
    let _ = fuzzing::request_frame(data);
});

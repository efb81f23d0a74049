//! Fuzz target: the RecordBatch v2 decoder and validator over arbitrary bytes.
//! Validation and decoding must agree, and neither may panic.
#![no_main]

use std::ops::ControlFlow;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use moldau::record::{validate_batch, Batch, BatchHeader};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = BatchHeader::parse(data) {
        // Sizes come from the input; computing them must not overflow.
        let _ = (h.total_size(), h.last_offset());
    }
    let valid = validate_batch(data).is_ok();
    let Ok(batch) = Batch::parse(Bytes::copy_from_slice(data)) else {
        assert!(!valid, "validate_batch accepted what Batch::parse refuses");
        return;
    };
    let mut owned = 0u64;
    let mut owned_ok = true;
    match batch.records() {
        Ok(records) => {
            for r in records {
                match r {
                    Ok(_) => owned += 1,
                    Err(_) => {
                        owned_ok = false;
                        break;
                    }
                }
            }
        }
        Err(_) => owned_ok = false,
    }
    let mut borrowed = 0u64;
    let borrowed_ok = batch
        .for_each_record(|_| {
            borrowed += 1;
            ControlFlow::Continue(())
        })
        .is_ok();
    // Both ways to iterate share one decoder: they agree.
    assert_eq!(
        owned_ok, borrowed_ok,
        "records() and for_each_record disagree"
    );
    if owned_ok {
        assert_eq!(owned, borrowed);
        assert_eq!(owned, u64::from(batch.record_count()));
    }
});

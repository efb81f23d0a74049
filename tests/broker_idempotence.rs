//! Idempotent producers: InitProducerId hands out distinct ids; a batch
//! resent with the same producer id, epoch and sequence is acknowledged at
//! its first offset without being stored twice; a gap in the sequence is
//! OUT_OF_ORDER_SEQUENCE_NUMBER; an old epoch is INVALID_PRODUCER_EPOCH.
#![cfg(feature = "broker")]

mod common;

use common::broker::{batch, test_config, with_producer, TestBroker};
use common::kafka::produce;
use kafka_protocol::messages::{InitProducerIdRequest, ProducerId};
use moldau::{Offset, Record};

fn init(c: &mut common::broker::Client, version: i16) -> (i64, i16) {
    let req = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let resp = c.call(&req, version);
    assert_eq!(resp.error_code, 0);
    (resp.producer_id.0, resp.producer_epoch)
}

#[test]
fn duplicates_are_acknowledged_once_stored() {
    let broker = TestBroker::start(test_config());
    broker.log.create_topic("idem", 1, None).unwrap();
    let mut c = broker.client();
    let (id, epoch) = init(&mut c, 4);
    let (other, _) = init(&mut c, 0);
    assert!(id >= 0 && other != id);
    assert_eq!(epoch, 0);
    let plain = batch(&[Record::new("a"), Record::new("b")]);
    let first = with_producer(&plain, id, epoch, 0);
    let second = with_producer(&plain, id, epoch, 2);
    assert_eq!(produce(&mut c, "idem", 0, first.clone()), (0, 0));
    assert_eq!(produce(&mut c, "idem", 0, second.clone()), (0, 2));
    // Retries of both: acknowledged at their original offsets.
    assert_eq!(produce(&mut c, "idem", 0, first), (0, 0));
    assert_eq!(produce(&mut c, "idem", 0, second), (0, 2));
    let end = broker.log.describe_topic("idem").unwrap().partitions[0].end_offset;
    assert_eq!(end, Offset(4), "nothing stored twice");
    // A gap: sequence 6 where 4 is next.
    let gap = with_producer(&plain, id, epoch, 6);
    assert_eq!(
        produce(&mut c, "idem", 0, gap).0,
        45,
        "OUT_OF_ORDER_SEQUENCE_NUMBER"
    );
    // A bumped epoch restarts at 0; the old epoch is then fenced.
    let bumped = c.call(
        &InitProducerIdRequest::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch),
        4,
    );
    assert_eq!((bumped.producer_id.0, bumped.producer_epoch), (id, 1));
    assert_eq!(
        produce(&mut c, "idem", 0, with_producer(&plain, id, 1, 0)),
        (0, 4)
    );
    let stale = with_producer(&plain, id, 0, 4);
    assert_eq!(
        produce(&mut c, "idem", 0, stale).0,
        47,
        "INVALID_PRODUCER_EPOCH"
    );
    // Batches without a producer id are never deduplicated.
    assert_eq!(produce(&mut c, "idem", 0, plain.clone()), (0, 6));
    assert_eq!(produce(&mut c, "idem", 0, plain), (0, 8));
}

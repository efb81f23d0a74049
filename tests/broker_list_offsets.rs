//! ListOffsets: earliest, latest, and the first offset at or after a
//! timestamp, with its record's timestamp.
#![cfg(feature = "broker")]

mod common;

use common::broker::{batch, test_config, TestBroker};
use common::kafka::{produce, topic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest};
use moldau::{Record, Timestamp};

fn list(c: &mut common::broker::Client, t: &str, ts: i64, version: i16) -> (i16, i64, i64) {
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic(t))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(ts)])]);
    let resp = c.call(&req, version);
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.offset, p.timestamp)
}

#[test]
fn earliest_latest_and_by_time() {
    let broker = TestBroker::start(test_config());
    broker.log.create_topic("times", 1, None).unwrap();
    let mut c = broker.client();
    for (i, ts) in [1000i64, 2000, 3000].into_iter().enumerate() {
        let r = Record::new(format!("v{i}")).with_timestamp(Timestamp(ts));
        assert_eq!(produce(&mut c, "times", 0, batch(&[r])).0, 0);
    }
    for v in [1, 4, 7] {
        assert_eq!(list(&mut c, "times", -2, v).1, 0, "earliest v{v}");
        assert_eq!(list(&mut c, "times", -1, v).1, 3, "latest v{v}");
    }
    assert_eq!(list(&mut c, "times", 1500, 7), (0, 1, 2000));
    assert_eq!(list(&mut c, "times", 3000, 7), (0, 2, 3000));
    assert_eq!(list(&mut c, "times", 9000, 7), (0, -1, -1));
    assert_eq!(list(&mut c, "nope", -1, 7).0, 3);
}

//! Tests of `offset_codec`.
use proptest::prelude::*;

use super::*;

fn key(group: &str, topic: &str, partition: u32) -> CommitKey {
    CommitKey {
        group: group.to_owned(),
        partition: TopicPartition::new(TopicName::new(topic).unwrap(), partition),
    }
}

fn value(offset: u64, epoch: Option<i32>, metadata: &str, ts: i64) -> CommitValue {
    CommitValue {
        offset: Offset(offset),
        leader_epoch: epoch,
        metadata: metadata.to_owned(),
        commit_timestamp: Timestamp(ts),
    }
}

/// Group "g1", topic "orders", partition 7, written out from
/// OffsetCommitKey.json by hand.
#[rustfmt::skip]
const GOLDEN_KEY: [u8; 18] = [
    0x00, 0x01,                               // version 1
    0x00, 0x02, b'g', b'1',                   // group "g1"
    0x00, 0x06, b'o', b'r', b'd', b'e', b'r', b's', // topic "orders"
    0x00, 0x00, 0x00, 0x07,                   // partition 7
];

/// Offset 42, leader epoch 5, metadata "m", committed at
/// 1_700_000_000_000 ms (0x18b_cfe5_6800), from OffsetCommitValue.json.
#[rustfmt::skip]
const GOLDEN_VALUE: [u8; 25] = [
    0x00, 0x03,                                     // version 3
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, // offset 42
    0x00, 0x00, 0x00, 0x05,                         // leaderEpoch 5
    0x00, 0x01, b'm',                               // metadata "m"
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, // commitTimestamp
];

#[test]
fn golden_key() {
    let k = key("g1", "orders", 7);
    assert_eq!(encode_key(&k), GOLDEN_KEY);
    assert_eq!(decode_key(&GOLDEN_KEY), Ok(Some(k)));
}

#[test]
fn golden_value() {
    let v = value(42, Some(5), "m", 1_700_000_000_000);
    assert_eq!(encode_value(&v), GOLDEN_VALUE);
    assert_eq!(decode_value(&GOLDEN_VALUE), Ok(v));
}

#[test]
fn key_version_0_is_an_offset_commit_too() {
    let mut bytes = GOLDEN_KEY;
    bytes[1] = 0;
    assert_eq!(decode_key(&bytes), Ok(Some(key("g1", "orders", 7))));
}

#[test]
fn group_metadata_keys_are_skipped() {
    // GroupMetadataKey: version 2, then only the group.
    assert_eq!(decode_key(&[0x00, 0x02, 0x00, 0x01, b'g']), Ok(None));
}

#[test]
fn other_key_versions_are_unknown() {
    // 3 and up are KIP-848 consumer group records, among others.
    assert_eq!(
        decode_key(&[0x00, 0x03]),
        Err(FormatError::UnknownVersion(3))
    );
    assert_eq!(
        decode_key(&[0xff, 0xff]),
        Err(FormatError::UnknownVersion(0xffff))
    );
}

#[test]
fn no_leader_epoch_is_minus_one() {
    let bytes = encode_value(&value(1, None, "", 0));
    assert_eq!(&bytes[10..14], &[0xff; 4]);
    assert_eq!(decode_value(&bytes).unwrap().leader_epoch, None);
    // A negative epoch means "none" too, whichever way it arrives.
    assert_eq!(encode_value(&value(1, Some(-7), "", 0)), bytes);
    let mut odd = bytes.clone();
    odd[10..14].copy_from_slice(&(-2i32).to_be_bytes());
    assert_eq!(decode_value(&odd).unwrap().leader_epoch, None);
}

#[test]
fn value_versions_0_to_2() {
    let body: Vec<u8> = [
        &42i64.to_be_bytes()[..],
        &[0x00, 0x01, b'm'],
        &1_000i64.to_be_bytes(),
    ]
    .concat();
    let want = value(42, None, "m", 1_000);
    for version in [0u8, 2] {
        let bytes = [&[0x00, version][..], &body].concat();
        assert_eq!(decode_value(&bytes), Ok(want.clone()), "v{version}");
    }
    // Version 1 adds expireTimestamp, which is read and dropped.
    let v1 = [&[0x00, 0x01][..], &body, &9_000i64.to_be_bytes()].concat();
    assert_eq!(decode_value(&v1), Ok(want.clone()));
    // Without it, version 1 is truncated.
    let short = [&[0x00, 0x01][..], &body].concat();
    assert!(matches!(
        decode_value(&short),
        Err(FormatError::Truncated { .. })
    ));
}

#[test]
fn value_version_4_is_flexible() {
    let head: Vec<u8> = [&[0x00, 0x04][..], &42i64.to_be_bytes(), &5i32.to_be_bytes()].concat();
    let ts = 1_000i64.to_be_bytes();
    let want = value(42, Some(5), "m", 1_000);
    // Compact string "m": length + 1 = 2; no tagged fields.
    let plain = [&head[..], &[0x02, b'm'], &ts, &[0x00]].concat();
    assert_eq!(decode_value(&plain), Ok(want.clone()));
    // Two unknown tagged fields (tag 0, 2 bytes; tag 7, 0 bytes), skipped.
    let tagged = [
        &head[..],
        &[0x02, b'm'],
        &ts,
        &[0x02, 0x00, 0x02, b'x', b'y', 0x07, 0x00],
    ]
    .concat();
    assert_eq!(decode_value(&tagged), Ok(want));
    // A null compact string (0) is refused: metadata is not nullable.
    let null = [&head[..], &[0x00], &ts, &[0x00]].concat();
    assert!(matches!(
        decode_value(&null),
        Err(FormatError::Inconsistent(_))
    ));
    // The tagged-field section is not optional.
    let missing = [&head[..], &[0x02, b'm'], &ts].concat();
    assert!(matches!(
        decode_value(&missing),
        Err(FormatError::Truncated { .. })
    ));
    // A tagged field longer than what is left.
    let long = [&head[..], &[0x02, b'm'], &ts, &[0x01, 0x00, 0x05, b'x']].concat();
    assert!(matches!(
        decode_value(&long),
        Err(FormatError::Truncated { .. })
    ));
    // A six-byte varint.
    let overlong = [&head[..], &[0x82, 0x80, 0x80, 0x80, 0x80, 0x00]].concat();
    assert_eq!(decode_value(&overlong), Err(FormatError::BadVarint(14)));
}

#[test]
fn other_value_versions_are_unknown() {
    let mut bytes = GOLDEN_VALUE;
    bytes[1] = 5;
    assert_eq!(decode_value(&bytes), Err(FormatError::UnknownVersion(5)));
    bytes[0] = 0x80;
    bytes[1] = 0x00;
    assert_eq!(
        decode_value(&bytes),
        Err(FormatError::UnknownVersion(0x8000))
    );
}

#[test]
fn bad_keys_are_errors() {
    let truncated = &GOLDEN_KEY[..GOLDEN_KEY.len() - 1];
    assert_eq!(
        decode_key(truncated),
        Err(FormatError::Truncated {
            needed: 18,
            available: 17
        })
    );
    assert_eq!(
        decode_key(&[0x00]),
        Err(FormatError::Truncated {
            needed: 2,
            available: 1
        })
    );

    let trailing = [&GOLDEN_KEY[..], &[0x00]].concat();
    assert!(matches!(
        decode_key(&trailing),
        Err(FormatError::BadLength(_))
    ));

    let mut negative_partition = GOLDEN_KEY;
    negative_partition[14..].copy_from_slice(&(-1i32).to_be_bytes());
    assert!(matches!(
        decode_key(&negative_partition),
        Err(FormatError::Inconsistent(_))
    ));

    let mut negative_length = GOLDEN_KEY;
    negative_length[2..4].copy_from_slice(&(-1i16).to_be_bytes());
    assert!(matches!(
        decode_key(&negative_length),
        Err(FormatError::BadLength(_))
    ));

    let mut bad_utf8 = GOLDEN_KEY;
    bad_utf8[4] = 0xff;
    assert!(matches!(
        decode_key(&bad_utf8),
        Err(FormatError::Inconsistent(_))
    ));

    let mut bad_topic = GOLDEN_KEY;
    bad_topic[8] = b'/';
    assert!(matches!(
        decode_key(&bad_topic),
        Err(FormatError::Inconsistent(_))
    ));
}

#[test]
fn bad_values_are_errors() {
    let mut negative_offset = GOLDEN_VALUE;
    negative_offset[2..10].copy_from_slice(&(-1i64).to_be_bytes());
    assert!(matches!(
        decode_value(&negative_offset),
        Err(FormatError::Inconsistent(_))
    ));

    let trailing = [&GOLDEN_VALUE[..], &[0x00]].concat();
    assert!(matches!(
        decode_value(&trailing),
        Err(FormatError::BadLength(_))
    ));

    for cut in 0..GOLDEN_VALUE.len() {
        assert!(
            matches!(
                decode_value(&GOLDEN_VALUE[..cut]),
                Err(FormatError::Truncated { .. })
            ),
            "cut at {cut}"
        );
    }

    let mut bad_utf8 = GOLDEN_VALUE;
    bad_utf8[16] = 0xc3; // a lead byte with no continuation
    assert!(matches!(
        decode_value(&bad_utf8),
        Err(FormatError::Inconsistent(_))
    ));

    let mut huge_length = GOLDEN_VALUE;
    huge_length[14..16].copy_from_slice(&i16::MAX.to_be_bytes());
    assert_eq!(
        decode_value(&huge_length),
        Err(FormatError::Truncated {
            needed: 16 + 32767,
            available: 25
        })
    );
}

#[test]
fn strings_up_to_the_limit_round_trip() {
    let long = "x".repeat(STRING_BYTES_MAX);
    let k = CommitKey {
        group: long.clone(),
        ..key("g", "t", 0)
    };
    assert_eq!(decode_key(&encode_key(&k)), Ok(Some(k)));
    let v = value(0, None, &long, 0);
    assert_eq!(decode_value(&encode_value(&v)), Ok(v));
}

#[test]
#[should_panic(expected = "exceeds int16")]
fn a_group_id_past_the_limit_is_refused() {
    encode_key(&CommitKey {
        group: "x".repeat(STRING_BYTES_MAX + 1),
        ..key("g", "t", 0)
    });
}

#[test]
#[should_panic(expected = "beyond int64")]
fn an_offset_past_int64_is_refused() {
    encode_value(&value(u64::MAX, None, "", 0));
}

fn topic_name() -> impl Strategy<Value = TopicName> {
    "[a-zA-Z0-9._-]{1,249}"
        .prop_filter("not . or ..", |s| s != "." && s != "..")
        .prop_map(|s| TopicName::new(s).unwrap())
}

proptest! {
    #[test]
    fn keys_round_trip(group in "\\PC{0,40}", topic in topic_name(), partition in 0u32..=i32::MAX as u32) {
        let k = CommitKey { group, partition: TopicPartition::new(topic, partition) };
        prop_assert_eq!(decode_key(&encode_key(&k)), Ok(Some(k)));
    }

    #[test]
    fn values_round_trip(
        offset in 0u64..=i64::MAX as u64,
        leader_epoch in proptest::option::of(0..=i32::MAX),
        metadata in "\\PC{0,40}",
        ts in any::<i64>(),
    ) {
        let v = CommitValue { offset: Offset(offset), leader_epoch, metadata, commit_timestamp: Timestamp(ts) };
        prop_assert_eq!(decode_value(&encode_value(&v)), Ok(v));
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode_key(&bytes);
        let _ = decode_value(&bytes);
    }

    #[test]
    fn decoding_mutated_records_never_panics(
        flips in proptest::collection::vec((0usize..25, any::<u8>()), 1..4),
        version in 0u8..6,
    ) {
        // Arbitrary bytes rarely get past the version; start from valid
        // records of each version and damage a few bytes.
        let mut k = GOLDEN_KEY.to_vec();
        let mut v = GOLDEN_VALUE.to_vec();
        v[1] = version;
        for &(at, byte) in &flips {
            if let Some(b) = k.get_mut(at) {
                *b = byte;
            }
            v[at] = byte;
        }
        let _ = decode_key(&k);
        let _ = decode_value(&v);
    }
}

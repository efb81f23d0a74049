//! Kafka error codes: the only place `moldau::Error` meets them.

use kafka_protocol::ResponseError;

use crate::error::{Error, FormatError};

/// A Kafka error code (`0` is success).
pub(crate) type Code = i16;

/// Success.
pub(crate) const NONE: Code = 0;

/// The Kafka error code a client should see for `e`.
pub(crate) fn code(e: &Error) -> Code {
    let kind = match e {
        Error::UnknownTopic { .. } | Error::UnknownPartition { .. } => {
            ResponseError::UnknownTopicOrPartition
        }
        Error::InvalidTopic { .. } => ResponseError::InvalidTopicException,
        Error::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        Error::RecordTooLarge { .. } => ResponseError::MessageTooLarge,
        Error::InvalidBatch {
            reason: FormatError::BadMagic(_),
        } => ResponseError::UnsupportedForMessageFormat,
        Error::InvalidBatch {
            reason: FormatError::UnsupportedCompression(_),
        } => ResponseError::UnsupportedCompressionType,
        Error::InvalidBatch { .. } => ResponseError::CorruptMessage,
        Error::InvalidRecord { .. } => ResponseError::InvalidRecord,
        Error::InvalidConfig { .. } => ResponseError::InvalidConfig,
        Error::TopicExists { .. } => ResponseError::TopicAlreadyExists,
        Error::StaleGeneration { .. } => ResponseError::IllegalGeneration,
        Error::InvalidArgument { what: "group", .. } => ResponseError::InvalidGroupId,
        Error::InvalidArgument {
            what: "metadata", ..
        } => ResponseError::OffsetMetadataTooLarge,
        Error::InvalidArgument { .. } => ResponseError::InvalidRequest,
        Error::Io { .. } | Error::Poisoned { .. } | Error::Corrupt { .. } => {
            ResponseError::KafkaStorageError
        }
        Error::Closed { .. } => ResponseError::NotLeaderOrFollower,
        _ => ResponseError::UnknownServerError,
    };
    kind.code()
}

/// The code of a Kafka error kind.
pub(crate) fn of(kind: ResponseError) -> Code {
    kind.code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_errors_map_to_kafka_codes() {
        let cases = [
            (Error::UnknownTopic { topic: "t".into() }, 3),
            (
                Error::InvalidBatch {
                    reason: FormatError::ChecksumMismatch {
                        expected: 1,
                        actual: 2,
                    },
                },
                2,
            ),
            (Error::RecordTooLarge { size: 2, max: 1 }, 10),
            (
                Error::InvalidRecord {
                    path: "p".into(),
                    reason: "keyless".into(),
                },
                87,
            ),
            (
                Error::InvalidConfig {
                    field: "retention.ms",
                    reason: "x".into(),
                },
                40,
            ),
        ];
        for (e, c) in cases {
            assert_eq!(code(&e), c, "{e}");
        }
    }
}

//! Parsing `--from-time` / `--to-time`: epoch milliseconds or RFC 3339.

use moldau::Timestamp;

use crate::error::CliError;

/// `1767225600000` (epoch ms) or `2026-01-01T00:00:00Z` / `...+02:00` (RFC 3339).
pub fn parse(flag: &str, s: &str) -> Result<Timestamp, CliError> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(Timestamp(ms));
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| Timestamp(t.timestamp_millis()))
        .map_err(|e| {
            CliError::Message(format!(
                "{flag} {s:?}: {e}; expected epoch milliseconds (1767225600000) or RFC 3339 \
                 (2026-01-01T00:00:00Z)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_ms_and_rfc3339() {
        assert_eq!(
            parse("t", "1767225600000").unwrap(),
            Timestamp(1_767_225_600_000)
        );
        assert_eq!(
            parse("t", "2026-01-01T00:00:00Z").unwrap(),
            Timestamp(1_767_225_600_000)
        );
        assert_eq!(
            parse("t", "2026-01-01T02:00:00.5+02:00").unwrap(),
            Timestamp(1_767_225_600_500)
        );
        let e = parse("--to-time", "yesterday").unwrap_err().to_string();
        assert!(e.contains("--to-time") && e.contains("RFC 3339"), "{e}");
    }
}

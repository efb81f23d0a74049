//! Printing consumed records: kcat-style format strings and JSON lines.

use std::borrow::Cow;

use moldau::ConsumerRecord;

/// One piece of a parsed format string.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(Vec<u8>),
    Value,
    ValueLen,
    Key,
    KeyLen,
    Offset,
    Partition,
    Topic,
    Timestamp,
    Headers,
}

/// A parsed `--format` string.
#[derive(Debug, Clone)]
pub struct Format(Vec<Piece>);

impl Format {
    /// Parses `%v`/`%s` value, `%S` value length, `%k` key, `%K` key length,
    /// `%o` offset, `%p` partition, `%t` topic, `%T` timestamp, `%h` headers,
    /// `%%`; and the escapes `\n`, `\t`, `\r`, `\\`.
    pub fn parse(s: &str) -> Result<Format, String> {
        let mut pieces = Vec::new();
        let mut text = Vec::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            let piece = match c {
                '%' => match chars.next() {
                    Some('v' | 's') => Piece::Value,
                    Some('S') => Piece::ValueLen,
                    Some('k') => Piece::Key,
                    Some('K') => Piece::KeyLen,
                    Some('o') => Piece::Offset,
                    Some('p') => Piece::Partition,
                    Some('t') => Piece::Topic,
                    Some('T') => Piece::Timestamp,
                    Some('h') => Piece::Headers,
                    Some('%') => {
                        text.push(b'%');
                        continue;
                    }
                    other => {
                        return Err(format!(
                            "--format {s:?}: unknown field %{}; known: %v %s %S %k %K %o %p %t %T %h %%",
                            other.map(String::from).unwrap_or_default()
                        ))
                    }
                },
                '\\' => {
                    match chars.next() {
                        Some('n') => text.push(b'\n'),
                        Some('t') => text.push(b'\t'),
                        Some('r') => text.push(b'\r'),
                        Some('\\') => text.push(b'\\'),
                        Some(other) => {
                            text.push(b'\\');
                            let mut b = [0u8; 4];
                            text.extend_from_slice(other.encode_utf8(&mut b).as_bytes());
                        }
                        None => text.push(b'\\'),
                    }
                    continue;
                }
                c => {
                    let mut b = [0u8; 4];
                    text.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                    continue;
                }
            };
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(piece);
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Format(pieces))
    }

    /// Appends `r` as formatted to `out`. Null keys and values print as nothing.
    pub fn write(&self, out: &mut Vec<u8>, r: &ConsumerRecord) {
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.extend_from_slice(t),
                Piece::Value => out.extend_from_slice(r.value.as_deref().unwrap_or_default()),
                Piece::ValueLen => push_len(out, r.value.as_deref()),
                Piece::Key => out.extend_from_slice(r.key.as_deref().unwrap_or_default()),
                Piece::KeyLen => push_len(out, r.key.as_deref()),
                Piece::Offset => out.extend_from_slice(r.offset.to_string().as_bytes()),
                Piece::Partition => out.extend_from_slice(r.partition.to_string().as_bytes()),
                Piece::Topic => out.extend_from_slice(r.topic.as_str().as_bytes()),
                Piece::Timestamp => out.extend_from_slice(r.timestamp.to_string().as_bytes()),
                Piece::Headers => {
                    for (i, h) in r.headers.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(&h.key);
                        out.push(b'=');
                        out.extend_from_slice(h.value.as_deref().unwrap_or_default());
                    }
                }
            }
        }
    }
}

/// kcat's lengths: -1 for null.
fn push_len(out: &mut Vec<u8>, b: Option<&[u8]>) {
    let len = b.map_or(-1, |b| b.len() as i64);
    out.extend_from_slice(len.to_string().as_bytes());
}

/// Bytes as text (invalid UTF-8 replaced), or `None` for null.
fn text(b: Option<&[u8]>) -> Option<Cow<'_, str>> {
    b.map(String::from_utf8_lossy)
}

/// A record as `--json` prints it, fields in this order.
#[derive(serde::Serialize)]
struct JsonRecord<'a> {
    topic: &'a str,
    partition: u32,
    offset: u64,
    timestamp: i64,
    key: Option<Cow<'a, str>>,
    value: Option<Cow<'a, str>>,
    headers: Vec<JsonHeader<'a>>,
}

#[derive(serde::Serialize)]
struct JsonHeader<'a> {
    key: Cow<'a, str>,
    value: Option<Cow<'a, str>>,
}

/// One JSON object (and a newline) for `r`. Keys, values and headers are
/// strings (invalid UTF-8 replaced by U+FFFD) or null.
pub fn write_json(out: &mut Vec<u8>, r: &ConsumerRecord) {
    let record = JsonRecord {
        topic: r.topic.as_str(),
        partition: r.partition.0,
        offset: r.offset.0,
        timestamp: r.timestamp.0,
        key: text(r.key.as_deref()),
        value: text(r.value.as_deref()),
        headers: r
            .headers
            .iter()
            .map(|h| JsonHeader {
                key: String::from_utf8_lossy(&h.key),
                value: text(h.value.as_deref()),
            })
            .collect(),
    };
    // Serializing plain strings and numbers into a Vec cannot fail; were it
    // to, the line would be missing rather than the command panicking.
    if serde_json::to_writer(&mut *out, &record).is_ok() {
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use moldau::{Header, Offset, PartitionId, Timestamp, TopicName};

    fn record() -> ConsumerRecord {
        ConsumerRecord {
            topic: TopicName::new("t").unwrap(),
            partition: PartitionId(2),
            offset: Offset(7),
            timestamp: Timestamp(1000),
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"hello")),
            headers: vec![Header::new("a", "1")],
        }
    }

    #[test]
    fn fields_and_escapes() {
        let f = Format::parse("%t/%p@%o %T %k=%v %h %K %S 100%%\\n").unwrap();
        let mut out = Vec::new();
        f.write(&mut out, &record());
        assert_eq!(out, b"t/2@7 1000 k=hello a=1 1 5 100%\n");
        assert!(Format::parse("%x").unwrap_err().contains("%x"));
    }

    #[test]
    fn json_line() {
        let mut out = Vec::new();
        write_json(&mut out, &record());
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["value"], "hello");
        assert_eq!(v["offset"], 7);
        assert_eq!(v["headers"][0]["key"], "a");
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(r#"{"topic":"t","partition":2,"offset":7,"#),
            "{text}"
        );
    }
}

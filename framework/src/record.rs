//! Records as processors see them, and the metadata of the input record being processed.

use std::sync::Arc;

/// One header of a record: a name and an optional (possibly null) value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// Header name.
    pub key: String,
    /// Header value; `None` is a null value, distinct from an empty one.
    pub value: Option<Vec<u8>>,
}

/// The ordered headers of a record. Kafka allows repeated names, so this is a list.
///
/// ```
/// use streamtime::Headers;
/// let headers = Headers::new().with("trace", b"abc".to_vec());
/// assert_eq!(headers.last("trace"), Some(&b"abc"[..]));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Headers(Vec<Header>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// These headers plus `key: value`.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.push(key, Some(value.into()));
        self
    }

    /// Appends a header.
    pub fn push(&mut self, key: impl Into<String>, value: Option<Vec<u8>>) {
        self.0.push(Header {
            key: key.into(),
            value,
        });
    }

    /// Value of the last header called `key`, if any (and not null).
    pub fn last(&self, key: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .rev()
            .find(|h| h.key == key)
            .and_then(|h| h.value.as_deref())
    }

    /// All headers in order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    /// Number of headers.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no headers.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends the headers to `out` in a self-delimiting form [`Headers::decode`] reads back
    /// (for records a store holds): count, then per header its key and its value, each
    /// length-prefixed (a null value has length `u32::MAX`).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.0.len() as u32).to_be_bytes());
        for h in &self.0 {
            out.extend_from_slice(&(h.key.len() as u32).to_be_bytes());
            out.extend_from_slice(h.key.as_bytes());
            match &h.value {
                Some(v) => {
                    out.extend_from_slice(&(v.len() as u32).to_be_bytes());
                    out.extend_from_slice(v);
                }
                None => out.extend_from_slice(&u32::MAX.to_be_bytes()),
            }
        }
    }

    /// Reads [`Headers::encode`]'s form from the start of `bytes`: the headers and the bytes
    /// after them; `None` when the bytes are not that form.
    pub(crate) fn decode(bytes: &[u8]) -> Option<(Headers, &[u8])> {
        fn take(bytes: &[u8], n: usize) -> Option<(&[u8], &[u8])> {
            (bytes.len() >= n).then(|| bytes.split_at(n))
        }
        fn len(bytes: &[u8]) -> Option<(u32, &[u8])> {
            let (n, rest) = take(bytes, 4)?;
            Some((u32::from_be_bytes(n.try_into().ok()?), rest))
        }
        let (count, mut rest) = len(bytes)?;
        let mut headers = Headers::new();
        for _ in 0..count {
            let (n, r) = len(rest)?;
            let (key, r) = take(r, n as usize)?;
            let key = std::str::from_utf8(key).ok()?;
            let (n, r) = len(r)?;
            let (value, r) = match n {
                u32::MAX => (None, r),
                n => {
                    let (v, r) = take(r, n as usize)?;
                    (Some(v.to_vec()), r)
                }
            };
            headers.push(key, value);
            rest = r;
        }
        Some((headers, rest))
    }
}

impl FromIterator<Header> for Headers {
    fn from_iter<I: IntoIterator<Item = Header>>(iter: I) -> Self {
        Headers(iter.into_iter().collect())
    }
}

/// A record flowing through a topology: typed key and value, event timestamp (ms) and headers.
///
/// Records forwarded by a processor inherit the input's timestamp and headers unless the
/// processor sets others.
///
/// ```
/// use streamtime::Record;
/// let r = Record::new("alice".to_string(), 42_u64, 1_000);
/// let doubled = r.clone().with_value(r.value * 2);
/// assert_eq!((doubled.key.as_str(), doubled.value, doubled.timestamp), ("alice", 84, 1_000));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<K, V> {
    /// The key.
    pub key: K,
    /// The value.
    pub value: V,
    /// Event time in milliseconds since the epoch.
    pub timestamp: i64,
    /// Headers carried along with the record.
    pub headers: Headers,
}

impl<K, V> Record<K, V> {
    /// A record without headers.
    pub fn new(key: K, value: V, timestamp: i64) -> Self {
        Record {
            key,
            value,
            timestamp,
            headers: Headers::new(),
        }
    }

    /// The same record with another key (and key type).
    pub fn with_key<K2>(self, key: K2) -> Record<K2, V> {
        Record {
            key,
            value: self.value,
            timestamp: self.timestamp,
            headers: self.headers,
        }
    }

    /// The same record with another value (and value type).
    pub fn with_value<V2>(self, value: V2) -> Record<K, V2> {
        Record {
            key: self.key,
            value,
            timestamp: self.timestamp,
            headers: self.headers,
        }
    }

    /// The same record with another timestamp.
    pub fn with_timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// The same record with other headers.
    pub fn with_headers(mut self, headers: Headers) -> Self {
        self.headers = headers;
        self
    }
}

/// Where the input record currently being processed came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Source topic.
    pub topic: Arc<str>,
    /// Source partition.
    pub partition: i32,
    /// Offset in that partition.
    pub offset: i64,
}

/// How the broker (or producer) stamped a record's metadata timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// No timestamp.
    NotAvailable,
    /// Set by the producer.
    CreateTime,
    /// Set by the broker on append.
    LogAppendTime,
}

/// A record as read from a topic: raw bytes plus metadata. Timestamp extractors see this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// Topic the record was read from.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Metadata timestamp (ms).
    pub timestamp: i64,
    /// Kind of the metadata timestamp.
    pub timestamp_type: TimestampType,
    /// Key bytes, `None` for a null key.
    pub key: Option<Vec<u8>>,
    /// Value bytes, `None` for a null value (tombstone).
    pub value: Option<Vec<u8>>,
    /// Headers.
    pub headers: Headers,
}

//! The binary key layout of window stores and their changelogs.

const TS_LEN: usize = 8;
const SEQ_LEN: usize = 4;

/// `key ++ window_start (8 bytes, big-endian) [++ seq (4 bytes, big-endian)]`: the key a window
/// store keeps and sends to its changelog. Big-endian makes byte order match time order for
/// the non-negative starts the store accepts.
///
/// ```
/// use streamtime_state::window::{split_window_key, window_key};
/// let k = window_key(b"user", 60_000, Some(3));
/// assert_eq!(k.len(), 4 + 8 + 4);
/// assert_eq!(split_window_key(&k, true), Some((&b"user"[..], 60_000, Some(3))));
/// ```
pub fn window_key(key: &[u8], window_start: i64, seq: Option<u32>) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + TS_LEN + SEQ_LEN);
    out.extend_from_slice(key);
    out.extend_from_slice(&window_start.to_be_bytes());
    if let Some(seq) = seq {
        out.extend_from_slice(&seq.to_be_bytes());
    }
    out
}

/// Splits a [`window_key`] into key, window start and (when `with_seq`) sequence number;
/// `None` when it is too short to be one. The key is variable-length, so the fixed-size
/// suffix is taken from the end.
pub fn split_window_key(raw: &[u8], with_seq: bool) -> Option<(&[u8], i64, Option<u32>)> {
    let suffix = TS_LEN + if with_seq { SEQ_LEN } else { 0 };
    if raw.len() < suffix {
        return None;
    }
    let (key, rest) = raw.split_at(raw.len() - suffix);
    let (ts, seq) = rest.split_at(TS_LEN);
    let ts = i64::from_be_bytes(ts.try_into().ok()?);
    let seq = if with_seq {
        Some(u32::from_be_bytes(seq.try_into().ok()?))
    } else {
        None
    };
    Some((key, ts, seq))
}

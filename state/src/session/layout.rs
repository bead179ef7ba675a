//! The binary key layout of session stores and their changelogs.

const TS_LEN: usize = 8;

/// `key ++ end (8 bytes, big-endian) ++ start (8 bytes, big-endian)`: end first, so a key's
/// sessions sort by end and a search for sessions ending at or after some time is one seek.
///
/// ```
/// use streamtime_state::session::{session_key, split_session_key};
/// let k = session_key(b"u", 10, 20);
/// assert_eq!(split_session_key(&k), Some((&b"u"[..], 10, 20)));
/// ```
pub fn session_key(key: &[u8], start: i64, end: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 2 * TS_LEN);
    out.extend_from_slice(key);
    out.extend_from_slice(&end.to_be_bytes());
    out.extend_from_slice(&start.to_be_bytes());
    out
}

/// Splits a [`session_key`] into key, start and end; `None` when it is too short.
pub fn split_session_key(raw: &[u8]) -> Option<(&[u8], i64, i64)> {
    if raw.len() < 2 * TS_LEN {
        return None;
    }
    let (key, rest) = raw.split_at(raw.len() - 2 * TS_LEN);
    let (end, start) = rest.split_at(TS_LEN);
    Some((
        key,
        i64::from_be_bytes(start.try_into().ok()?),
        i64::from_be_bytes(end.try_into().ok()?),
    ))
}

//! Timestamps as key bytes that sort in time order: big-endian with the sign bit flipped,
//! so a byte-wise range scan over keys that start with one visits them oldest first,
//! negative times included.
//!
//! ```
//! use streamtime_state::time_key;
//! let (early, late) = (time_key::encode(-5), time_key::encode(3));
//! assert!(early < late);
//! assert_eq!(time_key::decode(&late), Some(3));
//! ```

/// The 8 bytes that order as `ts` does.
pub fn encode(ts: i64) -> [u8; 8] {
    ((ts as u64) ^ (1 << 63)).to_be_bytes()
}

/// The timestamp whose [`encode`]d form opens `bytes`; `None` when fewer than 8 bytes.
pub fn decode(bytes: &[u8]) -> Option<i64> {
    let head: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(head) ^ (1 << 63)) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_times_sort_as_the_times_do_and_decode_back() {
        let times = [i64::MIN, -1_000, -1, 0, 1, 1_000, i64::MAX];
        for pair in times.windows(2) {
            assert!(encode(pair[0]) < encode(pair[1]), "{pair:?}");
        }
        for t in times {
            assert_eq!(decode(&encode(t)), Some(t));
        }
        assert_eq!(decode(&[0; 7]), None);
    }
}

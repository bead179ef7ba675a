//! Merging a cache snapshot with the store's own scan, both in key order.

use std::cmp::Ordering;
use std::iter::Peekable;

use super::lru::CachedPair;
use crate::{KeyValue, KeyValueIter, StateError};

/// Yields the union of `cached` and `stored` in key order; a cached entry replaces the
/// stored one with the same key, and a cached `None` (pending delete) hides it.
pub(crate) struct MergeIter<'a> {
    cached: Peekable<std::vec::IntoIter<CachedPair>>,
    stored: Peekable<KeyValueIter<'a>>,
}

impl<'a> MergeIter<'a> {
    pub(crate) fn new(cached: Vec<CachedPair>, stored: KeyValueIter<'a>) -> Self {
        MergeIter {
            cached: cached.into_iter().peekable(),
            stored: stored.peekable(),
        }
    }
}

impl Iterator for MergeIter<'_> {
    type Item = Result<KeyValue, StateError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match (self.cached.peek(), self.stored.peek()) {
                (None, None) => return None,
                (None, Some(_)) | (_, Some(Err(_))) => return self.stored.next(),
                (Some(_), None) => {}
                (Some((ck, _)), Some(Ok((sk, _)))) => match ck.cmp(sk) {
                    Ordering::Less => {}
                    Ordering::Equal => {
                        self.stored.next();
                    }
                    Ordering::Greater => return self.stored.next(),
                },
            }
            // The cached entry is next in key order; a pending delete yields nothing.
            if let Some((k, Some(v))) = self.cached.next() {
                return Some(Ok((k, v)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_wins_and_pending_deletes_hide_stored_entries() {
        let stored: Vec<Result<KeyValue, StateError>> = vec![
            Ok((b"a".to_vec(), b"1".to_vec())),
            Ok((b"b".to_vec(), b"1".to_vec())),
            Ok((b"d".to_vec(), b"1".to_vec())),
        ];
        let cached = vec![
            (b"b".to_vec(), Some(b"2".to_vec())),
            (b"c".to_vec(), Some(b"2".to_vec())),
            (b"d".to_vec(), None),
        ];
        let merged: Vec<KeyValue> = MergeIter::new(cached, Box::new(stored.into_iter()))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            merged,
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"2".to_vec()),
                (b"c".to_vec(), b"2".to_vec()),
            ]
        );
    }
}

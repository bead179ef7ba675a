//! Window store contract.

use crate::common::{keys, windows, Backend};
use streamtime_state::{KeyValueStore, StateError, StateStore};
use streamtime_state::{WindowStore, WindowStoreConfig, WriteOutcome};

contract_tests!(
    fetch_bounds_are_inclusive_and_ascending,
    fetch_ignores_longer_keys_sharing_the_prefix,
    overwrite_get_and_delete,
    duplicates_are_kept_in_insertion_order,
    fetch_all_and_key_range_order_by_segment_key_start,
    expired_segments_are_dropped_whole,
    puts_into_expired_segments_are_dropped_and_counted,
    reads_never_return_expired_windows,
    stream_time_never_decreases,
    negative_window_start_is_rejected,
    restored_writes_past_the_commit_expire_nothing_until_processing_passes_them,
    after_a_commit_segments_only_a_later_time_expires_stay_on_disk,
    a_capped_store_expires_nothing_past_its_cap_whatever_is_written,
);

const HOUR: i64 = 3_600_000;

fn fetch_bounds_are_inclusive_and_ascending<B: Backend>(b: &B) {
    let mut s = b.window("w", WindowStoreConfig::new(HOUR));
    for start in [3_000, 0, 2_000, 1_000] {
        s.put(b"k", start, format!("v{start}").as_bytes(), start)
            .unwrap();
    }
    s.put(b"other", 1_000, b"x", 1_000).unwrap();
    let starts = |from, to| -> Vec<i64> {
        windows(s.fetch(b"k", from, to))
            .into_iter()
            .map(|w| w.1)
            .collect()
    };
    assert_eq!(starts(1_000, 2_000), vec![1_000, 2_000]);
    assert_eq!(starts(0, i64::MAX), vec![0, 1_000, 2_000, 3_000]);
    assert_eq!(starts(1, 999), Vec::<i64>::new());
    assert_eq!(starts(2_000, 1_000), Vec::<i64>::new());
    let found = windows(s.fetch(b"k", 2_000, 2_000));
    assert_eq!(found, vec![(b"k".to_vec(), 2_000, b"v2000".to_vec())]);
}

fn fetch_ignores_longer_keys_sharing_the_prefix<B: Backend>(b: &B) {
    let mut s = b.window("w", WindowStoreConfig::new(HOUR));
    // Its store key `a 00..05 ++ start` sorts inside the byte range scanned for key "a".
    let longer = [b"a".as_slice(), &5i64.to_be_bytes()].concat();
    s.put(&longer, 0, b"longer", 0).unwrap();
    s.put(b"a", 7, b"a", 7).unwrap();
    assert_eq!(
        windows(s.fetch(b"a", 0, 10)),
        vec![(b"a".to_vec(), 7, b"a".to_vec())]
    );
    assert_eq!(windows(s.fetch(&longer, 0, 10)).len(), 1);
}

fn overwrite_get_and_delete<B: Backend>(b: &B) {
    let mut s = b.window("w", WindowStoreConfig::new(HOUR));
    s.put(b"k", 60_000, b"1", 60_001).unwrap();
    s.put(b"k", 60_000, b"2", 60_002).unwrap();
    assert_eq!(s.get(b"k", 60_000).unwrap(), Some(b"2".to_vec()));
    assert_eq!(windows(s.fetch(b"k", 0, i64::MAX)).len(), 1);
    assert!(matches!(
        s.delete(b"k", 60_000, 60_003).unwrap(),
        WriteOutcome::Written { .. }
    ));
    assert_eq!(s.get(b"k", 60_000).unwrap(), None);
    assert!(windows(s.fetch(b"k", 0, i64::MAX)).is_empty());
}

fn duplicates_are_kept_in_insertion_order<B: Backend>(b: &B) {
    let mut s = b.window("j", WindowStoreConfig::new(HOUR).retain_duplicates(true));
    for v in [b"c", b"a", b"b"] {
        s.put(b"k", 1_000, v, 1_000).unwrap();
    }
    s.put(b"k", 500, b"early", 500).unwrap();
    let values: Vec<Vec<u8>> = windows(s.fetch(b"k", 0, 2_000))
        .into_iter()
        .map(|w| w.2)
        .collect();
    assert_eq!(
        values,
        vec![
            b"early".to_vec(),
            b"c".to_vec(),
            b"a".to_vec(),
            b"b".to_vec()
        ]
    );
    assert!(matches!(
        s.get(b"k", 1_000),
        Err(StateError::InvalidArgument(_))
    ));
    assert!(matches!(
        s.delete(b"k", 1_000, 0),
        Err(StateError::InvalidArgument(_))
    ));
    // Each duplicate is its own store key: key ++ start ++ seq.
    let stored = keys(s.backend().all());
    assert!(stored.iter().filter(|k| k.len() == 8 + 1 + 8 + 4).count() == 4);
}

fn fetch_all_and_key_range_order_by_segment_key_start<B: Backend>(b: &B) {
    // Retention 10 min: 5 min segments.
    let mut s = b.window("w", WindowStoreConfig::new(600_000));
    for (k, start) in [
        (b"b", 0),
        (b"a", 1_000),
        (b"c", 400_000),
        (b"a", 0),
        (b"c", 10),
    ] {
        s.put(k, start, b"v", start).unwrap();
    }
    let ks = |v: Vec<(Vec<u8>, i64, Vec<u8>)>| -> Vec<(Vec<u8>, i64)> {
        v.into_iter().map(|w| (w.0, w.1)).collect()
    };
    assert_eq!(
        ks(windows(s.fetch_all(0, i64::MAX))),
        vec![
            (b"a".to_vec(), 0),
            (b"a".to_vec(), 1_000),
            (b"b".to_vec(), 0),
            (b"c".to_vec(), 10),
            (b"c".to_vec(), 400_000),
        ]
    );
    assert_eq!(
        ks(windows(s.fetch_all(10, 1_000))),
        vec![(b"a".to_vec(), 1_000), (b"c".to_vec(), 10)]
    );
    assert_eq!(
        ks(windows(s.fetch_key_range(b"a", b"b", 0, 1_000))),
        vec![
            (b"a".to_vec(), 0),
            (b"a".to_vec(), 1_000),
            (b"b".to_vec(), 0)
        ]
    );
    assert!(windows(s.fetch_key_range(b"b", b"a", 0, i64::MAX)).is_empty());
}

/// Store keys still present for `segment` (segment id prefix), straight from the backend.
fn keys_in_segment<K: KeyValueStore>(backend: &K, segment: i64) -> usize {
    keys(backend.all())
        .into_iter()
        .filter(|k| k.len() > 8 && k[..8] == segment.to_be_bytes())
        .count()
}

fn expired_segments_are_dropped_whole<B: Backend>(b: &B) {
    // Retention 60 s: 60 s segments.
    let mut s = b.window("w", WindowStoreConfig::new(60_000));
    assert_eq!(s.segment_interval_ms(), 60_000);
    for start in [0, 10_000, 59_999] {
        s.put(b"k", start, b"old", start).unwrap();
    }
    s.put(b"k", 60_000, b"seg1", 60_000).unwrap();
    s.flush().unwrap();
    assert_eq!(keys_in_segment(s.backend(), 0), 3);
    // Stream time 130 000: segment(130 000 - 60 000) = 1, so segment 0 goes as a whole.
    s.put(b"k", 130_000, b"new", 130_000).unwrap();
    assert_eq!(keys_in_segment(s.backend(), 0), 0);
    assert_eq!(
        keys_in_segment(s.backend(), 1),
        1,
        "segment 1 is still live"
    );
    let starts: Vec<i64> = windows(s.fetch(b"k", 0, i64::MAX))
        .into_iter()
        .map(|w| w.1)
        .collect();
    assert_eq!(
        starts,
        vec![130_000],
        "60 000 is live in its segment but expired"
    );
}

fn puts_into_expired_segments_are_dropped_and_counted<B: Backend>(b: &B) {
    let mut s = b.window("w", WindowStoreConfig::new(60_000));
    s.put(b"k", 130_000, b"new", 130_000).unwrap();
    assert_eq!(s.expired_puts(), 0);
    assert_eq!(
        s.put(b"k", 10_000, b"late", 10_000).unwrap(),
        WriteOutcome::Expired
    );
    assert_eq!(s.delete(b"k", 59_999, 0).unwrap(), WriteOutcome::Expired);
    assert_eq!(s.expired_puts(), 2);
    assert_eq!(keys_in_segment(s.backend(), 0), 0, "nothing was written");
    // Segment 1 is live, so this one is stored (but never read back, see next case).
    assert!(matches!(
        s.put(b"k", 61_000, b"in live segment", 61_000).unwrap(),
        WriteOutcome::Written { .. }
    ));
    assert_eq!(s.expired_puts(), 2);
}

fn reads_never_return_expired_windows<B: Backend>(b: &B) {
    let mut s = b.window("w", WindowStoreConfig::new(60_000));
    for start in [61_000, 70_000, 70_001] {
        s.put(b"k", start, b"v", start).unwrap();
    }
    s.put(b"k", 130_000, b"v", 130_000).unwrap();
    // Expired: start <= stream time - retention = 70 000, even inside live segment 1.
    assert_eq!(s.get(b"k", 61_000).unwrap(), None);
    assert_eq!(s.get(b"k", 70_000).unwrap(), None);
    assert_eq!(s.get(b"k", 70_001).unwrap(), Some(b"v".to_vec()));
    let starts =
        |v: Vec<(Vec<u8>, i64, Vec<u8>)>| -> Vec<i64> { v.into_iter().map(|w| w.1).collect() };
    assert_eq!(
        starts(windows(s.fetch(b"k", 0, i64::MAX))),
        vec![70_001, 130_000]
    );
    assert_eq!(
        starts(windows(s.fetch_all(0, i64::MAX))),
        vec![70_001, 130_000]
    );
    assert_eq!(
        starts(windows(s.fetch_key_range(b"a", b"z", 0, 70_000))),
        Vec::<i64>::new()
    );
}

fn stream_time_never_decreases<B: Backend>(b: &B) {
    let mut s = b.window("w", WindowStoreConfig::new(HOUR));
    assert_eq!(s.observed_stream_time(), None);
    s.put(b"k", 5_000, b"v", 5_000).unwrap();
    s.put(b"k", 1_000, b"v", 1_000).unwrap();
    assert_eq!(s.observed_stream_time(), Some(5_000));
}

fn negative_window_start_is_rejected<B: Backend>(b: &B) {
    let mut s = b.window("w", WindowStoreConfig::new(HOUR));
    let err = s.put(b"k", -1, b"v", 0).unwrap_err();
    assert!(err.to_string().contains("must not be negative"), "{err}");
    assert_eq!(s.observed_stream_time(), None);
}

/// The store keys `put` writes for `(key, start)`, as its changelog would carry them.
fn changelog_key<B: Backend>(b: &B, key: &[u8], start: i64) -> Vec<u8> {
    let mut scratch = b.window("scratch", WindowStoreConfig::new(60_000));
    match scratch.put(key, start, b"v", start).unwrap() {
        WriteOutcome::Written { store_key } => store_key,
        WriteOutcome::Expired => unreachable!("a fresh store expires nothing"),
    }
}

fn restored_writes_past_the_commit_expire_nothing_until_processing_passes_them<B: Backend>(b: &B) {
    let mut s = b.window("w", WindowStoreConfig::new(60_000));
    // The last commit was at stream time 50 s; the changelog holds a write from 200 s.
    s.limit_expiry(50_000);
    s.restore(&changelog_key(b, b"k", 10_000), Some(b"early"))
        .unwrap();
    s.restore(&changelog_key(b, b"k", 200_000), Some(b"late"))
        .unwrap();
    assert_eq!(s.observed_stream_time(), Some(200_000));
    assert_eq!(s.get(b"k", 10_000).unwrap(), Some(b"early".to_vec()));
    // Input processed again writes windows that the restored time alone would expire.
    assert!(matches!(
        s.put(b"k", 20_000, b"again", 20_000).unwrap(),
        WriteOutcome::Written { .. }
    ));
    assert_eq!(s.get(b"k", 10_000).unwrap(), Some(b"early".to_vec()));
    // Once processing passes the restored time, expiry is the store's own again.
    s.put(b"k", 200_000, b"later", 200_000).unwrap();
    assert_eq!(s.get(b"k", 10_000).unwrap(), None);
    assert_eq!(s.get(b"k", 20_000).unwrap(), None);
    assert!(matches!(
        s.put(b"k", 30_000, b"too late", 30_000).unwrap(),
        WriteOutcome::Expired
    ));
}

fn after_a_commit_segments_only_a_later_time_expires_stay_on_disk<B: Backend>(b: &B) {
    let mut s = b.window("w", WindowStoreConfig::new(60_000));
    s.put(b"k", 10_000, b"old", 10_000).unwrap();
    s.keep_since_commit(10_000);
    s.put(b"k", 130_000, b"new", 130_000).unwrap();
    assert_eq!(s.get(b"k", 10_000).unwrap(), None, "expired for reads");
    assert_eq!(keys_in_segment(s.backend(), 0), 1, "kept on disk");
    s.keep_since_commit(130_000);
    s.put(b"k", 130_001, b"next", 130_001).unwrap();
    assert_eq!(keys_in_segment(s.backend(), 0), 0);
}

/// What an operator behind a watermark asks: windows written far ahead of its time must not
/// expire the ones it still takes records for.
fn a_capped_store_expires_nothing_past_its_cap_whatever_is_written<B: Backend>(b: &B) {
    let mut s = b.window("w", WindowStoreConfig::new(60_000));
    s.cap_expiry(Some(20_000));
    s.put(b"k", 130_000, b"ahead", 130_000).unwrap();
    assert!(matches!(
        s.put(b"k", 10_000, b"behind", 10_000).unwrap(),
        WriteOutcome::Written { .. }
    ));
    assert_eq!(s.get(b"k", 10_000).unwrap(), Some(b"behind".to_vec()));
    assert_eq!(s.expired_puts(), 0);
    // Lifting the cap, the store's own time expires it again.
    s.cap_expiry(None);
    assert_eq!(s.get(b"k", 10_000).unwrap(), None);
    assert_eq!(
        s.put(b"k", 10_000, b"late", 10_000).unwrap(),
        WriteOutcome::Expired
    );
}

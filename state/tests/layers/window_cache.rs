//! The write-back cache over window stores: folding, flush order, eviction, expiry and reads
//! that match the store alone.

use std::sync::{Arc, Mutex};

use crate::common::{windows, Backend, Xorshift};
use streamtime_state::window::window_key;
use streamtime_state::*;

type Flushed = Arc<Mutex<Vec<FlushedEntry>>>;

const MINUTE: i64 = 60_000;

/// Cache over a logged window store, recording what the cache reports and what is logged.
fn cached<B: Backend>(
    b: &B,
    config: WindowStoreConfig,
    max_bytes: usize,
) -> (
    CachingWindowStore<LoggedWindowStore<SegmentedWindowStore<B::Kv>>>,
    MemoryChangelog,
    Flushed,
) {
    let log = MemoryChangelog::new();
    let flushed: Flushed = Arc::default();
    let sink = flushed.clone();
    let logged = LoggedWindowStore::new(b.window("w", config), log.clone());
    let store = CachingWindowStore::new(logged, max_bytes)
        .with_listener(Box::new(move |e| sink.lock().unwrap().push(e)));
    (store, log, flushed)
}

fn flushed_keys(flushed: &Flushed) -> Vec<Vec<u8>> {
    flushed
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.key.clone())
        .collect()
}

contract_tests!(
    updates_of_one_window_fold_into_one_changelog_record_and_one_reported_entry,
    flush_writes_windows_in_the_order_they_were_last_written,
    eviction_writes_the_least_recently_written_window_through,
    a_put_the_store_would_expire_once_written_out_is_dropped_and_counted_at_once,
    restore_replaces_a_cached_window,
    a_store_retaining_duplicates_passes_every_write_straight_through,
    a_cached_store_reads_exactly_as_the_store_alone_under_random_writes_and_flushes,
    a_capped_cache_keeps_what_the_capped_store_keeps,
);

fn updates_of_one_window_fold_into_one_changelog_record_and_one_reported_entry<B: Backend>(b: &B) {
    let (mut s, log, flushed) = cached(b, WindowStoreConfig::new(60 * MINUTE), 1 << 20);
    for (n, ts) in [(b"1", 10), (b"2", 20), (b"3", 30)] {
        let outcome = s.put(b"k", MINUTE, n, MINUTE + ts).unwrap();
        assert_eq!(
            outcome,
            WriteOutcome::Written {
                store_key: window_key(b"k", MINUTE, None)
            }
        );
    }
    assert!(log.is_empty(), "nothing is written before a flush");
    assert_eq!(s.inner().get(b"k", MINUTE).unwrap(), None);
    assert_eq!(s.observed_stream_time(), Some(MINUTE));
    s.flush_cache().unwrap();
    assert_eq!(
        *flushed.lock().unwrap(),
        vec![FlushedEntry {
            key: window_key(b"k", MINUTE, None),
            new_value: Some(b"3".to_vec()),
            old_value: None,
            timestamp: MINUTE + 30,
        }]
    );
    let records = log.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].value.as_deref(), Some(&b"3"[..]));
    s.flush_cache().unwrap();
    assert_eq!(
        flushed.lock().unwrap().len(),
        1,
        "a clean cache writes nothing"
    );
}

fn flush_writes_windows_in_the_order_they_were_last_written<B: Backend>(b: &B) {
    let (mut s, _, flushed) = cached(b, WindowStoreConfig::new(60 * MINUTE), 1 << 20);
    s.put(b"b", 0, b"1", 0).unwrap();
    s.put(b"a", MINUTE, b"1", MINUTE).unwrap();
    s.put(b"b", 0, b"2", MINUTE + 1).unwrap();
    s.flush().unwrap();
    assert_eq!(
        flushed_keys(&flushed),
        vec![window_key(b"a", MINUTE, None), window_key(b"b", 0, None)]
    );
}

fn eviction_writes_the_least_recently_written_window_through<B: Backend>(b: &B) {
    // Room for two entries of this size (8 + 1 + 8 key bytes, 1 value byte, 64 overhead).
    let (mut s, log, flushed) = cached(b, WindowStoreConfig::new(60 * MINUTE), 2 * 82);
    s.put(b"a", 0, b"1", 0).unwrap();
    s.put(b"b", 0, b"1", 0).unwrap();
    assert!(log.is_empty());
    s.put(b"c", 0, b"1", 0).unwrap();
    assert_eq!(flushed_keys(&flushed), vec![window_key(b"a", 0, None)]);
    assert_eq!(s.inner().get(b"a", 0).unwrap(), Some(b"1".to_vec()));
    assert_eq!(
        s.get(b"a", 0).unwrap(),
        Some(b"1".to_vec()),
        "read from the store"
    );
}

fn a_put_the_store_would_expire_once_written_out_is_dropped_and_counted_at_once<B: Backend>(b: &B) {
    // Retention 60 s: 60 s segments.
    let (mut s, log, _) = cached(b, WindowStoreConfig::new(MINUTE), 1 << 20);
    s.put(b"k", 10_000, b"old", 10_000).unwrap();
    s.put(b"k", 130_000, b"new", 130_000).unwrap();
    // Only cached so far, but once written out, 130 s expires segment 0.
    assert_eq!(
        s.put(b"k", 20_000, b"late", 20_000).unwrap(),
        WriteOutcome::Expired
    );
    assert_eq!(s.expired_puts(), 1);
    assert_eq!(s.get(b"k", 10_000).unwrap(), None, "expired for reads");
    assert_eq!(windows(s.fetch(b"k", 0, i64::MAX)).len(), 1);
    s.flush().unwrap();
    assert_eq!(
        s.expired_puts(),
        1,
        "the store underneath dropped nothing more"
    );
    let logged: Vec<Vec<u8>> = log.records().into_iter().map(|r| r.key).collect();
    assert_eq!(
        logged,
        vec![
            window_key(b"k", 10_000, None),
            window_key(b"k", 130_000, None)
        ],
        "written in write order, as the store alone would have had them"
    );
}

fn restore_replaces_a_cached_window<B: Backend>(b: &B) {
    let (mut s, _, flushed) = cached(b, WindowStoreConfig::new(60 * MINUTE), 1 << 20);
    s.put(b"k", 0, b"cached", 0).unwrap();
    s.restore(&window_key(b"k", 0, None), Some(b"restored"))
        .unwrap();
    assert_eq!(s.get(b"k", 0).unwrap(), Some(b"restored".to_vec()));
    s.flush().unwrap();
    assert!(flushed.lock().unwrap().is_empty());
    assert_eq!(s.inner().get(b"k", 0).unwrap(), Some(b"restored".to_vec()));
}

fn a_store_retaining_duplicates_passes_every_write_straight_through<B: Backend>(b: &B) {
    let config = WindowStoreConfig::new(60 * MINUTE).retain_duplicates(true);
    let (mut s, log, _) = cached(b, config, 1 << 20);
    s.put(b"k", 0, b"1", 0).unwrap();
    s.put(b"k", 0, b"2", 0).unwrap();
    assert_eq!(log.records().len(), 2);
    assert_eq!(windows(s.fetch(b"k", 0, 0)).len(), 2);
    assert!(!s.set_flush_listener(Box::new(|_| {})));
}

fn a_cached_store_reads_exactly_as_the_store_alone_under_random_writes_and_flushes<B: Backend>(
    b: &B,
) {
    // Retention 2 min (1 min segments); starts drift forward with some far behind, so writes
    // expire, segments drop and reads cross segments, cached and stored entries interleave.
    let config = WindowStoreConfig::new(2 * MINUTE);
    let mut plain = InMemoryWindowStore::new("plain", config).unwrap();
    // A small cache, so evictions happen between flushes too.
    let mut cached = CachingWindowStore::new(b.window("w", config), 40 * 90);
    let keys: [&[u8]; 4] = [b"a", b"ab", b"b", b"a\0"];
    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
    let mut now = 0i64;
    for step in 0..4_000 {
        now += rng.below(400) as i64;
        let start = (now - rng.below(4 * MINUTE as u64) as i64).max(0) / 1_000 * 1_000;
        let key = keys[rng.below(keys.len() as u64) as usize];
        match rng.below(10) {
            0 => {
                let a = plain.delete(key, start, now).unwrap();
                assert_eq!(cached.delete(key, start, now).unwrap(), a, "step {step}");
            }
            1 => cached.flush_cache().unwrap(),
            _ => {
                let value = step.to_string().into_bytes();
                let a = plain.put(key, start, &value, now).unwrap();
                assert_eq!(
                    cached.put(key, start, &value, now).unwrap(),
                    a,
                    "step {step}"
                );
            }
        }
        let (from, to) = (start.saturating_sub(MINUTE), start + MINUTE);
        assert_eq!(
            cached.get(key, start).unwrap(),
            plain.get(key, start).unwrap()
        );
        assert_eq!(
            windows(cached.fetch(key, from, to)),
            windows(plain.fetch(key, from, to)),
            "fetch at step {step}"
        );
        assert_eq!(
            windows(cached.fetch_all(from, to)),
            windows(plain.fetch_all(from, to)),
            "fetch_all at step {step}"
        );
        assert_eq!(
            windows(cached.fetch_key_range(b"a", b"ab", 0, i64::MAX)),
            windows(plain.fetch_key_range(b"a", b"ab", 0, i64::MAX)),
            "fetch_key_range at step {step}"
        );
        assert_eq!(cached.observed_stream_time(), plain.observed_stream_time());
        assert_eq!(cached.expired_puts(), plain.expired_puts(), "step {step}");
    }
    cached.flush().unwrap();
    assert_eq!(
        windows(cached.inner().fetch_all(0, i64::MAX)),
        windows(plain.fetch_all(0, i64::MAX)),
        "written out, the store holds what the store alone does"
    );
}

fn a_capped_cache_keeps_what_the_capped_store_keeps<B: Backend>(b: &B) {
    let (mut store, log, _) = cached(b, WindowStoreConfig::new(MINUTE), 1 << 20);
    store.cap_expiry(Some(20_000));
    store.put(b"k", 130_000, b"ahead", 130_000).unwrap();
    assert!(matches!(
        store.put(b"k", 10_000, b"behind", 10_000).unwrap(),
        WriteOutcome::Written { .. }
    ));
    assert_eq!(store.get(b"k", 10_000).unwrap(), Some(b"behind".to_vec()));
    store.flush_cache().unwrap();
    assert_eq!(log.records().len(), 2, "both written out");
    assert_eq!(
        store.inner().get(b"k", 10_000).unwrap(),
        Some(b"behind".to_vec())
    );
}

//! The write-back cache: folding, flush order, size bound, eviction, reads, write-through.

use std::sync::{Arc, Mutex};

use crate::common::{entries, Backend};
use streamtime_state::*;

type Flushed = Arc<Mutex<Vec<FlushedEntry>>>;

/// Cache over a logged store, recording what the cache reports and what reaches the log.
fn cached<B: Backend>(
    b: &B,
    max_bytes: usize,
) -> (
    CachingKeyValueStore<LoggedKeyValueStore<B::Kv>>,
    MemoryChangelog,
    Flushed,
) {
    let log = MemoryChangelog::new();
    let flushed: Flushed = Arc::default();
    let sink = flushed.clone();
    let store =
        CachingKeyValueStore::new(LoggedKeyValueStore::new(b.kv("s"), log.clone()), max_bytes)
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
    three_updates_fold_into_one_write_and_one_changelog_record,
    flush_writes_dirty_entries_in_the_order_they_were_last_written,
    eviction_writes_the_least_recently_written_entry_through,
    reads_see_cached_values_and_pending_deletes,
    delete_of_a_never_stored_key_writes_nothing,
    zero_bytes_writes_through,
    old_values_are_reported_on_request,
    restore_replaces_cached_entries,
    caches_on_one_budget_evict_their_own_entries_when_together_they_are_full,
    a_listener_set_through_the_trait_reports_flushes_and_a_plain_store_refuses_one,
);

fn three_updates_fold_into_one_write_and_one_changelog_record<B: Backend>(b: &B) {
    let (mut s, log, flushed) = cached(b, 1 << 20);
    s.put(b"k", b"1", 10).unwrap();
    s.put(b"k", b"2", 20).unwrap();
    s.put(b"k", b"3", 30).unwrap();
    assert!(log.is_empty(), "nothing is written before a flush");
    assert_eq!(s.inner().get(b"k").unwrap(), None);
    s.flush_cache().unwrap();
    assert_eq!(
        *flushed.lock().unwrap(),
        vec![FlushedEntry {
            key: b"k".to_vec(),
            new_value: Some(b"3".to_vec()),
            old_value: None,
            timestamp: 30,
        }]
    );
    assert_eq!(
        log.records(),
        vec![ChangelogRecord {
            key: b"k".to_vec(),
            value: Some(b"3".to_vec()),
            timestamp: 30,
        }]
    );
    assert_eq!(s.inner().get(b"k").unwrap(), Some(b"3".to_vec()));
    s.flush().unwrap();
    assert_eq!(log.len(), 1, "a clean cache flushes nothing");
    assert_eq!(s.get(b"k").unwrap(), Some(b"3".to_vec()));
}

fn flush_writes_dirty_entries_in_the_order_they_were_last_written<B: Backend>(b: &B) {
    let (mut s, log, flushed) = cached(b, 1 << 20);
    for k in [b"c", b"a", b"b", b"c"] {
        s.put(k, b"v", 0).unwrap();
    }
    s.flush().unwrap();
    // `c` was written again after `a` and `b`: it goes last, as its last update came last.
    let abc = vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()];
    assert_eq!(flushed_keys(&flushed), abc);
    let logged: Vec<Vec<u8>> = log.records().into_iter().map(|r| r.key).collect();
    assert_eq!(logged, abc);
}

fn eviction_writes_the_least_recently_written_entry_through<B: Backend>(b: &B) {
    // Each entry is 1 + 10 bytes plus 64 bytes of overhead: two fit in 160 bytes.
    let (mut s, log, flushed) = cached(b, 160);
    s.put(b"a", &[1; 10], 1).unwrap();
    s.put(b"b", &[2; 10], 2).unwrap();
    s.put(b"a", &[3; 10], 3).unwrap(); // a is now the most recent
    assert!(log.is_empty());
    s.put(b"c", &[4; 10], 4).unwrap();
    assert_eq!(
        flushed_keys(&flushed),
        vec![b"b".to_vec()],
        "b was least recently written"
    );
    assert_eq!(log.records()[0].timestamp, 2);
    assert!(s.cached_bytes() <= 160);
    assert_eq!(s.cached_entries(), 2);
    assert_eq!(
        s.get(b"b").unwrap(),
        Some(vec![2; 10]),
        "evicted entries read from the store"
    );
    // An entry bigger than the whole cache goes straight through.
    s.put(b"big", &[0; 200], 5).unwrap();
    assert_eq!(flushed_keys(&flushed), vec![b"b".to_vec(), b"big".to_vec()]);
    assert!(s.cached_bytes() <= 160);
}

fn reads_see_cached_values_and_pending_deletes<B: Backend>(b: &B) {
    let (mut s, _log, _flushed) = cached(b, 1 << 20);
    for k in [b"a", b"b", b"c"] {
        s.put(k, b"stored", 0).unwrap();
    }
    s.flush().unwrap();
    s.delete(b"b", 1).unwrap();
    s.put(b"d", b"cached", 1).unwrap();
    s.put(b"a", b"cached", 1).unwrap();
    assert_eq!(s.get(b"a").unwrap(), Some(b"cached".to_vec()));
    assert_eq!(s.get(b"b").unwrap(), None);
    let expect = vec![
        (b"a".to_vec(), b"cached".to_vec()),
        (b"c".to_vec(), b"stored".to_vec()),
        (b"d".to_vec(), b"cached".to_vec()),
    ];
    assert_eq!(entries(s.all()), expect);
    assert_eq!(entries(s.range(b"b", b"c")), expect[1..2].to_vec());
    s.flush().unwrap();
    assert_eq!(
        entries(s.inner().all()),
        expect,
        "the store matches after the flush"
    );
}

fn delete_of_a_never_stored_key_writes_nothing<B: Backend>(b: &B) {
    let (mut s, log, flushed) = cached(b, 1 << 20);
    s.put(b"x", b"1", 0).unwrap();
    s.delete(b"x", 1).unwrap();
    s.flush().unwrap();
    assert!(log.is_empty());
    assert!(flushed.lock().unwrap().is_empty());
}

fn zero_bytes_writes_through<B: Backend>(b: &B) {
    let (mut s, log, flushed) = cached(b, 0);
    s.put(b"k", b"1", 1).unwrap();
    s.put(b"k", b"2", 2).unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(flushed.lock().unwrap().len(), 2);
    s.delete(b"k", 3).unwrap();
    assert_eq!(log.records()[2].value, None);
    assert_eq!(s.cached_entries(), 0);
}

fn old_values_are_reported_on_request<B: Backend>(b: &B) {
    let (s, _log, flushed) = cached(b, 1 << 20);
    let mut s = s.with_old_values(true);
    s.put(b"k", b"1", 1).unwrap();
    s.flush().unwrap();
    s.put(b"k", b"2", 2).unwrap();
    s.delete(b"k", 3).unwrap();
    s.put(b"k", b"3", 4).unwrap();
    s.flush().unwrap();
    type OldNew = (Option<Vec<u8>>, Option<Vec<u8>>);
    let seen: Vec<OldNew> = flushed
        .lock()
        .unwrap()
        .iter()
        .map(|e| (e.old_value.clone(), e.new_value.clone()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (None, Some(b"1".to_vec())),
            (Some(b"1".to_vec()), Some(b"3".to_vec()))
        ]
    );
}

fn restore_replaces_cached_entries<B: Backend>(b: &B) {
    let (mut s, log, _flushed) = cached(b, 1 << 20);
    s.put(b"k", b"cached", 1).unwrap();
    s.restore(b"k", Some(b"restored")).unwrap();
    assert_eq!(s.get(b"k").unwrap(), Some(b"restored".to_vec()));
    s.flush().unwrap();
    assert!(
        log.is_empty(),
        "restoring does not log, and the stale entry is gone"
    );
}

fn caches_on_one_budget_evict_their_own_entries_when_together_they_are_full<B: Backend>(b: &B) {
    // Entries of 1 + 10 bytes count 75 bytes each: the two caches together hold two.
    let budget = CacheBudget::new(160);
    let log = MemoryChangelog::new();
    let mut one = CachingKeyValueStore::with_budget(
        LoggedKeyValueStore::new(b.kv("one"), log.clone()),
        budget.clone(),
    );
    let mut two = CachingKeyValueStore::with_budget(
        LoggedKeyValueStore::new(b.kv("two"), log.clone()),
        budget.clone(),
    );
    one.put(b"a", &[1; 10], 1).unwrap();
    two.put(b"b", &[2; 10], 2).unwrap();
    assert!(log.is_empty(), "two entries fit the shared budget");
    two.put(b"c", &[3; 10], 3).unwrap();
    // `two` is over the shared limit and evicts its own oldest entry, not `one`'s.
    assert_eq!(log.records().len(), 1);
    assert_eq!(log.records()[0].key, b"b".to_vec());
    assert_eq!((one.cached_entries(), two.cached_entries()), (1, 1));
    assert_eq!(budget.used_bytes(), one.cached_bytes() + two.cached_bytes());
    assert!(budget.used_bytes() <= 160);
    drop(two);
    assert_eq!(budget.used_bytes(), one.cached_bytes());
}

fn a_listener_set_through_the_trait_reports_flushes_and_a_plain_store_refuses_one<B: Backend>(
    b: &B,
) {
    let flushed: Flushed = Arc::default();
    let sink = flushed.clone();
    let mut store: Box<dyn KeyValueStore> = Box::new(CachingKeyValueStore::new(b.kv("s"), 1 << 20));
    assert!(store.set_flush_listener(Box::new(move |e| sink.lock().unwrap().push(e))));
    store.put(b"k", b"1", 1).unwrap();
    store.put(b"k", b"2", 2).unwrap();
    store.flush_cache().unwrap();
    assert_eq!(flushed_keys(&flushed), vec![b"k".to_vec()]);
    let mut plain: Box<dyn KeyValueStore> = Box::new(b.kv("plain"));
    assert!(!plain.set_flush_listener(Box::new(|_| {})));
}

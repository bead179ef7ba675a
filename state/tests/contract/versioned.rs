//! Versioned store contract: as-of reads, out-of-order writes, deletions, history retention
//! and changelog replay, identical on both backends.

use crate::common::{entries, Backend};
use streamtime_state::*;

const RETENTION: i64 = 10_000;

fn store<B: Backend>(b: &B) -> VersionedStore<B::Kv> {
    VersionedStore::with_backend(b.kv("v"), RETENTION).unwrap()
}

/// `(value, valid from, valid to)` of the version valid at `t`.
fn at(s: &impl VersionedKeyValueStore, key: &[u8], t: i64) -> Option<(Vec<u8>, i64, Option<i64>)> {
    s.get_as_of(key, t)
        .unwrap()
        .map(|r| (r.value, r.timestamp, r.valid_to))
}

fn in_order_versions_are_read_as_of_any_time<B: Backend>(b: &B) {
    let mut s = store(b);
    for (v, t) in [(&b"a"[..], 100), (b"b", 200), (b"c", 300)] {
        assert_eq!(
            s.put_version(b"k", Some(v), t).unwrap(),
            VersionedPut::Latest
        );
    }
    assert_eq!(at(&s, b"k", 99), None);
    assert_eq!(at(&s, b"k", 100), Some((b"a".to_vec(), 100, Some(200))));
    assert_eq!(at(&s, b"k", 250), Some((b"b".to_vec(), 200, Some(300))));
    assert_eq!(at(&s, b"k", 300), Some((b"c".to_vec(), 300, None)));
    assert_eq!(at(&s, b"k", 5_000), Some((b"c".to_vec(), 300, None)));
    let latest = s.get_latest(b"k").unwrap().unwrap();
    assert_eq!((latest.value, latest.timestamp), (b"c".to_vec(), 300));
}

fn a_late_write_splits_the_version_it_falls_in<B: Backend>(b: &B) {
    let mut s = store(b);
    s.put_version(b"k", Some(b"a"), 100).unwrap();
    s.put_version(b"k", Some(b"b"), 300).unwrap();
    s.put_version(b"k", Some(b"c"), 500).unwrap();
    assert_eq!(
        s.put_version(b"k", Some(b"x"), 200).unwrap(),
        VersionedPut::History
    );
    assert_eq!(
        s.put_version(b"k", Some(b"y"), 400).unwrap(),
        VersionedPut::History
    );
    assert_eq!(at(&s, b"k", 150), Some((b"a".to_vec(), 100, Some(200))));
    assert_eq!(at(&s, b"k", 250), Some((b"x".to_vec(), 200, Some(300))));
    assert_eq!(at(&s, b"k", 350), Some((b"b".to_vec(), 300, Some(400))));
    assert_eq!(at(&s, b"k", 450), Some((b"y".to_vec(), 400, Some(500))));
    assert_eq!(s.get_latest(b"k").unwrap().unwrap().value, b"c".to_vec());
}

fn a_write_older_than_every_version_lasts_until_the_first<B: Backend>(b: &B) {
    let mut s = store(b);
    s.put_version(b"k", Some(b"b"), 300).unwrap();
    s.put_version(b"k", Some(b"a"), 100).unwrap();
    assert_eq!(at(&s, b"k", 99), None);
    assert_eq!(at(&s, b"k", 299), Some((b"a".to_vec(), 100, Some(300))));
    assert_eq!(at(&s, b"k", 300), Some((b"b".to_vec(), 300, None)));
}

fn a_write_at_a_versions_own_time_replaces_it<B: Backend>(b: &B) {
    let mut s = store(b);
    s.put_version(b"k", Some(b"a"), 100).unwrap();
    s.put_version(b"k", Some(b"b"), 200).unwrap();
    s.put_version(b"k", Some(b"A"), 100).unwrap();
    s.put_version(b"k", Some(b"B"), 200).unwrap();
    assert_eq!(at(&s, b"k", 150), Some((b"A".to_vec(), 100, Some(200))));
    assert_eq!(at(&s, b"k", 200), Some((b"B".to_vec(), 200, None)));
}

fn a_deletion_ends_a_version_and_hides_the_key<B: Backend>(b: &B) {
    let mut s = store(b);
    s.put_version(b"k", Some(b"a"), 100).unwrap();
    s.put_version(b"k", None, 200).unwrap();
    s.put_version(b"k", Some(b"b"), 400).unwrap();
    assert_eq!(at(&s, b"k", 150), Some((b"a".to_vec(), 100, Some(200))));
    assert_eq!(at(&s, b"k", 300), None);
    assert_eq!(at(&s, b"k", 400), Some((b"b".to_vec(), 400, None)));
    // A late deletion inside a version cuts it short; one at a version's time removes it.
    s.put_version(b"k", None, 120).unwrap();
    assert_eq!(at(&s, b"k", 110), Some((b"a".to_vec(), 100, Some(120))));
    assert_eq!(at(&s, b"k", 150), None);
    s.put_version(b"k", None, 100).unwrap();
    assert_eq!(at(&s, b"k", 110), None);
    s.put_version(b"k", None, 500).unwrap();
    assert_eq!(s.get_latest(b"k").unwrap(), None);
    assert_eq!(s.get(b"k").unwrap(), None);
}

fn writes_and_reads_older_than_the_history_retention_see_nothing<B: Backend>(b: &B) {
    let mut s = store(b);
    s.put_version(b"k", Some(b"a"), 1_000).unwrap();
    s.put_version(b"k", Some(b"b"), 2_000).unwrap();
    s.put_version(b"other", Some(b"x"), 12_000).unwrap(); // stream time 12 s, cutoff 2 s
    assert_eq!(s.observed_stream_time(), 12_000);
    assert_eq!(at(&s, b"k", 1_500), None);
    assert_eq!(at(&s, b"k", 2_000), Some((b"b".to_vec(), 2_000, None)));
    assert_eq!(
        s.put_version(b"k", Some(b"c"), 1_999).unwrap(),
        VersionedPut::Expired
    );
    assert_eq!(
        s.put_version(b"k", Some(b"c"), 2_000).unwrap(),
        VersionedPut::Latest
    );
    assert_eq!(at(&s, b"k", 2_500), Some((b"c".to_vec(), 2_000, None)));
}

fn the_key_value_view_shows_latest_values_with_their_timestamps<B: Backend>(b: &B) {
    let mut s = store(b);
    s.put_version(b"a", Some(b"1"), 10).unwrap();
    s.put_version(b"ab", Some(b"2"), 20).unwrap();
    s.put_version(b"ab", Some(b"old"), 5).unwrap(); // history of a key extending "a"
    s.put_version(b"b", Some(b"3"), 30).unwrap();
    s.put_version(b"b", None, 40).unwrap();
    let ts = |v: &[u8], t: i64| [&t.to_be_bytes()[..], v].concat();
    assert_eq!(
        entries(s.all()),
        vec![
            (b"a".to_vec(), ts(b"1", 10)),
            (b"ab".to_vec(), ts(b"2", 20))
        ]
    );
    assert_eq!(
        entries(s.range(b"ab", b"b")),
        vec![(b"ab".to_vec(), ts(b"2", 20))]
    );
    assert_eq!(s.approximate_num_entries().unwrap(), 2);
    assert_eq!(at(&s, b"a", 7), None);
    // A put through the view is a version at the value's own timestamp.
    s.put(b"a", &ts(b"0", 2), 99).unwrap();
    assert_eq!(at(&s, b"a", 5), Some((b"0".to_vec(), 2, Some(10))));
    assert!(s.put(b"a", b"short", 0).is_err());
}

fn replaying_the_changelog_rebuilds_every_version<B: Backend>(b: &B) {
    let log = MemoryChangelog::new();
    let mut s = LoggedVersionedStore::new(store(b), log.clone());
    s.put_version(b"k", Some(b"a"), 100).unwrap();
    s.put_version(b"k", Some(b"c"), 300).unwrap();
    s.put_version(b"k", Some(b"b"), 200).unwrap();
    s.put_version(b"k", None, 400).unwrap();
    s.put_version(b"j", Some(b"x"), 50).unwrap();
    let mut copy = VersionedStore::with_backend(b.kv("copy"), RETENTION).unwrap();
    let records = log.records();
    let batch: Vec<(&[u8], Option<&[u8]>)> = records
        .iter()
        .map(|r| (r.key.as_slice(), r.value.as_deref()))
        .collect();
    copy.restore_batch(&batch).unwrap();
    for t in [50, 99, 100, 150, 200, 250, 300, 350, 400, 450] {
        for key in [&b"k"[..], b"j"] {
            assert_eq!(at(&copy, key, t), at(&s, key, t), "key {key:?} at {t}");
        }
    }
    assert_eq!(copy.observed_stream_time(), 400);
    assert!(copy.restore(b"k", Some(b"garbage")).is_err());
    copy.restore(b"k", None).unwrap(); // a tombstone forgets the key
    assert_eq!(at(&copy, b"k", 150), None);
}

contract_tests!(
    in_order_versions_are_read_as_of_any_time,
    a_late_write_splits_the_version_it_falls_in,
    a_write_older_than_every_version_lasts_until_the_first,
    a_write_at_a_versions_own_time_replaces_it,
    a_deletion_ends_a_version_and_hides_the_key,
    writes_and_reads_older_than_the_history_retention_see_nothing,
    the_key_value_view_shows_latest_values_with_their_timestamps,
    replaying_the_changelog_rebuilds_every_version,
);

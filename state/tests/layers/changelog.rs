//! Change logging: one record per applied write, tombstones, caller timestamps, store-layout
//! keys, and restore without logging.

use crate::common::{entries, sessions, windows, Backend, Memory, Rocks};
use streamtime_state::session::session_key;
use streamtime_state::window::window_key;
use streamtime_state::*;

fn rec(key: &[u8], value: Option<&[u8]>, timestamp: i64) -> ChangelogRecord {
    ChangelogRecord {
        key: key.to_vec(),
        value: value.map(<[u8]>::to_vec),
        timestamp,
    }
}

/// Replays `log` into `store` the way the runtime restores a changelog partition.
fn replay(store: &mut impl StateStore, log: &[ChangelogRecord]) {
    let batch: Vec<(&[u8], Option<&[u8]>)> = log
        .iter()
        .map(|r| (r.key.as_slice(), r.value.as_deref()))
        .collect();
    store.restore_batch(&batch).unwrap();
}

contract_tests!(
    kv_writes_send_one_record_each,
    kv_changelog_restores_the_same_store,
    window_writes_log_store_layout_keys,
    window_changelog_restores_duplicates_and_sequence,
    session_writes_log_store_layout_keys,
);

fn kv_writes_send_one_record_each<B: Backend>(b: &B) {
    let log = MemoryChangelog::new();
    let mut s = LoggedKeyValueStore::new(b.kv("s"), log.clone());
    s.put(b"a", b"1", 100).unwrap();
    s.put(b"a", b"2", 90).unwrap(); // timestamps are the caller's, not monotonic
    s.delete(b"a", 110).unwrap();
    s.delete(b"never-written", 120).unwrap();
    assert_eq!(
        log.records(),
        vec![
            rec(b"a", Some(b"1"), 100),
            rec(b"a", Some(b"2"), 90),
            rec(b"a", None, 110),
            rec(b"never-written", None, 120),
        ]
    );
    s.restore(b"r", Some(b"x")).unwrap();
    s.restore_batch(&[
        (b"q".as_slice(), Some(b"y".as_slice())),
        (b"r".as_slice(), None),
    ])
    .unwrap();
    assert_eq!(log.len(), 4, "restoring must not log");
    assert_eq!(s.get(b"q").unwrap(), Some(b"y".to_vec()));
    assert_eq!(s.get(b"r").unwrap(), None);
}

fn kv_changelog_restores_the_same_store<B: Backend>(b: &B) {
    let log = MemoryChangelog::new();
    let mut s = LoggedKeyValueStore::new(b.kv("s"), log.clone());
    for (i, k) in [b"c", b"a", b"b", b"a"].iter().enumerate() {
        s.put(*k, format!("{i}").as_bytes(), i as i64).unwrap();
    }
    s.delete(b"b", 9).unwrap();
    let mut copy = InMemoryKeyValueStore::new("copy");
    replay(&mut copy, &log.records());
    assert_eq!(entries(copy.all()), entries(s.all()));
}

fn window_writes_log_store_layout_keys<B: Backend>(b: &B) {
    let log = MemoryChangelog::new();
    let mut s = LoggedWindowStore::new(b.window("w", WindowStoreConfig::new(60_000)), log.clone());
    s.put(b"k", 0, b"v0", 5).unwrap();
    s.delete(b"k", 0, 6).unwrap();
    s.put(b"k", 130_000, b"v1", 130_005).unwrap();
    assert_eq!(
        s.put(b"k", 1_000, b"late", 130_006).unwrap(),
        WriteOutcome::Expired
    );
    assert_eq!(
        log.records(),
        vec![
            rec(&window_key(b"k", 0, None), Some(b"v0"), 5),
            rec(&window_key(b"k", 0, None), None, 6),
            rec(&window_key(b"k", 130_000, None), Some(b"v1"), 130_005),
        ],
        "an expired put is not logged"
    );
    s.restore(&window_key(b"k", 120_000, None), Some(b"restored"))
        .unwrap();
    assert_eq!(log.len(), 3, "restoring must not log");
    assert_eq!(s.get(b"k", 120_000).unwrap(), Some(b"restored".to_vec()));
}

fn window_changelog_restores_duplicates_and_sequence<B: Backend>(b: &B) {
    let config = WindowStoreConfig::new(3_600_000).retain_duplicates(true);
    let log = MemoryChangelog::new();
    let mut s = LoggedWindowStore::new(b.window("j", config), log.clone());
    for v in [b"x", b"y", b"z"] {
        s.put(b"k", 1_000, v, 1_000).unwrap();
    }
    let logged: Vec<Vec<u8>> = log.records().into_iter().map(|r| r.key).collect();
    assert_eq!(
        logged,
        (0..3)
            .map(|seq| window_key(b"k", 1_000, Some(seq)))
            .collect::<Vec<_>>()
    );

    let mut copy = InMemoryWindowStore::new("copy", config).unwrap();
    replay(&mut copy, &log.records());
    assert_eq!(
        windows(copy.fetch_all(0, i64::MAX)),
        windows(s.fetch_all(0, i64::MAX))
    );
    // Numbering continues after the restored records instead of overwriting seq 0.
    copy.put(b"k", 1_000, b"w", 1_000).unwrap();
    assert_eq!(windows(copy.fetch(b"k", 1_000, 1_000)).len(), 4);
}

fn session_writes_log_store_layout_keys<B: Backend>(b: &B) {
    let log = MemoryChangelog::new();
    let mut s = LoggedSessionStore::new(b.session("s", 3_600_000), log.clone());
    s.put(b"k", 0, 10, b"a", 10).unwrap();
    s.put(b"k", 20, 30, b"b", 30).unwrap();
    s.remove(b"k", 0, 10, 25).unwrap();
    s.remove(b"k", 20, 30, 25).unwrap();
    s.put(b"k", 0, 30, b"ab", 25).unwrap();
    assert_eq!(
        log.records(),
        vec![
            rec(&session_key(b"k", 0, 10), Some(b"a"), 10),
            rec(&session_key(b"k", 20, 30), Some(b"b"), 30),
            rec(&session_key(b"k", 0, 10), None, 25),
            rec(&session_key(b"k", 20, 30), None, 25),
            rec(&session_key(b"k", 0, 30), Some(b"ab"), 25),
        ]
    );
    let mut copy = InMemorySessionStore::new("copy", 3_600_000).unwrap();
    replay(&mut copy, &log.records());
    assert_eq!(sessions(copy.fetch(b"k")), sessions(s.fetch(b"k")));
    assert_eq!(log.len(), 5);
}

#[test]
fn restore_rejects_keys_too_short_for_the_layout() {
    let mut w = Memory.window("w", WindowStoreConfig::new(60_000));
    assert!(matches!(
        w.restore(b"short", Some(b"v")),
        Err(StateError::Corrupt { .. })
    ));
    let rocks = Rocks::new();
    let mut s = rocks.session("s", 60_000);
    assert!(matches!(
        s.restore(&[0; 15], None),
        Err(StateError::Corrupt { .. })
    ));
}

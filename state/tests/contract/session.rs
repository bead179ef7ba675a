//! Session store contract.

use crate::common::{keys, sessions, Backend};
use streamtime_state::{KeyValueStore, SessionStore, StateError, WriteOutcome};

contract_tests!(
    find_sessions_returns_overlapping_sessions_by_end_then_start,
    find_sessions_ignores_other_keys,
    remove_and_fetch_session,
    sessions_expire_by_end,
    invalid_sessions_are_rejected,
    fetch_ending_between_scans_every_key,
);

const HOUR: i64 = 3_600_000;

fn find_sessions_returns_overlapping_sessions_by_end_then_start<B: Backend>(b: &B) {
    let mut s = b.session("s", HOUR);
    for (start, end) in [(50, 100), (20, 30), (0, 10), (40, 40), (5, 30)] {
        s.put(b"k", start, end, format!("{start}-{end}").as_bytes(), end)
            .unwrap();
    }
    let found = |ee, ls| -> Vec<(i64, i64)> {
        sessions(s.find_sessions(b"k", ee, ls))
            .into_iter()
            .map(|x| (x.0, x.1))
            .collect()
    };
    assert_eq!(
        found(0, i64::MAX),
        vec![(0, 10), (5, 30), (20, 30), (40, 40), (50, 100)]
    );
    // end >= 25 and start <= 45
    assert_eq!(found(25, 45), vec![(5, 30), (20, 30), (40, 40)]);
    // Both bounds inclusive: end 10 >= 10, start 20 <= 20.
    assert_eq!(found(10, 20), vec![(0, 10), (5, 30), (20, 30)]);
    assert_eq!(found(101, 200), Vec::<(i64, i64)>::new());
    assert_eq!(found(0, 4), vec![(0, 10)]);
    assert_eq!(sessions(s.fetch(b"k")).len(), 5);
    assert_eq!(
        sessions(s.find_sessions(b"k", 40, 40)),
        vec![(40, 40, b"40-40".to_vec())]
    );
}

fn find_sessions_ignores_other_keys<B: Backend>(b: &B) {
    let mut s = b.session("s", HOUR);
    let longer = [b"k".as_slice(), &[0u8; 8]].concat();
    s.put(&longer, 0, 5, b"longer", 5).unwrap();
    s.put(b"j", 0, 5, b"j", 5).unwrap();
    s.put(b"k", 1, 2, b"k", 2).unwrap();
    assert_eq!(sessions(s.fetch(b"k")), vec![(1, 2, b"k".to_vec())]);
    assert_eq!(sessions(s.fetch(&longer)), vec![(0, 5, b"longer".to_vec())]);
}

fn remove_and_fetch_session<B: Backend>(b: &B) {
    let mut s = b.session("s", HOUR);
    s.put(b"k", 0, 10, b"a", 10).unwrap();
    s.put(b"k", 20, 30, b"b", 30).unwrap();
    assert_eq!(s.fetch_session(b"k", 0, 10).unwrap(), Some(b"a".to_vec()));
    assert_eq!(s.fetch_session(b"k", 0, 11).unwrap(), None);
    // Merging [0,10] and [20,30] into [0,30]: remove both, put the merged one.
    s.remove(b"k", 0, 10, 25).unwrap();
    s.remove(b"k", 20, 30, 25).unwrap();
    s.put(b"k", 0, 30, b"ab", 25).unwrap();
    assert_eq!(sessions(s.fetch(b"k")), vec![(0, 30, b"ab".to_vec())]);
    s.remove(b"k", 100, 200, 0).unwrap(); // absent: fine
    s.put(b"k", 0, 30, b"ab2", 26).unwrap();
    assert_eq!(s.fetch_session(b"k", 0, 30).unwrap(), Some(b"ab2".to_vec()));
}

fn sessions_expire_by_end<B: Backend>(b: &B) {
    let mut s = b.session("s", 60_000);
    s.put(b"k", 0, 10, b"old", 10).unwrap();
    s.put(b"k", 0, 65_000, b"long", 65_000).unwrap(); // starts early, ends in segment 1
    s.put(b"k", 100_000, 130_000, b"new", 130_000).unwrap();
    assert_eq!(s.observed_stream_time(), Some(130_000));
    // Segment 0 (ends 0..60 000) is dropped whole.
    let seg0 = keys(s.backend().all())
        .into_iter()
        .filter(|k| k.len() > 8 && k[..8] == 0i64.to_be_bytes())
        .count();
    assert_eq!(seg0, 0);
    assert_eq!(
        sessions(s.fetch(b"k")),
        vec![(100_000, 130_000, b"new".to_vec())],
        "end 65 000 <= 130 000 - 60 000 is expired even though its segment lives"
    );
    assert_eq!(s.fetch_session(b"k", 0, 65_000).unwrap(), None);
    assert_eq!(
        s.put(b"k", 1, 20, b"late", 20).unwrap(),
        WriteOutcome::Expired
    );
    assert_eq!(s.remove(b"k", 0, 10, 20).unwrap(), WriteOutcome::Expired);
    assert_eq!(s.expired_puts(), 2);
}

fn invalid_sessions_are_rejected<B: Backend>(b: &B) {
    let mut s = b.session("s", HOUR);
    assert!(matches!(
        s.put(b"k", 10, 5, b"v", 0),
        Err(StateError::InvalidArgument(_))
    ));
    assert!(matches!(
        s.put(b"k", -1, 5, b"v", 0),
        Err(StateError::InvalidArgument(_))
    ));
    assert_eq!(s.observed_stream_time(), None);
}

fn fetch_ending_between_scans_every_key<B: Backend>(b: &B) {
    let mut s = b.session("s", HOUR);
    for (key, start, end) in [(b"b", 0, 10), (b"a", 5, 20), (b"a", 30, 40), (b"c", 25, 25)] {
        s.put(key, start, end, b"v", end).unwrap();
    }
    let mut found: Vec<(Vec<u8>, i64, i64)> = s
        .fetch_ending_between(10, 25)
        .map(|e| e.map(|e| (e.key, e.start, e.end)))
        .collect::<Result<_, _>>()
        .unwrap();
    found.sort();
    assert_eq!(
        found,
        vec![
            (b"a".to_vec(), 5, 20),
            (b"b".to_vec(), 0, 10),
            (b"c".to_vec(), 25, 25)
        ]
    );
    assert_eq!(s.fetch_ending_between(41, 100).count(), 0);
}

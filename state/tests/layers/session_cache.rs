//! The write-back cache over session stores: folding, merged-away sessions that never reach
//! the store, expiry, and reads that match the store alone.

use std::sync::{Arc, Mutex};

use crate::common::{sessions, Backend, Xorshift};
use streamtime_state::session::session_key;
use streamtime_state::*;

type Flushed = Arc<Mutex<Vec<FlushedEntry>>>;

const MINUTE: i64 = 60_000;

/// Cache over a logged session store, recording what the cache reports and what is logged.
fn cached<B: Backend>(
    b: &B,
    retention_ms: i64,
    max_bytes: usize,
) -> (
    CachingSessionStore<LoggedSessionStore<SegmentedSessionStore<B::Kv>>>,
    MemoryChangelog,
    Flushed,
) {
    let log = MemoryChangelog::new();
    let flushed: Flushed = Arc::default();
    let sink = flushed.clone();
    let logged = LoggedSessionStore::new(b.session("s", retention_ms), log.clone());
    let store = CachingSessionStore::new(logged, max_bytes)
        .with_listener(Box::new(move |e| sink.lock().unwrap().push(e)));
    (store, log, flushed)
}

contract_tests!(
    a_session_extended_by_every_record_costs_one_write_per_flush,
    a_session_made_and_merged_away_between_flushes_never_reaches_the_store,
    a_cached_session_store_reads_exactly_as_the_store_alone_under_random_writes_and_flushes,
);

fn a_session_extended_by_every_record_costs_one_write_per_flush<B: Backend>(b: &B) {
    let (mut s, log, flushed) = cached(b, 60 * MINUTE, 1 << 20);
    s.put(b"u", 0, 0, b"1", 0).unwrap();
    s.flush_cache().unwrap();
    // Three more records, each merging the session into a longer one.
    for (n, end) in [(b"2", 10), (b"3", 20), (b"4", 30)] {
        let prev = s.find_sessions(b"u", 0, end).next().unwrap().unwrap();
        s.remove(b"u", prev.start, prev.end, end).unwrap();
        s.put(b"u", 0, end, n, end).unwrap();
    }
    assert_eq!(sessions(s.fetch(b"u")), vec![(0, 30, b"4".to_vec())]);
    s.flush_cache().unwrap();
    let logged: Vec<(Vec<u8>, Option<Vec<u8>>)> = log
        .records()
        .into_iter()
        .map(|r| (r.key, r.value))
        .collect();
    assert_eq!(
        logged,
        vec![
            (session_key(b"u", 0, 0), Some(b"1".to_vec())),
            (session_key(b"u", 0, 0), None),
            (session_key(b"u", 0, 30), Some(b"4".to_vec())),
        ],
        "the flushed session's removal and the final session; [0,10] and [0,20] never"
    );
    assert_eq!(flushed.lock().unwrap().len(), 3);
    assert_eq!(
        sessions(s.inner().fetch(b"u")),
        vec![(0, 30, b"4".to_vec())]
    );
}

fn a_session_made_and_merged_away_between_flushes_never_reaches_the_store<B: Backend>(b: &B) {
    let (mut s, log, flushed) = cached(b, 60 * MINUTE, 1 << 20);
    s.put(b"u", 0, 0, b"1", 0).unwrap();
    s.remove(b"u", 0, 0, 5).unwrap();
    s.put(b"u", 0, 5, b"2", 5).unwrap();
    s.flush().unwrap();
    assert_eq!(log.records().len(), 1);
    let reported: Vec<Vec<u8>> = flushed
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.key.clone())
        .collect();
    assert_eq!(reported, vec![session_key(b"u", 0, 5)]);
}

fn a_cached_session_store_reads_exactly_as_the_store_alone_under_random_writes_and_flushes<
    B: Backend,
>(
    b: &B,
) {
    // Retention 2 min (1 min segments): ends drift forward, some far behind.
    let mut plain = InMemorySessionStore::new("plain", 2 * MINUTE).unwrap();
    let mut cached = CachingSessionStore::new(b.session("s", 2 * MINUTE), 40 * 100);
    let keys: [&[u8]; 4] = [b"a", b"ab", b"b", b"a\0"];
    let mut rng = Xorshift(0x2545_f491_4f6c_dd1d);
    let mut now = 0i64;
    for step in 0..4_000 {
        now += rng.below(400) as i64;
        let end = (now - rng.below(4 * MINUTE as u64) as i64).max(0) / 1_000 * 1_000;
        let start = (end - rng.below(3) as i64 * 1_000).max(0);
        let key = keys[rng.below(keys.len() as u64) as usize];
        match rng.below(10) {
            0 | 1 => {
                let a = plain.remove(key, start, end, now).unwrap();
                assert_eq!(
                    cached.remove(key, start, end, now).unwrap(),
                    a,
                    "step {step}"
                );
            }
            2 => cached.flush_cache().unwrap(),
            _ => {
                let value = step.to_string().into_bytes();
                let a = plain.put(key, start, end, &value, now).unwrap();
                let c = cached.put(key, start, end, &value, now).unwrap();
                assert_eq!(c, a, "step {step}");
            }
        }
        assert_eq!(
            cached.fetch_session(key, start, end).unwrap(),
            plain.fetch_session(key, start, end).unwrap()
        );
        let (from, to) = (end.saturating_sub(MINUTE), end + MINUTE);
        assert_eq!(
            sessions(cached.find_sessions(key, from, to)),
            sessions(plain.find_sessions(key, from, to)),
            "find_sessions at step {step}"
        );
        assert_eq!(
            sessions(cached.fetch_ending_between(from, to)),
            sessions(plain.fetch_ending_between(from, to)),
            "fetch_ending_between at step {step}"
        );
        assert_eq!(cached.observed_stream_time(), plain.observed_stream_time());
        assert_eq!(cached.expired_puts(), plain.expired_puts(), "step {step}");
    }
    cached.flush().unwrap();
    assert_eq!(
        sessions(cached.inner().fetch_ending_between(0, i64::MAX)),
        sessions(plain.fetch_ending_between(0, i64::MAX)),
        "written out, the store holds what the store alone does"
    );
}

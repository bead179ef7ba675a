//! The hopping-window workload of the test app (`--topology hopping`: size 10 s, advance 5 s,
//! grace 2 s, final results): deterministic out-of-order input, the final counts computed
//! independently of streamtime, and the check of an app's output against them.
//!
//! ```
//! use streamtime_integration_tests::hopping;
//! let records = hopping::input(1_000_000, 1_000, 20);
//! let want = hopping::expected(&records, 3);
//! assert!(!want.is_empty());
//! ```

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use streamtime::partitioner::partition_for_key;

use crate::records::TestRecord;

/// Window size (ms).
pub const SIZE: i64 = 10_000;
/// Window advance (ms).
pub const ADVANCE: i64 = 5_000;
/// Grace (ms).
pub const GRACE: i64 = 2_000;

/// A small deterministic generator, so the input is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

/// `n` records over `keys` keys: event time advances 5 ms per record from `t0`; most records
/// are up to 3 s out of order, one in a hundred is 30 s late (beyond grace for the windows
/// stream time has passed). `t0` must be recent: the broker deletes records older than its
/// retention (7 days).
pub fn input(t0: i64, n: usize, keys: usize) -> Vec<TestRecord> {
    let mut rng = Lcg(42);
    (0..n)
        .map(|i| {
            let key = format!("sensor-{}", rng.next(keys as u64));
            let mut ts = t0 + 5 * i as i64 - rng.next(3_000) as i64;
            if rng.next(100) == 0 {
                ts -= 30_000;
            }
            TestRecord::new(&key, format!("r{i}").into_bytes(), ts)
        })
        .collect()
}

/// Start of every window containing `ts`.
pub fn windows_for(ts: i64) -> impl Iterator<Item = i64> {
    let first = (ts - SIZE + ADVANCE).max(0) / ADVANCE * ADVANCE;
    (0..)
        .map(move |i| first + i * ADVANCE)
        .take_while(move |s| *s <= ts)
}

/// The final count of every (key, window start), computed the way docs/semantics.md §7
/// defines it: each task (one per input partition) sees its partition in offset order, and a
/// record counts in a window unless the window's end is at or before the task's observed
/// stream time − grace.
pub fn expected(records: &[TestRecord], partitions: i32) -> BTreeMap<(String, i64), i64> {
    let mut observed = vec![i64::MIN; partitions as usize];
    let mut counts = BTreeMap::new();
    for r in records {
        let p = partition_for_key(r.key.as_deref().expect("keyed"), partitions) as usize;
        observed[p] = observed[p].max(r.timestamp);
        for start in windows_for(r.timestamp) {
            if start + SIZE > observed[p] - GRACE {
                *counts.entry((r.key_str(), start)).or_insert(0) += 1;
            }
        }
    }
    counts
}

/// One record per partition far ahead in event time, so every window of the input closes.
pub fn closers(last_ts: i64, partitions: i32) -> Vec<TestRecord> {
    (0..partitions)
        .map(|p| {
            let key = (0..)
                .map(|j| format!("zz-closer-{j}"))
                .find(|k| partition_for_key(k.as_bytes(), partitions) == p)
                .expect("some key lands on every partition");
            TestRecord::new(&key, b"close".to_vec(), last_ts + 3_600_000)
        })
        .collect()
}

/// Decodes a windowed key (`key ++ start ++ end`, big-endian) and an i64 count.
pub fn decode(r: &TestRecord) -> ((String, i64), i64, i64) {
    let key = r.key.as_deref().expect("keyed output");
    let (k, window) = key.split_at(key.len() - 16);
    let start = i64::from_be_bytes(window[..8].try_into().expect("8 bytes"));
    let end = i64::from_be_bytes(window[8..].try_into().expect("8 bytes"));
    let value = r.value.as_deref().expect("a count");
    let count = i64::from_be_bytes(value.try_into().expect("an i64 count"));
    (
        (String::from_utf8(k.to_vec()).expect("utf-8 key"), start),
        end,
        count,
    )
}

/// The final windows of an output, asserting each was emitted once with its proper end.
pub fn final_counts(out: &[TestRecord]) -> BTreeMap<(String, i64), i64> {
    let mut got = BTreeMap::new();
    let mut duplicates = Vec::new();
    for r in out {
        let (window, end, count) = decode(r);
        assert_eq!(end, window.1 + SIZE, "window end of {window:?}");
        if got.insert(window.clone(), count).is_some() {
            duplicates.push(window);
        }
    }
    assert!(
        duplicates.is_empty(),
        "{} windows emitted more than once, e.g. {:?}",
        duplicates.len(),
        &duplicates[..duplicates.len().min(5)]
    );
    got
}

/// Whether an output read so far holds every window of `want`. Incremental: a reader calls it
/// after every record with everything read so far.
pub fn has_windows(want: &BTreeMap<(String, i64), i64>) -> impl Fn(&[TestRecord]) -> bool + '_ {
    // (records looked at, expected windows seen)
    let state = RefCell::new((0, BTreeSet::new()));
    move |seen| {
        let mut guard = state.borrow_mut();
        let (done, found) = &mut *guard;
        for r in &seen[*done..] {
            let (window, _, _) = decode(r);
            if want.contains_key(&window) {
                found.insert(window);
            }
        }
        *done = seen.len();
        found.len() == want.len()
    }
}

/// Asserts `got` (`what` names it) has exactly the windows and counts of `want`, naming a few
/// that are missing and a few with wrong counts, so one failure shows both.
#[track_caller]
pub fn assert_same_windows(
    what: &str,
    got: &BTreeMap<(String, i64), i64>,
    want: &BTreeMap<(String, i64), i64>,
) {
    let missing = want.keys().filter(|k| !got.contains_key(*k));
    let wrong = want
        .iter()
        .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
        .map(|(k, v)| (k.clone(), *v, got[k]));
    let extra = got.keys().filter(|k| !want.contains_key(*k)).count();
    let (n_missing, n_wrong) = (missing.clone().count(), wrong.clone().count());
    assert!(
        n_missing == 0 && n_wrong == 0,
        "{what}: of {} windows, {n_missing} missing (e.g. {:?}) and {n_wrong} with wrong counts \
         (window, want, got; e.g. {:?}); {extra} windows not expected",
        want.len(),
        missing.take(5).collect::<Vec<_>>(),
        wrong.take(5).collect::<Vec<_>>(),
    );
}

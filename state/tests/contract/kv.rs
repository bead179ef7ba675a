//! Key-value store contract.

use crate::common::{entries, keys, Backend};
use streamtime_state::{KeyValueBackend, KeyValueStore, StateStore};

contract_tests!(
    range_and_all_use_unsigned_byte_order,
    range_bounds_are_inclusive,
    put_overwrites_and_delete_removes,
    delete_range_excludes_its_end,
    restore_applies_puts_and_tombstones_in_order,
    counts_entries,
);

fn range_and_all_use_unsigned_byte_order<B: Backend>(b: &B) {
    let mut s = b.kv("s");
    // Signed byte order would put 0x80 and 0xff before 0x01.
    for k in [
        vec![0xff],
        vec![0x80, 0x00],
        vec![0x01],
        vec![0x80],
        vec![0x7f],
        vec![],
    ] {
        s.put(&k, b"v", 0).unwrap();
    }
    let ordered = vec![
        vec![],
        vec![0x01],
        vec![0x7f],
        vec![0x80],
        vec![0x80, 0x00],
        vec![0xff],
    ];
    assert_eq!(keys(s.all()), ordered);
    assert_eq!(keys(s.range(&[0x01], &[0xff])), ordered[1..].to_vec());
    assert_eq!(
        keys(s.range(&[0x7f], &[0x80])),
        vec![vec![0x7f], vec![0x80]],
        "an extension of the upper bound sorts after it and is excluded"
    );
}

fn range_bounds_are_inclusive<B: Backend>(b: &B) {
    let mut s = b.kv("s");
    for k in [b"a", b"b", b"c", b"d"] {
        s.put(k, k, 0).unwrap();
    }
    assert_eq!(
        keys(s.range(b"b", b"c")),
        vec![b"b".to_vec(), b"c".to_vec()]
    );
    assert_eq!(keys(s.range(b"b", b"b")), vec![b"b".to_vec()]);
    assert_eq!(keys(s.range(b"bb", b"cc")), vec![b"c".to_vec()]);
    assert!(keys(s.range(b"c", b"b")).is_empty(), "from > to is empty");
    assert!(keys(s.range(b"x", b"z")).is_empty());
}

fn put_overwrites_and_delete_removes<B: Backend>(b: &B) {
    let mut s = b.kv("s");
    assert_eq!(s.get(b"k").unwrap(), None);
    s.put(b"k", b"1", 0).unwrap();
    s.put(b"k", b"2", 0).unwrap();
    assert_eq!(s.get(b"k").unwrap(), Some(b"2".to_vec()));
    assert_eq!(entries(s.all()), vec![(b"k".to_vec(), b"2".to_vec())]);
    s.put(b"e", b"", 0).unwrap();
    assert_eq!(
        s.get(b"e").unwrap(),
        Some(vec![]),
        "an empty value is a value"
    );
    s.delete(b"k", 0).unwrap();
    s.delete(b"absent", 0).unwrap();
    assert_eq!(s.get(b"k").unwrap(), None);
    assert_eq!(keys(s.all()), vec![b"e".to_vec()]);
    s.flush().unwrap();
}

fn delete_range_excludes_its_end<B: Backend>(b: &B) {
    let mut s = b.kv("s");
    for k in [b"a", b"b", b"c", b"d"] {
        s.put(k, b"v", 0).unwrap();
    }
    // Flushed data lives in SST files, which the RocksDB version drops whole.
    s.flush().unwrap();
    s.delete_range(b"a", b"c").unwrap();
    assert_eq!(keys(s.all()), vec![b"c".to_vec(), b"d".to_vec()]);
}

fn restore_applies_puts_and_tombstones_in_order<B: Backend>(b: &B) {
    let mut s = b.kv("s");
    let records: &[(&[u8], Option<&[u8]>)] = &[
        (b"a", Some(b"1")),
        (b"b", Some(b"1")),
        (b"a", Some(b"2")),
        (b"b", None),
    ];
    s.restore_batch(records).unwrap();
    s.restore(b"c", Some(b"3")).unwrap();
    assert_eq!(
        entries(s.all()),
        vec![
            (b"a".to_vec(), b"2".to_vec()),
            (b"c".to_vec(), b"3".to_vec())
        ]
    );
}

fn counts_entries<B: Backend>(b: &B) {
    let mut s = b.kv("s");
    for k in [b"a", b"b", b"c"] {
        s.put(k, b"v", 0).unwrap();
    }
    s.flush().unwrap();
    assert_eq!(s.approximate_num_entries().unwrap(), 3);
}

//! RocksDB stores after close and reopen: data, stream time, duplicate numbering, no WAL.

use streamtime_state::*;

struct Env {
    _tmp: tempfile::TempDir,
    task: TaskDirectory,
    resources: RocksResources,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let task = StateDirectory::new(tmp.path(), "app")
        .unwrap()
        .lock_task("0_0")
        .unwrap();
    let resources = RocksResources::new(&RocksConfig::default()).unwrap();
    Env {
        _tmp: tmp,
        task,
        resources,
    }
}

#[test]
fn key_value_data_survives_a_flushed_close() {
    let e = env();
    {
        let mut s = RocksKeyValueStore::open(&e.task, "s", &e.resources).unwrap();
        s.put(b"a", b"1", 0).unwrap();
        s.put(b"b", b"2", 0).unwrap();
        s.delete(b"a", 0).unwrap();
        s.flush().unwrap();
    }
    let s = RocksKeyValueStore::open(&e.task, "s", &e.resources).unwrap();
    assert!(s.persistent());
    assert_eq!(s.get(b"a").unwrap(), None);
    assert_eq!(s.get(b"b").unwrap(), Some(b"2".to_vec()));
}

#[test]
fn buffered_writes_are_read_scanned_and_kept_across_batches() {
    let e = env();
    let key = |i: u32| i.to_be_bytes();
    {
        let mut s = RocksKeyValueStore::open(&e.task, "s", &e.resources).unwrap();
        // Enough writes for several batches, with rewrites and deletes across batch borders.
        for i in 0..5_000u32 {
            s.put(&key(i), &i.to_le_bytes(), 0).unwrap();
        }
        for i in (0..5_000u32).step_by(3) {
            s.put(&key(i), b"rewritten", 0).unwrap();
        }
        for i in (0..5_000u32).step_by(7) {
            s.delete(&key(i), 0).unwrap();
        }
        let expect = |i: u32| match (i % 7, i % 3) {
            (0, _) => None,
            (_, 0) => Some(b"rewritten".to_vec()),
            _ => Some(i.to_le_bytes().to_vec()),
        };
        for i in [0, 1, 3, 7, 4_998, 4_999] {
            assert_eq!(
                s.get(&key(i)).unwrap(),
                expect(i),
                "key {i} before any flush"
            );
        }
        let scanned: Vec<_> = s.all().collect::<Result<_, _>>().unwrap();
        let wanted: Vec<_> = (0..5_000u32)
            .filter_map(|i| expect(i).map(|v| (key(i).to_vec(), v)))
            .collect();
        assert_eq!(scanned, wanted, "a scan sees writes still buffered");
        s.put(b"only-buffered", b"x", 0).unwrap();
        s.flush().unwrap();
    }
    let s = RocksKeyValueStore::open(&e.task, "s", &e.resources).unwrap();
    assert_eq!(s.get(b"only-buffered").unwrap(), Some(b"x".to_vec()));
    assert_eq!(s.get(&key(3)).unwrap(), Some(b"rewritten".to_vec()));
    assert_eq!(s.get(&key(14)).unwrap(), None);
}

#[test]
fn writes_skip_the_write_ahead_log() {
    let e = env();
    let mut s = RocksKeyValueStore::open(&e.task, "s", &e.resources).unwrap();
    for i in 0..2_000u32 {
        s.put(&i.to_be_bytes(), &[7; 100], 0).unwrap();
    }
    let wal_bytes: u64 = std::fs::read_dir(s.path())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert_eq!(wal_bytes, 0, "200 KB written, none of it to the WAL");
}

#[test]
fn window_store_resumes_stream_time_and_duplicate_numbering() {
    let e = env();
    let config = WindowStoreConfig::new(60_000).retain_duplicates(true);
    {
        let mut s = RocksWindowStore::open(&e.task, "w", config, &e.resources).unwrap();
        s.put(b"k", 61_000, b"expires", 61_000).unwrap();
        s.put(b"k", 130_000, b"a", 130_000).unwrap();
        s.put(b"k", 130_000, b"b", 130_000).unwrap();
        s.flush().unwrap();
    }
    let mut s = RocksWindowStore::open(&e.task, "w", config, &e.resources).unwrap();
    assert_eq!(s.observed_stream_time(), Some(130_000));
    s.put(b"k", 130_000, b"c", 130_000).unwrap();
    let values: Vec<Vec<u8>> = s
        .fetch(b"k", 0, i64::MAX)
        .map(|w| w.unwrap().value)
        .collect();
    assert_eq!(
        values,
        vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()],
        "61 000 stays expired; the new duplicate does not overwrite seq 0"
    );
    assert_eq!(
        s.put(b"k", 1_000, b"late", 1_000).unwrap(),
        WriteOutcome::Expired
    );
}

#[test]
fn session_store_resumes_stream_time() {
    let e = env();
    {
        let mut s = RocksSessionStore::open(&e.task, "s", 60_000, &e.resources).unwrap();
        s.put(b"k", 0, 65_000, b"old", 65_000).unwrap();
        s.put(b"k", 100_000, 130_000, b"new", 130_000).unwrap();
        s.flush().unwrap();
    }
    let s = RocksSessionStore::open(&e.task, "s", 60_000, &e.resources).unwrap();
    assert_eq!(s.observed_stream_time(), Some(130_000));
    let ends: Vec<i64> = s.fetch(b"k").map(|x| x.unwrap().end).collect();
    assert_eq!(ends, vec![130_000]);
}

#[test]
fn a_versioned_store_resumes_its_versions_and_stream_time_after_a_flushed_close() {
    let e = env();
    {
        let mut s = RocksVersionedStore::open(&e.task, "v", 1_000, &e.resources).unwrap();
        s.put_version(b"k", Some(b"a"), 100).unwrap();
        s.put_version(b"k", Some(b"b"), 900).unwrap();
        s.flush().unwrap();
    }
    let mut s = RocksVersionedStore::open(&e.task, "v", 1_000, &e.resources).unwrap();
    assert_eq!(s.observed_stream_time(), 900);
    assert_eq!(
        s.get_as_of(b"k", 500).unwrap().unwrap().value,
        b"a".to_vec()
    );
    // The resumed stream time still bounds the history: 2 s puts the cutoff at 1 s.
    s.put_version(b"j", Some(b"x"), 2_000).unwrap();
    assert_eq!(s.get_as_of(b"k", 500).unwrap(), None);
    assert_eq!(
        s.put_version(b"k", Some(b"c"), 999).unwrap(),
        VersionedPut::Expired
    );
}

//! The task directory: layout and the exclusive lock.

use streamtime_state::*;

#[test]
fn a_locked_task_directory_cannot_be_locked_again() {
    let tmp = tempfile::tempdir().unwrap();
    let app = StateDirectory::new(tmp.path(), "app").unwrap();
    let task = app.lock_task("0_1").unwrap();
    // A second handle (another instance pointed at the same state dir) is refused.
    let other = StateDirectory::new(tmp.path(), "app").unwrap();
    let err = other.lock_task("0_1").unwrap_err();
    assert_eq!(
        err,
        StateError::DirectoryLocked {
            path: tmp.path().join("app").join("0_1")
        }
    );
    assert!(
        err.to_string().contains("is locked by another instance"),
        "{err}"
    );
    // Other tasks are independent.
    let _task2 = other.lock_task("0_2").unwrap();
    drop(task);
    other.lock_task("0_1").unwrap();
}

#[test]
fn an_open_store_keeps_its_task_directory_locked() {
    let tmp = tempfile::tempdir().unwrap();
    let app = StateDirectory::new(tmp.path(), "app").unwrap();
    let resources = RocksResources::new(&RocksConfig::default()).unwrap();
    let task = app.lock_task("1_0").unwrap();
    let store = RocksKeyValueStore::open(&task, "counts", &resources).unwrap();
    assert_eq!(store.path(), tmp.path().join("app/1_0/counts"));
    assert!(
        store.path().join("CURRENT").exists(),
        "RocksDB files live in the store dir"
    );
    drop(task);
    assert!(matches!(
        app.lock_task("1_0"),
        Err(StateError::DirectoryLocked { .. })
    ));
    drop(store);
    app.lock_task("1_0").unwrap();
}

#[test]
fn names_that_are_not_single_path_components_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(StateDirectory::new(tmp.path(), "../escape").is_err());
    let app = StateDirectory::new(tmp.path(), "app").unwrap();
    for bad in ["", "a/b", "..", ".lock"] {
        assert!(app.lock_task(bad).is_err(), "{bad:?}");
    }
    let task = app.lock_task("0_0").unwrap();
    assert!(task.store_path(".checkpoint").is_err());
    assert!(task.store_path("a\\b").is_err());
}

#[test]
fn wipe_removes_stores_and_checkpoint_but_keeps_the_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let app = StateDirectory::new(tmp.path(), "app").unwrap();
    let resources = RocksResources::new(&RocksConfig::default()).unwrap();
    let task = app.lock_task("0_0").unwrap();
    {
        let mut store = RocksKeyValueStore::open(&task, "s", &resources).unwrap();
        store.put(b"k", b"v", 0).unwrap();
    }
    CheckpointFile::new(task.checkpoint_path())
        .write(&CheckpointOffsets::new())
        .unwrap();
    task.wipe().unwrap();
    assert!(!task.store_path("s").unwrap().exists());
    assert_eq!(CheckpointFile::new(task.checkpoint_path()).read(), None);
    assert!(app.lock_task("0_0").is_err(), "still locked");
    let store = RocksKeyValueStore::open(&task, "s", &resources).unwrap();
    assert_eq!(store.get(b"k").unwrap(), None);
}

#[test]
fn rocks_config_is_validated() {
    assert!(RocksResources::new(&RocksConfig::with_total_memory(0)).is_err());
    let too_big = RocksConfig {
        total_memory_bytes: 1 << 20,
        write_buffer_bytes: 2 << 20,
    };
    assert!(RocksResources::new(&too_big).is_err());
}

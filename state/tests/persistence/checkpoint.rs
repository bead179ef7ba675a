//! Checkpoint files: round trip, atomic replace, tolerant reading.

use streamtime_state::{CheckpointFile, CheckpointOffsets, TopicPartition};

fn offsets() -> CheckpointOffsets {
    CheckpointOffsets::from([
        (TopicPartition::new("app-counts-changelog", 0), 41),
        (
            TopicPartition::new("app-counts-changelog", 3),
            1_234_567_890_123,
        ),
        (TopicPartition::new("app-windows-changelog", 0), 0),
    ])
}

fn file() -> (tempfile::TempDir, CheckpointFile) {
    let dir = tempfile::tempdir().unwrap();
    let file = CheckpointFile::new(dir.path().join(".checkpoint"));
    (dir, file)
}

#[test]
fn round_trip() {
    let (_dir, file) = file();
    file.write(&offsets()).unwrap();
    assert_eq!(file.read(), Some(offsets()));
    file.write(&CheckpointOffsets::new()).unwrap();
    assert_eq!(
        file.read(),
        Some(CheckpointOffsets::new()),
        "empty is not missing"
    );
}

#[test]
fn missing_file_is_no_checkpoint() {
    let (_dir, file) = file();
    assert_eq!(file.read(), None);
    file.delete().unwrap(); // deleting a missing checkpoint is fine
}

#[test]
fn write_replaces_atomically_and_leaves_no_temp_file() {
    let (dir, file) = file();
    // A temp file left by a crash mid-write must neither block nor leak into the result.
    std::fs::write(dir.path().join(".checkpoint.tmp"), b"half a checkp").unwrap();
    file.write(&offsets()).unwrap();
    let mut newer = offsets();
    newer.insert(TopicPartition::new("app-counts-changelog", 0), 99);
    file.write(&newer).unwrap();
    assert_eq!(file.read(), Some(newer));
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![".checkpoint".to_owned()]);
}

#[test]
fn format_has_a_version_header() {
    let (_dir, file) = file();
    file.write(&offsets()).unwrap();
    let text = std::fs::read_to_string(file.path()).unwrap();
    assert!(text.starts_with("streamtime-checkpoint v1\n"), "{text}");
    assert!(text.contains("\napp-counts-changelog 0 41\n"), "{text}");
}

#[test]
fn every_truncation_reads_as_no_checkpoint_or_the_full_one() {
    let (_dir, file) = file();
    file.write(&offsets()).unwrap();
    let full = std::fs::read(file.path()).unwrap();
    for len in 0..full.len() {
        std::fs::write(file.path(), &full[..len]).unwrap();
        match file.read() {
            None => {}
            // Only the trailing newline may go without losing anything.
            Some(read) => assert!(len == full.len() - 1 && read == offsets(), "len {len}"),
        }
    }
}

#[test]
fn corrupt_files_read_as_no_checkpoint() {
    let (_dir, file) = file();
    file.write(&offsets()).unwrap();
    let good = std::fs::read_to_string(file.path()).unwrap();
    let corruptions: Vec<Vec<u8>> = vec![
        // A digit changed: still parses, only the checksum can tell.
        good.replacen(" 41\n", " 47\n", 1).into_bytes(),
        good.replacen("v1", "v9", 1).into_bytes(),
        good.replacen("entries 3", "entries 2", 1).into_bytes(),
        b"\x00\xff\xfe garbage \x00".to_vec(),
        vec![0xff; 4096],
        Vec::new(),
        b"checksum 0\n".to_vec(),
    ];
    for bytes in corruptions {
        std::fs::write(file.path(), &bytes).unwrap();
        assert_eq!(file.read(), None, "{:?}", String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn unreadable_path_is_no_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be: reading fails with an I/O error, not NotFound.
    assert_eq!(CheckpointFile::new(dir.path()).read(), None);
}

#[test]
fn invalid_entries_are_refused_on_write() {
    let (_dir, file) = file();
    for bad in [
        CheckpointOffsets::from([(TopicPartition::new("has space", 0), 1)]),
        CheckpointOffsets::from([(TopicPartition::new("", 0), 1)]),
        CheckpointOffsets::from([(TopicPartition::new("t", 0), -1)]),
    ] {
        assert!(file.write(&bad).is_err());
    }
    assert_eq!(file.read(), None, "a refused write leaves nothing behind");
}

//! The checkpoint file: per changelog partition, the offset of the last changelog record the
//! local stores already contain, so restore can start right after it.
//!
//! Format (text, one item per line):
//!
//! ```text
//! streamtime-checkpoint v1
//! entries 2
//! app-counts-changelog 0 41
//! app-counts-changelog 1 7
//! checksum 2fd4d3f7660a3245
//! ```
//!
//! The checksum (64-bit FNV-1a of every byte before the checksum line) catches truncation
//! and bit rot that would otherwise still parse, such as a last offset cut from `41` to `4`.
//! Restoring from a too-low offset is harmless, but from a too-high one silently loses data,
//! so an unverifiable file is treated as no checkpoint at all.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::StateError;

use crate::topic_partition::TopicPartition;

const HEADER: &str = "streamtime-checkpoint v1";

/// Offsets per changelog partition.
pub type CheckpointOffsets = BTreeMap<TopicPartition, i64>;

/// A task's checkpoint file.
///
/// ```
/// use streamtime_state::{CheckpointFile, CheckpointOffsets, TopicPartition};
/// let dir = tempfile::tempdir().unwrap();
/// let file = CheckpointFile::new(dir.path().join(".checkpoint"));
/// assert_eq!(file.read(), None); // no file, no checkpoint
/// let offsets = CheckpointOffsets::from([(TopicPartition::new("app-counts-changelog", 0), 41)]);
/// file.write(&offsets)?;
/// assert_eq!(file.read(), Some(offsets));
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointFile {
    path: PathBuf,
}

impl CheckpointFile {
    /// The checkpoint at `path` (see [`crate::TaskDirectory::checkpoint_path`]).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CheckpointFile { path: path.into() }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved offsets, or `None` when there is no usable checkpoint: a missing file, and
    /// also an unreadable, truncated or corrupt one (logged at warn), since restoring from
    /// the start of the changelog is always correct while failing the app is not.
    pub fn read(&self) -> Option<CheckpointOffsets> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e,
                    "cannot read checkpoint; restoring from the start of the changelog");
                return None;
            }
        };
        match parse(&bytes) {
            Ok(offsets) => Some(offsets),
            Err(reason) => {
                tracing::warn!(path = %self.path.display(), reason,
                    "ignoring corrupt checkpoint; restoring from the start of the changelog");
                None
            }
        }
    }

    /// Replaces the checkpoint atomically: write a temporary file, fsync it, rename it over
    /// the old one, fsync the directory. A crash leaves either the old or the new file.
    pub fn write(&self, offsets: &CheckpointOffsets) -> Result<(), StateError> {
        let text = render(offsets)?;
        let tmp = self.tmp_path();
        let io = |what: &str, p: &Path, e: std::io::Error| {
            StateError::io(format!("{what} {}", p.display()), &e)
        };
        let mut file = std::fs::File::create(&tmp).map_err(|e| io("creating", &tmp, e))?;
        file.write_all(text.as_bytes())
            .map_err(|e| io("writing", &tmp, e))?;
        file.sync_all().map_err(|e| io("syncing", &tmp, e))?;
        drop(file);
        std::fs::rename(&tmp, &self.path).map_err(|e| io("renaming into", &self.path, e))?;
        sync_parent(&self.path)
    }

    /// Removes the checkpoint (missing is fine). Under exactly-once the runtime deletes it
    /// once read, so a crash before the next clean checkpoint forces a full restore.
    pub fn delete(&self) -> Result<(), StateError> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StateError::io(
                format!("removing {}", self.path.display()),
                &e,
            )),
            _ => Ok(()),
        }
    }

    fn tmp_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        self.path.with_file_name(name)
    }
}

/// Makes the rename itself durable: until the directory entry is synced, a power loss can
/// bring back the old file (or none).
fn sync_parent(path: &Path) -> Result<(), StateError> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StateError::io(format!("syncing directory {}", dir.display()), &e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn render(offsets: &CheckpointOffsets) -> Result<String, StateError> {
    let mut text = format!("{HEADER}\nentries {}\n", offsets.len());
    for (tp, offset) in offsets {
        if tp.topic.is_empty() || tp.topic.contains(char::is_whitespace) {
            return Err(StateError::invalid_argument(format!(
                "checkpoint topic {:?} is empty or contains whitespace",
                tp.topic
            )));
        }
        if *offset < 0 || tp.partition < 0 {
            return Err(StateError::invalid_argument(format!(
                "checkpoint for {}-{} has negative partition or offset {offset}",
                tp.topic, tp.partition
            )));
        }
        writeln!(text, "{} {} {}", tp.topic, tp.partition, offset).expect("writing to a String");
    }
    let sum = fnv1a(text.as_bytes());
    writeln!(text, "checksum {sum:016x}").expect("writing to a String");
    Ok(text)
}

fn parse(bytes: &[u8]) -> Result<CheckpointOffsets, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    let body_len = text
        .trim_end_matches('\n')
        .rfind('\n')
        .map(|i| i + 1)
        .ok_or("too short")?;
    let (body, checksum_line) = text.split_at(body_len);
    let expected = checksum_line
        .trim_end_matches('\n')
        .strip_prefix("checksum ")
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .ok_or("missing checksum line (truncated?)")?;
    if fnv1a(body.as_bytes()) != expected {
        return Err("checksum mismatch".to_owned());
    }
    let mut lines = body.lines();
    match lines.next() {
        Some(HEADER) => {}
        Some(other) => return Err(format!("unknown header {other:?}")),
        None => return Err("empty".to_owned()),
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.strip_prefix("entries "))
        .and_then(|n| n.parse().ok())
        .ok_or("missing entry count")?;
    let mut offsets = CheckpointOffsets::new();
    for line in lines {
        let mut fields = line.split(' ');
        let (Some(topic), Some(partition), Some(offset), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(format!("malformed entry {line:?}"));
        };
        let partition: i32 = partition
            .parse()
            .map_err(|_| format!("bad partition in {line:?}"))?;
        let offset: i64 = offset
            .parse()
            .map_err(|_| format!("bad offset in {line:?}"))?;
        if topic.is_empty() || partition < 0 || offset < 0 {
            return Err(format!("invalid entry {line:?}"));
        }
        offsets.insert(TopicPartition::new(topic, partition), offset);
    }
    if offsets.len() != count {
        return Err(format!(
            "{count} entries announced, {} found",
            offsets.len()
        ));
    }
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_docs_show_the_real_format() {
        let offsets = CheckpointOffsets::from([
            (TopicPartition::new("app-counts-changelog", 0), 41),
            (TopicPartition::new("app-counts-changelog", 1), 7),
        ]);
        let text = render(&offsets).unwrap();
        let documented: String = include_str!("checkpoint.rs")
            .lines()
            .skip_while(|l| *l != "//! ```text")
            .skip(1)
            .take_while(|l| *l != "//! ```")
            .map(|l| format!("{}\n", l.trim_start_matches("//! ")))
            .collect();
        assert_eq!(text, documented);
        assert_eq!(parse(text.as_bytes()), Ok(offsets));
    }
}

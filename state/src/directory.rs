//! The on-disk layout `<state_dir>/<application_id>/<task_id>/<store_name>` and the task
//! directory lock that keeps two instances from opening the same task's stores.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::StateError;

const LOCK_FILE: &str = ".lock";
const CHECKPOINT_FILE: &str = ".checkpoint";

/// The state directory of one application: `<state_dir>/<application_id>`.
///
/// ```
/// use streamtime_state::StateDirectory;
/// let tmp = tempfile::tempdir().unwrap();
/// let app = StateDirectory::new(tmp.path(), "my-app")?;
/// let task = app.lock_task("0_1")?;
/// assert_eq!(task.store_path("counts")?, tmp.path().join("my-app/0_1/counts"));
/// // A second lock on the same task fails while the first is held.
/// assert!(app.lock_task("0_1").is_err());
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
#[derive(Debug, Clone)]
pub struct StateDirectory {
    app_dir: PathBuf,
}

impl StateDirectory {
    /// The directory for `application_id` under `state_dir`, created if missing.
    pub fn new(state_dir: impl AsRef<Path>, application_id: &str) -> Result<Self, StateError> {
        check_component("application id", application_id)?;
        let app_dir = state_dir.as_ref().join(application_id);
        std::fs::create_dir_all(&app_dir)
            .map_err(|e| StateError::io(format!("creating {}", app_dir.display()), &e))?;
        Ok(StateDirectory { app_dir })
    }

    /// `<state_dir>/<application_id>`.
    pub fn path(&self) -> &Path {
        &self.app_dir
    }

    /// Creates `<task_id>`'s directory if needed and takes its exclusive lock.
    ///
    /// Fails with [`StateError::DirectoryLocked`] when another process, or another handle in
    /// this process, holds it. The lock is an OS file lock (`flock`), so it vanishes with a
    /// crashed process and never needs manual cleanup.
    pub fn lock_task(&self, task_id: &str) -> Result<TaskDirectory, StateError> {
        check_component("task id", task_id)?;
        let path = self.app_dir.join(task_id);
        std::fs::create_dir_all(&path)
            .map_err(|e| StateError::io(format!("creating {}", path.display()), &e))?;
        let lock_path = path.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StateError::io(format!("opening {}", lock_path.display()), &e))?;
        match file.try_lock() {
            Ok(()) => Ok(TaskDirectory {
                path,
                _lock: Arc::new(file),
            }),
            Err(TryLockError::WouldBlock) => Err(StateError::DirectoryLocked { path }),
            Err(TryLockError::Error(e)) => Err(StateError::io(
                format!("locking {}", lock_path.display()),
                &e,
            )),
        }
    }
}

/// A locked task directory `<state_dir>/<application_id>/<task_id>`.
///
/// Clones share the lock, and RocksDB stores opened in it keep a clone, so the lock is
/// released only when the last store and handle are gone.
///
/// ```
/// use streamtime_state::StateDirectory;
/// let tmp = tempfile::tempdir().unwrap();
/// let app = StateDirectory::new(tmp.path(), "app")?;
/// let task = app.lock_task("1_0")?;
/// drop(task);
/// assert!(app.lock_task("1_0").is_ok()); // released with the last handle
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
#[derive(Debug, Clone)]
pub struct TaskDirectory {
    path: PathBuf,
    _lock: Arc<File>,
}

impl TaskDirectory {
    /// The task directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the store called `store_name` keeps its files.
    pub fn store_path(&self, store_name: &str) -> Result<PathBuf, StateError> {
        check_component("store name", store_name)?;
        Ok(self.path.join(store_name))
    }

    /// The task's checkpoint file (see [`crate::CheckpointFile`]).
    pub fn checkpoint_path(&self) -> PathBuf {
        self.path.join(CHECKPOINT_FILE)
    }

    /// Deletes every store and the checkpoint, keeping the lock: local state that cannot be
    /// trusted (EOS after a crash) must be rebuilt from the changelog, never served stale.
    /// Close the task's stores first.
    pub fn wipe(&self) -> Result<(), StateError> {
        let entries = std::fs::read_dir(&self.path)
            .map_err(|e| StateError::io(format!("listing {}", self.path.display()), &e))?;
        for entry in entries {
            let entry = entry
                .map_err(|e| StateError::io(format!("listing {}", self.path.display()), &e))?;
            if entry.file_name() == LOCK_FILE {
                continue;
            }
            let p = entry.path();
            let result = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            result.map_err(|e| StateError::io(format!("removing {}", p.display()), &e))?;
        }
        Ok(())
    }
}

/// Names become single path components; anything that could climb out of the state
/// directory or collide with the lock/checkpoint files is refused.
fn check_component(what: &str, name: &str) -> Result<(), StateError> {
    let bad = name.is_empty()
        || name.starts_with('.')
        || name.contains(['/', '\\', '\0'])
        || Path::new(name).components().count() != 1;
    if bad {
        return Err(StateError::invalid_argument(format!(
            "{what} {name:?} cannot be used as a directory name (empty, starts with '.', or \
             contains a path separator)"
        )));
    }
    Ok(())
}

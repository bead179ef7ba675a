//! The versioned store, generic over its backend so the RocksDB and in-memory versions share
//! every line of behaviour.

use super::{put_timestamped, split_changelog_value, timestamped};
use super::{VersionedKeyValueStore, VersionedPut, VersionedRecord};
use crate::kv::{KeyValueIter, KeyValueStore};
use crate::{time_key, StateError, StateStore, TaskDirectory};
use crate::{InMemoryKeyValueStore, KeyValueBackend, RocksKeyValueStore, RocksResources};

/// Where the highest timestamp written is kept, so a reopened store resumes it.
const META_KEY: &[u8] = &[0x00];
/// Prefix of a key's latest version: `0x01 ++ key` → `valid from (8) ++ 1 ++ value`, or
/// `valid from ++ 0` once deleted.
const LATEST: u8 = 0x01;
/// Prefix of an older version: `0x02 ++ key length (4) ++ key ++ valid from (8, sign
/// flipped so it sorts)` → `valid to (8) ++ value`. The length keeps one key's versions
/// together when another key extends it. Periods where the key was deleted have no entry.
const HISTORY: u8 = 0x02;

/// A [`VersionedKeyValueStore`] over any [`KeyValueBackend`]: the latest versions under one
/// prefix, so the reads tables make most cost one lookup, and older versions under another,
/// ordered by key and time.
///
/// Old versions are removed when their key is written after they fell out of the history
/// retention (Kafka Streams drops whole time segments instead); until then they cost disk but
/// are never read.
///
/// Use the aliases [`InMemoryVersionedStore`] and [`RocksVersionedStore`].
///
/// ```
/// use streamtime_state::{InMemoryVersionedStore, VersionedKeyValueStore, VersionedPut};
/// let mut store = InMemoryVersionedStore::new("prices", 10_000);
/// store.put_version(b"k", Some(b"a"), 0)?;
/// store.put_version(b"k", None, 4_000)?; // deleted at 4 s
/// assert_eq!(store.get_latest(b"k")?, None);
/// assert_eq!(store.get_as_of(b"k", 3_999)?.map(|r| (r.value, r.valid_to)), Some((b"a".to_vec(), Some(4_000))));
/// store.put_version(b"other", Some(b"x"), 20_000)?; // stream time 20 s: history before 10 s is gone
/// assert_eq!(store.get_as_of(b"k", 3_999)?, None);
/// assert_eq!(store.put_version(b"k", Some(b"b"), 9_000)?, VersionedPut::Expired);
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
pub struct VersionedStore<B> {
    backend: B,
    history_retention_ms: i64,
    observed: i64,
}

/// The in-memory versioned store (tests, test driver).
pub type InMemoryVersionedStore = VersionedStore<InMemoryKeyValueStore>;

/// The RocksDB versioned store.
pub type RocksVersionedStore = VersionedStore<RocksKeyValueStore>;

impl<B> std::fmt::Debug for VersionedStore<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionedStore")
            .field("history_retention_ms", &self.history_retention_ms)
            .field("observed_stream_time", &self.observed)
            .finish_non_exhaustive()
    }
}

impl VersionedStore<InMemoryKeyValueStore> {
    /// An empty in-memory versioned store keeping `history_retention_ms` of history.
    pub fn new(name: &str, history_retention_ms: i64) -> Self {
        VersionedStore {
            backend: InMemoryKeyValueStore::new(name),
            history_retention_ms,
            observed: i64::MIN,
        }
    }
}

impl VersionedStore<RocksKeyValueStore> {
    /// Opens (creating if needed) the versioned store `name` in `task_dir`, resuming the
    /// highest timestamp it had written.
    pub fn open(
        task_dir: &TaskDirectory,
        name: &str,
        history_retention_ms: i64,
        resources: &RocksResources,
    ) -> Result<Self, StateError> {
        Self::with_backend(
            RocksKeyValueStore::open(task_dir, name, resources)?,
            history_retention_ms,
        )
    }
}

/// Latest-version entry: valid from, and the value unless the key is deleted.
struct Latest {
    from: i64,
    value: Option<Vec<u8>>,
}

/// History entry: valid from and to, and the value.
struct Old {
    from: i64,
    to: i64,
    value: Vec<u8>,
}

fn latest_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + key.len());
    out.push(LATEST);
    out.extend_from_slice(key);
    out
}

fn history_prefix(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(13 + key.len());
    out.push(HISTORY);
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key);
    out
}

fn history_key(prefix: &[u8], from: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + 8);
    out.extend_from_slice(prefix);
    out.extend_from_slice(&time_key::encode(from));
    out
}

impl<B: KeyValueBackend> VersionedStore<B> {
    /// A versioned store over `backend`, resuming the highest timestamp it had written.
    pub fn with_backend(backend: B, history_retention_ms: i64) -> Result<Self, StateError> {
        let observed = match backend.get(META_KEY)? {
            Some(bytes) => i64::from_be_bytes(bytes.as_slice().try_into().map_err(|_| {
                StateError::corrupt(
                    format!("opening versioned store {}", backend.name()),
                    format!("stream time of {} bytes", bytes.len()),
                )
            })?),
            None => i64::MIN,
        };
        Ok(VersionedStore {
            backend,
            history_retention_ms,
            observed,
        })
    }

    fn corrupt(&self, what: &str, len: usize) -> StateError {
        StateError::corrupt(
            format!("reading versioned store {}", self.backend.name()),
            format!("{what} of {len} bytes"),
        )
    }

    /// Versions at or after this time are readable.
    fn cutoff(&self) -> i64 {
        self.observed.saturating_sub(self.history_retention_ms)
    }

    fn latest(&self, key: &[u8]) -> Result<Option<Latest>, StateError> {
        let Some(bytes) = self.backend.get(&latest_key(key))? else {
            return Ok(None);
        };
        if bytes.len() < 9 {
            return Err(self.corrupt("latest version", bytes.len()));
        }
        let from = i64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        let value = (bytes[8] == 1).then(|| bytes[9..].to_vec());
        Ok(Some(Latest { from, value }))
    }

    fn write_latest(&mut self, key: &[u8], latest: &Latest) -> Result<(), StateError> {
        let mut bytes = Vec::with_capacity(9 + latest.value.as_ref().map_or(0, Vec::len));
        bytes.extend_from_slice(&latest.from.to_be_bytes());
        match &latest.value {
            Some(v) => {
                bytes.push(1);
                bytes.extend_from_slice(v);
            }
            None => bytes.push(0),
        }
        self.backend.put(&latest_key(key), &bytes, latest.from)
    }

    fn decode_old(&self, prefix_len: usize, k: &[u8], v: &[u8]) -> Result<Old, StateError> {
        if k.len() != prefix_len + 8 || v.len() < 8 {
            return Err(self.corrupt("history entry", k.len() + v.len()));
        }
        Ok(Old {
            from: time_key::decode(&k[prefix_len..]).expect("length checked"),
            to: i64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
            value: v[8..].to_vec(),
        })
    }

    /// The key's history versions starting in `[from, to]`, oldest first.
    fn history(&self, key: &[u8], from: i64, to: i64) -> Result<Vec<Old>, StateError> {
        let prefix = history_prefix(key);
        let (lo, hi) = (history_key(&prefix, from), history_key(&prefix, to));
        self.backend
            .range(&lo, &hi)
            .map(|kv| {
                let (k, v) = kv?;
                self.decode_old(prefix.len(), &k, &v)
            })
            .collect()
    }

    fn write_old(&mut self, key: &[u8], old: &Old) -> Result<(), StateError> {
        let mut bytes = Vec::with_capacity(8 + old.value.len());
        bytes.extend_from_slice(&old.to.to_be_bytes());
        bytes.extend_from_slice(&old.value);
        self.backend.put(
            &history_key(&history_prefix(key), old.from),
            &bytes,
            old.from,
        )
    }

    fn delete_old(&mut self, key: &[u8], from: i64) -> Result<(), StateError> {
        self.backend
            .delete(&history_key(&history_prefix(key), from), from)
    }

    /// Writes a version older than the latest one (`latest_from`) into the history: the
    /// version it falls in is cut short at `timestamp`, and the new one lasts until the next.
    fn put_old(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        timestamp: i64,
        latest_from: i64,
    ) -> Result<(), StateError> {
        let before = self.history(key, i64::MIN, timestamp)?.pop();
        if let Some(prev) = before.as_ref().filter(|p| p.from == timestamp) {
            // Replaces the version starting at the same time.
            return match value {
                Some(v) => self.write_old(
                    key,
                    &Old {
                        from: timestamp,
                        to: prev.to,
                        value: v.to_vec(),
                    },
                ),
                None => self.delete_old(key, timestamp),
            };
        }
        if let Some(prev) = before.filter(|p| p.to > timestamp) {
            self.write_old(
                key,
                &Old {
                    to: timestamp,
                    ..prev
                },
            )?;
        }
        let Some(v) = value else {
            return Ok(());
        };
        let next_from = match timestamp.checked_add(1) {
            Some(after) => self
                .history(key, after, i64::MAX)?
                .first()
                .map_or(latest_from, |o| o.from),
            None => latest_from,
        };
        self.write_old(
            key,
            &Old {
                from: timestamp,
                to: next_from,
                value: v.to_vec(),
            },
        )
    }

    /// Removes the key's versions that ended before the history retention, and its latest
    /// entry when that is a deletion old enough that no read can see past it.
    fn prune(&mut self, key: &[u8]) -> Result<(), StateError> {
        let cutoff = self.cutoff();
        let expired: Vec<i64> = self
            .history(key, i64::MIN, cutoff)?
            .into_iter()
            .filter(|o| o.to <= cutoff)
            .map(|o| o.from)
            .collect();
        for from in &expired {
            self.delete_old(key, *from)?;
        }
        if let Some(Latest { from, value: None }) = self.latest(key)? {
            if from <= cutoff && self.history(key, i64::MIN, i64::MAX)?.is_empty() {
                self.backend.delete(&latest_key(key), from)?;
            }
        }
        Ok(())
    }

    /// The backend's latest-version entries as the key-value view shows them: user keys,
    /// timestamped values, deletions left out.
    fn latest_view<'a>(&'a self, entries: KeyValueIter<'a>) -> KeyValueIter<'a> {
        Box::new(entries.filter_map(move |kv| match kv {
            Err(e) => Some(Err(e)),
            Ok((k, v)) if v.len() >= 9 && k.first() == Some(&LATEST) => (v[8] == 1).then(|| {
                let from = i64::from_be_bytes(v[..8].try_into().expect("8 bytes"));
                Ok((k[1..].to_vec(), timestamped(&v[9..], from)))
            }),
            Ok((_, v)) => Some(Err(self.corrupt("latest version", v.len()))),
        }))
    }

    fn forget(&mut self, key: &[u8]) -> Result<(), StateError> {
        for old in self.history(key, i64::MIN, i64::MAX)? {
            self.delete_old(key, old.from)?;
        }
        self.backend.delete(&latest_key(key), 0)
    }
}

impl<B: KeyValueBackend> StateStore for VersionedStore<B> {
    fn name(&self) -> &str {
        self.backend.name()
    }

    fn persistent(&self) -> bool {
        self.backend.persistent()
    }

    fn flush(&mut self) -> Result<(), StateError> {
        self.backend.flush()
    }

    /// Replays one changelog record: a [`super::changelog_value`] is written as the version
    /// it describes; a tombstone (sent by no streamtime version, but a user may compact one
    /// in) forgets the key.
    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), StateError> {
        let Some(bytes) = value else {
            return self.forget(key);
        };
        let Some((value, timestamp)) = split_changelog_value(bytes) else {
            return Err(StateError::corrupt(
                format!("restoring versioned store {}", self.name()),
                format!(
                    "changelog value of {} bytes is not a versioned write",
                    bytes.len()
                ),
            ));
        };
        self.put_version(key, value, timestamp).map(|_| ())
    }
}

impl<B: KeyValueBackend> VersionedKeyValueStore for VersionedStore<B> {
    fn history_retention_ms(&self) -> i64 {
        self.history_retention_ms
    }

    fn observed_stream_time(&self) -> i64 {
        self.observed
    }

    fn put_version(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        timestamp: i64,
    ) -> Result<VersionedPut, StateError> {
        if timestamp < self.cutoff() {
            return Ok(VersionedPut::Expired);
        }
        if timestamp > self.observed {
            self.observed = timestamp;
            self.backend
                .put(META_KEY, &timestamp.to_be_bytes(), timestamp)?;
        }
        let outcome = match self.latest(key)? {
            Some(latest) if timestamp < latest.from => {
                self.put_old(key, value, timestamp, latest.from)?;
                VersionedPut::History
            }
            previous => {
                if let Some(Latest {
                    from,
                    value: Some(old),
                }) = previous
                {
                    if from < timestamp {
                        let old = Old {
                            from,
                            to: timestamp,
                            value: old,
                        };
                        self.write_old(key, &old)?;
                    }
                }
                let latest = Latest {
                    from: timestamp,
                    value: value.map(<[u8]>::to_vec),
                };
                self.write_latest(key, &latest)?;
                VersionedPut::Latest
            }
        };
        self.prune(key)?;
        Ok(outcome)
    }

    fn get_latest(&self, key: &[u8]) -> Result<Option<VersionedRecord>, StateError> {
        Ok(self.latest(key)?.and_then(|l| {
            l.value.map(|value| VersionedRecord {
                value,
                timestamp: l.from,
                valid_to: None,
            })
        }))
    }

    fn get_as_of(&self, key: &[u8], as_of: i64) -> Result<Option<VersionedRecord>, StateError> {
        if as_of < self.cutoff() {
            return Ok(None);
        }
        if let Some(latest) = self.latest(key)? {
            if latest.from <= as_of {
                return Ok(latest.value.map(|value| VersionedRecord {
                    value,
                    timestamp: latest.from,
                    valid_to: None,
                }));
            }
        }
        Ok(self
            .history(key, i64::MIN, as_of)?
            .pop()
            .filter(|o| o.to > as_of)
            .map(|o| VersionedRecord {
                value: o.value,
                timestamp: o.from,
                valid_to: Some(o.to),
            }))
    }
}

/// The latest versions, in the timestamped layout (see [`VersionedKeyValueStore`]).
impl<B: KeyValueBackend> KeyValueStore for VersionedStore<B> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self
            .get_latest(key)?
            .map(|r| timestamped(&r.value, r.timestamp)))
    }

    fn put(&mut self, key: &[u8], value: &[u8], _timestamp: i64) -> Result<(), StateError> {
        put_timestamped(self, key, value)
    }

    fn delete(&mut self, key: &[u8], timestamp: i64) -> Result<(), StateError> {
        self.put_version(key, None, timestamp).map(|_| ())
    }

    fn range(&self, from: &[u8], to: &[u8]) -> KeyValueIter<'_> {
        self.latest_view(self.backend.range(&latest_key(from), &latest_key(to)))
    }

    fn all(&self) -> KeyValueIter<'_> {
        // Inclusive bounds: `[HISTORY]` itself is never a key (history keys are longer).
        self.latest_view(self.backend.range(&[LATEST], &[HISTORY]))
    }

    /// Exact: counts the keys whose latest version is a value.
    fn approximate_num_entries(&self) -> Result<u64, StateError> {
        let mut n = 0;
        for kv in self.all() {
            kv?;
            n += 1;
        }
        Ok(n)
    }

    fn as_versioned(&self) -> Option<&dyn VersionedKeyValueStore> {
        Some(self)
    }

    fn as_versioned_mut(&mut self) -> Option<&mut dyn VersionedKeyValueStore> {
        Some(self)
    }
}

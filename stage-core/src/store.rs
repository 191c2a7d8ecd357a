//! The local store: one folder per stage, an entry per key, written atomically.
//!
//! An entry is a payload file `<key>.<ext>` and a metadata file `<key>.json` written
//! after it. The metadata names the key and the payload's size and blake3, and carries a
//! checksum of itself: an entry whose metadata is missing, unreadable, of another format
//! or does not match its payload does not exist.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::ingredients::{FORMAT, Ingredients};
use crate::payload::PayloadWriter;
use crate::{BoxError, Digest};

/// The metadata of a cache entry: what it is, how it was made, and its payload's checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The entry's key.
    pub key: Digest,
    /// What the key was made of: provenance of the value.
    pub ingredients: Ingredients,
    /// The output type, as written in the stage.
    pub output: String,
    /// File name of the payload, in the stage's folder.
    pub payload: String,
    /// Size of the payload in bytes.
    pub bytes: u64,
    /// blake3 of the payload.
    pub blake3: Digest,
    /// blake3 chaining values of the payload's segments, so that a reader can check it
    /// front to back while it decodes; empty for a payload of one segment (1 MiB or less).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<Digest>,
    /// When the entry was written (ms since the Unix epoch).
    pub created_ms: u64,
    /// How long the body took (ms).
    pub compute_ms: u64,
}

impl Entry {
    /// The payload at `path`, whole and checked against this entry's size and blake3.
    ///
    /// # Errors
    /// When the payload cannot be read, or its size or checksum differs (`InvalidData`).
    pub fn read_payload(&self, path: &Path) -> io::Result<Bytes> {
        let mut file = self.open_payload(path)?;
        let mut buf = Vec::with_capacity(usize::try_from(self.bytes).unwrap_or(0));
        file.read_to_end(&mut buf)?;
        self.check_size(buf.len() as u64)?;
        if !crate::checksum::matches(&buf, self.blake3) {
            return Err(damaged("payload checksum differs from its metadata".into()));
        }
        Ok(Bytes::from(buf))
    }

    /// The payload file at `path`, its size checked but not its content.
    fn open_payload(&self, path: &Path) -> io::Result<File> {
        let file = File::open(path)?;
        self.check_size(file.metadata()?.len())?;
        Ok(file)
    }

    fn check_size(&self, len: u64) -> io::Result<()> {
        if len == self.bytes {
            return Ok(());
        }
        Err(damaged(format!(
            "payload is {len} bytes, its metadata says {}",
            self.bytes
        )))
    }
}

#[derive(Serialize)]
struct MetaOut<'a> {
    format: u32,
    checksum: Digest,
    entry: &'a RawValue,
}

#[derive(Deserialize)]
struct MetaIn<'a> {
    format: u32,
    checksum: Digest,
    #[serde(borrow)]
    entry: &'a RawValue,
}

/// Encodes an entry's metadata file: JSON with a checksum over the entry's exact bytes.
///
/// # Errors
/// Never in practice: the entry is plain data.
pub fn encode_meta(entry: &Entry) -> Result<Vec<u8>, serde_json::Error> {
    let body = serde_json::to_string(entry)?;
    let raw = RawValue::from_string(body)?;
    let meta = MetaOut {
        format: FORMAT,
        checksum: Digest::of(raw.get().as_bytes()),
        entry: &raw,
    };
    serde_json::to_vec(&meta)
}

/// Decodes a metadata file; `None` for anything but an intact entry of this format.
#[must_use]
pub fn decode_meta(bytes: &[u8]) -> Option<Entry> {
    let meta: MetaIn<'_> = serde_json::from_slice(bytes).ok()?;
    if meta.format != FORMAT || Digest::of(meta.entry.get().as_bytes()) != meta.checksum {
        return None;
    }
    serde_json::from_str(meta.entry.get()).ok()
}

/// A cache folder on the local disk.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// The store kept in `root` (created when first written).
    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> LocalStore {
        LocalStore { root: root.into() }
    }

    /// The cache folder.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of a stage: its path with `.` for `::`, a name a person can recognise.
    #[must_use]
    pub fn stage_dir(&self, stage: &str) -> PathBuf {
        self.root.join(stage.replace("::", "."))
    }

    /// The metadata of the entry for `key`, if it is intact and names `key`.
    #[must_use]
    pub fn lookup(&self, stage: &str, key: &Digest) -> Option<Entry> {
        let bytes = fs::read(self.stage_dir(stage).join(meta_name(key))).ok()?;
        decode_meta(&bytes).filter(|entry| entry.key == *key)
    }

    /// The payload of `entry`, whole and checked against its blake3.
    ///
    /// # Errors
    /// When the payload cannot be read, or its size or checksum differs from `entry`'s
    /// (`InvalidData`).
    pub fn read_payload(&self, stage: &str, entry: &Entry) -> io::Result<Bytes> {
        entry.read_payload(&self.stage_dir(stage).join(&entry.payload))
    }

    /// The payload file of `entry`, its size checked but not its content: for a reader
    /// that checks it as it goes.
    pub(crate) fn open_payload(&self, stage: &str, entry: &Entry) -> io::Result<File> {
        entry.open_payload(&self.stage_dir(stage).join(&entry.payload))
    }

    /// The stage's most recently written intact entry: the one a miss is compared with to
    /// say why it recomputes. Reads one pointer and one metadata file; scans the folder
    /// only when the pointer is missing or stale.
    #[must_use]
    pub fn latest(&self, stage: &str) -> Option<Entry> {
        let pointer = fs::read_to_string(self.stage_dir(stage).join(LATEST)).ok();
        pointer
            .and_then(|hex| hex.trim().parse::<Digest>().ok())
            .and_then(|key| self.lookup(stage, &key))
            .or_else(|| self.entries(stage).into_iter().next())
    }

    /// Points the stage's `latest` file at `key` (best effort: it is only a shortcut).
    fn set_latest(dir: &Path, key: &Digest) {
        let Ok((tmp, mut file)) = temporary(dir) else {
            return;
        };
        let written = file
            .write_all(key.to_hex().as_bytes())
            .and_then(|()| publish(&tmp, &dir.join(LATEST)));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
    }

    /// Every intact entry of a stage, newest first.
    #[must_use]
    pub fn entries(&self, stage: &str) -> Vec<Entry> {
        let Ok(dir) = fs::read_dir(self.stage_dir(stage)) else {
            return Vec::new();
        };
        let mut entries: Vec<Entry> = dir
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter_map(|e| decode_meta(&fs::read(e.path()).ok()?))
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.created_ms));
        entries
    }

    /// Whether the stage's folder holds an entry written by another format version of
    /// `stage`, which this one does not read: it says why a stage without a readable entry
    /// recomputes.
    #[must_use]
    pub fn holds_other_format(&self, stage: &str) -> bool {
        #[derive(Deserialize)]
        struct Format {
            format: u32,
        }
        let Ok(dir) = fs::read_dir(self.stage_dir(stage)) else {
            return false;
        };
        dir.filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter_map(|e| fs::read(e.path()).ok())
            .any(|bytes| serde_json::from_slice::<Format>(&bytes).is_ok_and(|m| m.format != FORMAT))
    }

    /// Writes an entry: the payload through `encode` into a temporary file, synced and
    /// renamed into place, then its metadata the same way, then the folder synced.
    ///
    /// # Errors
    /// When any step fails; what was written is then removed or left as a temporary file
    /// that readers ignore.
    pub fn write(
        &self,
        stage: &str,
        mut entry: Entry,
        encode: impl FnOnce(PayloadWriter) -> Result<PayloadWriter, BoxError>,
    ) -> Result<Entry, BoxError> {
        let dir = self.stage_dir(stage);
        fs::create_dir_all(&dir)?;
        remove_stale_temporaries(&dir);
        let (tmp, file) = temporary(&dir)?;
        let writer = PayloadWriter::new(file);
        let written = match encode(writer).and_then(|w| w.finish().map_err(Into::into)) {
            Ok(written) => written,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        entry.bytes = written.0;
        entry.blake3 = written.1.blake3;
        entry.segments = written.1.segments;
        publish(&tmp, &dir.join(&entry.payload))?;
        let (meta_tmp, mut meta_file) = temporary(&dir)?;
        let meta = encode_meta(&entry)?;
        let committed = meta_file
            .write_all(&meta)
            .and_then(|()| meta_file.sync_all())
            .and_then(|()| publish(&meta_tmp, &dir.join(meta_name(&entry.key))));
        if let Err(e) = committed {
            let _ = fs::remove_file(&meta_tmp);
            return Err(e.into());
        }
        sync_dir(&dir);
        Self::set_latest(&dir, &entry.key);
        Ok(entry)
    }

    /// Tries to take the lock of `key` for this process and thread; see [`KeyLock`].
    #[must_use]
    pub fn try_lock(&self, stage: &str, key: &Digest) -> LockAttempt {
        let dir = self.stage_dir(stage);
        let path = dir.join(format!("{}.lock", key.to_hex()));
        {
            let Ok(mut held) = HELD.lock() else {
                return LockAttempt::Unavailable;
            };
            if !held.insert(path.clone()) {
                return LockAttempt::Busy;
            }
        }
        let release_in_process = || {
            if let Ok(mut held) = HELD.lock() {
                held.remove(&path);
            }
        };
        let file = fs::create_dir_all(&dir).and_then(|()| {
            File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
        });
        let Ok(file) = file else {
            release_in_process();
            return LockAttempt::Unavailable;
        };
        match file.try_lock() {
            Ok(()) => LockAttempt::Held(KeyLock { path, _file: file }),
            Err(fs::TryLockError::WouldBlock) => {
                release_in_process();
                LockAttempt::Busy
            }
            Err(fs::TryLockError::Error(_)) => {
                release_in_process();
                LockAttempt::Unavailable
            }
        }
    }
}

/// Entry payloads are named after their key and codec extension.
#[must_use]
pub fn payload_name(key: &Digest, extension: &str) -> String {
    format!("{}.{extension}", key.to_hex())
}

/// The file in a stage's folder that names its latest entry.
const LATEST: &str = "latest";

fn meta_name(key: &Digest) -> String {
    format!("{}.json", key.to_hex())
}

/// Locks held by this process, so that two threads never both take one.
static HELD: LazyLock<Mutex<HashSet<PathBuf>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

/// The lock of one key, held by one thread of one process at a time.
///
/// It is an advisory lock on `<key>.lock`: the operating system releases it when the
/// process ends, so a killed process never leaves a lock that blocks others.
#[derive(Debug)]
pub struct KeyLock {
    path: PathBuf,
    _file: File,
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        if let Ok(mut held) = HELD.lock() {
            held.remove(&self.path);
        }
    }
}

/// The result of [`LocalStore::try_lock`].
#[derive(Debug)]
pub enum LockAttempt {
    /// The lock is ours until dropped.
    Held(KeyLock),
    /// Another thread or process holds it.
    Busy,
    /// Locks cannot be taken here (a read-only cache): go on without one.
    Unavailable,
}

/// Temporary files, which readers ignore, start with this.
const TEMP_PREFIX: &str = ".tmp-";

fn temporary(dir: &Path) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("{TEMP_PREFIX}{}-{n}-{nanos}", std::process::id()));
    let file = File::options().write(true).create_new(true).open(&path)?;
    Ok((path, file))
}

fn publish(tmp: &Path, to: &Path) -> io::Result<()> {
    fs::rename(tmp, to).inspect_err(|_| {
        let _ = fs::remove_file(tmp);
    })
}

fn damaged(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(not(unix))]
fn sync_dir(_: &Path) {}

/// Temporary files of writers that were killed: older than an hour, nobody writes them.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.filter_map(Result::ok) {
        let stale = entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX)
            && entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| {
                now.duration_since(t).unwrap_or_default() > Duration::from_secs(3600)
            });
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: Digest) -> Entry {
        Entry {
            key,
            ingredients: Ingredients {
                format: FORMAT,
                stage: "demo::s".into(),
                code: Digest::of(b"code"),
                salt: None,
                helpers: vec![],
                codec: "bincode/2".into(),
                shape: None,
                params: vec![],
                inputs: vec![],
                ancestors: vec![],
            },
            output: "u32".into(),
            payload: payload_name(&key, "bin"),
            bytes: 0,
            blake3: Digest::default(),
            segments: vec![],
            created_ms: now_ms(),
            compute_ms: 1,
        }
    }

    #[test]
    fn write_then_lookup_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let key = Digest::of(b"k");
        let written = store
            .write("demo::s", entry(key), |mut w| {
                w.write_all(b"payload")?;
                Ok(w)
            })
            .unwrap();
        assert_eq!(written.bytes, 7);
        assert_eq!(written.blake3, Digest::of(b"payload"));
        let found = store.lookup("demo::s", &key).unwrap();
        assert_eq!(found, written);
        let bytes = store.read_payload("demo::s", &found).unwrap();
        assert_eq!(&bytes[..], b"payload");
        assert!(store.lookup("demo::s", &Digest::of(b"other")).is_none());
        assert_eq!(store.entries("demo::s").len(), 1);
        assert_eq!(store.latest("demo::s").map(|e| e.key), Some(key));
    }

    #[test]
    fn a_failed_encode_leaves_no_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let key = Digest::of(b"k");
        let result = store.write("demo::s", entry(key), |_| Err("no".into()));
        assert!(result.is_err());
        assert!(store.lookup("demo::s", &key).is_none());
        let left: Vec<_> = fs::read_dir(store.stage_dir("demo::s")).unwrap().collect();
        assert!(left.is_empty());
    }

    #[test]
    fn damaged_metadata_is_no_entry() {
        let e = entry(Digest::of(b"k"));
        let good = encode_meta(&e).unwrap();
        assert_eq!(decode_meta(&good), Some(e));
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            assert!(
                decode_meta(&bad).is_none_or(|d| d == decode_meta(&good).unwrap()),
                "flip at {i}"
            );
        }
        assert!(decode_meta(&good[..good.len() / 2]).is_none());
    }

    #[test]
    fn a_key_lock_is_exclusive_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let key = Digest::of(b"k");
        let LockAttempt::Held(lock) = store.try_lock("demo::s", &key) else {
            panic!("not held")
        };
        assert!(matches!(store.try_lock("demo::s", &key), LockAttempt::Busy));
        drop(lock);
        assert!(matches!(
            store.try_lock("demo::s", &key),
            LockAttempt::Held(_)
        ));
    }
}

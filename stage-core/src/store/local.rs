//! The local store: one folder per stage, an entry per key, written atomically.
//!
//! An entry is a payload file `<key>.<ext>` and a metadata file `<key>.meta.json` written
//! after it. The metadata names the key and the payload's size and blake3, and carries a
//! checksum of itself: an entry whose metadata is missing, unreadable, of another format
//! or does not match its payload does not exist.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::entry::{damaged, decode_meta, encode_meta, meta_format};
use super::files::{
    TEMP_PREFIX, ms_since_epoch, publish, remove_stale_temporaries, sync_dir, temporary,
    write_atomic,
};
use super::payload::PayloadWriter;
use super::{
    Entry, Listed, META_SUFFIX, Put, Store, StoreError, WriteError, check_segments, meta_name,
    stage_folder, stage_of_folder,
};
use crate::BoxError;
use crate::codec::{Payload, Reads};
use crate::key::{Digest, FORMAT};

pub use super::lock::{KeyLock, LockAttempt};

/// A cache folder on the local disk.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

/// The file in a stage's folder that names its latest entry.
const LATEST: &str = "latest";

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

    /// The folder of a stage.
    #[must_use]
    pub fn stage_dir(&self, stage: &str) -> PathBuf {
        self.root.join(stage_folder(stage))
    }

    /// The path of an entry's payload.
    #[must_use]
    pub fn payload_path(&self, entry: &Entry) -> PathBuf {
        self.stage_dir(entry.stage()).join(&entry.payload)
    }

    /// The metadata of the entry for `key`, if it is intact and names `key`.
    #[must_use]
    pub fn find(&self, stage: &str, key: &Digest) -> Option<Entry> {
        let bytes = fs::read(self.stage_dir(stage).join(meta_name(key))).ok()?;
        decode_meta(&bytes).filter(|entry| entry.key == *key && entry.stage() == stage)
    }

    /// Whether the payload of `entry` is there, at its size (a `stat`, no read).
    #[must_use]
    pub fn has_payload(&self, entry: &Entry) -> bool {
        fs::metadata(self.payload_path(entry)).is_ok_and(|m| m.len() == entry.bytes)
    }

    /// Reads the payload of `entry` the way `reads` asks, checking every byte before `f`
    /// sees it, and returns what `f` makes of it.
    ///
    /// # Errors
    /// When the payload cannot be opened, or (before `f` runs) does not match its entry.
    pub fn with_payload<R>(
        &self,
        entry: &Entry,
        reads: Reads,
        f: impl FnOnce(Payload) -> R,
    ) -> io::Result<R> {
        let path = self.payload_path(entry);
        match reads {
            Reads::Stream if entry.segments.len() > 1 => {
                let file = entry.open_payload(&path)?;
                // Read and checked a segment at a time on a thread of its own, a few
                // segments ahead of the decoder.
                std::thread::scope(|s| {
                    let segments =
                        check_segments(s, file, entry.bytes, entry.blake3, &entry.segments)
                            .ok_or_else(|| {
                                damaged("payload segments differ from its metadata".into())
                            })?;
                    Ok(f(Payload::checked_segments(segments)))
                })
            }
            Reads::File => {
                let file = entry.open_payload(&path)?;
                super::checksum::check_file(&file, entry.bytes, entry.blake3)?;
                Ok(f(Payload::checked_file(file, entry.bytes)))
            }
            Reads::Map if entry.bytes >= super::mapped::MAP_MIN => {
                let file = entry.open_payload(&path)?;
                let bytes = super::mapped::map(&file)?;
                entry.check(&bytes)?;
                Ok(f(Payload::checked(bytes)))
            }
            Reads::Whole | Reads::Stream | Reads::Map => {
                Ok(f(Payload::checked(entry.read_payload(&path)?)))
            }
        }
    }

    /// The stage's most recently written intact entry. Reads one pointer and one metadata
    /// file; scans the folder only when the pointer is missing or stale.
    #[must_use]
    pub fn latest(&self, stage: &str) -> Option<Entry> {
        let pointer = fs::read_to_string(self.stage_dir(stage).join(LATEST)).ok();
        pointer
            .and_then(|hex| hex.trim().parse::<Digest>().ok())
            .and_then(|key| self.find(stage, &key))
            .or_else(|| self.entries(stage).into_iter().next())
    }

    /// Every intact entry of a stage, newest first.
    #[must_use]
    pub fn entries(&self, stage: &str) -> Vec<Entry> {
        let Ok(dir) = fs::read_dir(self.stage_dir(stage)) else {
            return Vec::new();
        };
        let mut entries: Vec<Entry> = dir
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(META_SUFFIX))
            .filter_map(|e| decode_meta(&fs::read(e.path()).ok()?))
            .filter(|e| e.stage() == stage)
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.created_ms));
        entries
    }

    /// Whether the stage's folder holds an entry written by another format version of
    /// `stage`, which this one does not read: it says why a stage without a readable entry
    /// recomputes.
    #[must_use]
    pub fn holds_other_format(&self, stage: &str) -> bool {
        let Ok(dir) = fs::read_dir(self.stage_dir(stage)) else {
            return false;
        };
        dir.filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter_map(|e| fs::read(e.path()).ok())
            .any(|bytes| meta_format(&bytes).is_some_and(|f| f != FORMAT))
    }

    /// Writes an entry: the payload through `encode` into a temporary file, synced and
    /// renamed into place, then its metadata the same way, then the folder synced. The
    /// entry's size and checksums are filled in from what was written.
    ///
    /// # Errors
    /// When any step fails; what was written is then removed or left as a temporary file
    /// that readers ignore. When the payload was encoded but could not be saved, the error
    /// still carries the entry with its size and checksum.
    pub fn write(
        &self,
        mut entry: Entry,
        encode: impl FnOnce(&mut PayloadWriter) -> Result<(), BoxError>,
    ) -> Result<Entry, WriteError> {
        let file = self.temporary(entry.stage());
        let (tmp, mut writer, opened) = match file {
            Ok((tmp, file)) => (Some(tmp), PayloadWriter::new(file), Ok(())),
            Err(e) => (None, PayloadWriter::hash_only(), Err(e)),
        };
        let remove_tmp = || {
            if let Some(tmp) = &tmp {
                let _ = fs::remove_file(tmp);
            }
        };
        let written = encode(&mut writer).and_then(|()| writer.finish().map_err(Into::into));
        let written = match written {
            Ok(written) => written,
            Err(source) => {
                remove_tmp();
                return Err(WriteError {
                    entry: None,
                    error: source,
                });
            }
        };
        entry.bytes = written.bytes;
        entry.blake3 = written.checksum.blake3;
        entry.segments = written.checksum.segments;
        let committed = opened
            .and(written.saved)
            .and_then(|()| self.commit(&entry, tmp.as_deref().unwrap_or(Path::new(""))));
        match committed {
            Ok(()) => Ok(entry),
            Err(e) => {
                remove_tmp();
                Err(WriteError {
                    entry: Some(Box::new(entry)),
                    error: e.into(),
                })
            }
        }
    }

    /// Publishes the payload `tmp` (a synced temporary file in the stage's folder) and then
    /// the metadata of `entry`.
    ///
    /// # Errors
    /// When a rename or the metadata's write fails.
    pub fn commit(&self, entry: &Entry, tmp: &Path) -> io::Result<()> {
        let dir = self.stage_dir(entry.stage());
        publish(tmp, &dir.join(&entry.payload))?;
        let meta = encode_meta(entry).map_err(io::Error::other)?;
        write_atomic(&dir.join(meta_name(&entry.key)), &meta)?;
        sync_dir(&dir);
        self.set_latest(entry);
        Ok(())
    }

    /// A new temporary file in the folder of `stage`, for a payload on its way in.
    ///
    /// # Errors
    /// When the folder cannot be written.
    pub fn temporary(&self, stage: &str) -> io::Result<(PathBuf, File)> {
        let dir = self.stage_dir(stage);
        fs::create_dir_all(&dir)?;
        remove_stale_temporaries(&dir);
        temporary(&dir)
    }

    /// Points the stage's `latest` file at `entry` (best effort: it is only a shortcut).
    fn set_latest(&self, entry: &Entry) {
        let dir = self.stage_dir(entry.stage());
        let _ = write_atomic(&dir.join(LATEST), entry.key.to_hex().as_bytes());
    }

    fn record_path(&self, name: &str) -> io::Result<PathBuf> {
        let valid = !name.is_empty()
            && Path::new(name)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        if valid {
            Ok(self.root.join(name))
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{name}` is not a record name"),
            ))
        }
    }
}

impl Store for LocalStore {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn lookup(&self, stage: &str, key: &Digest) -> Result<Option<Entry>, StoreError> {
        Ok(self.find(stage, key))
    }

    fn read(&self, entry: &Entry) -> Result<Bytes, StoreError> {
        Ok(entry.read_payload(&self.payload_path(entry))?)
    }

    fn put(&self, entry: &Entry, payload: &Path) -> Result<Put, StoreError> {
        if let Some(existing) = self.find(entry.stage(), &entry.key) {
            return Ok(Put::Existing(Box::new(existing)));
        }
        let (tmp, mut file) = self.temporary(entry.stage())?;
        let copied = (|| {
            io::copy(&mut File::open(payload)?, &mut file)?;
            file.sync_all()
        })();
        if let Err(e) = copied {
            let _ = fs::remove_file(&tmp);
            return Err(e.into());
        }
        self.commit(entry, &tmp)?;
        Ok(Put::Written)
    }

    fn list(&self, stage: Option<&str>) -> Result<Vec<Listed>, StoreError> {
        let folders: Vec<String> = match stage {
            Some(stage) => vec![stage_folder(stage)],
            None => match fs::read_dir(&self.root) {
                Ok(dir) => dir
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e.into()),
            },
        };
        let mut listed = Vec::new();
        for folder in folders {
            list_folder(
                &self.root.join(&folder),
                &stage_of_folder(&folder),
                &mut listed,
            );
        }
        Ok(listed)
    }

    fn remove(&self, stage: &str, key: &Digest, whole: bool) -> Result<(), StoreError> {
        let dir = self.stage_dir(stage);
        let hex = key.to_hex();
        let Ok(files) = fs::read_dir(&dir) else {
            return Ok(());
        };
        for file in files.filter_map(Result::ok) {
            let name = file.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(&hex) else {
                continue;
            };
            let is_meta = rest == META_SUFFIX;
            if (whole || !is_meta) && rest.starts_with('.') {
                match fs::remove_file(file.path()) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e.into()),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn get_record(&self, name: &str) -> Result<Option<Bytes>, StoreError> {
        match fs::read(self.record_path(name)?) {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn put_record(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        Ok(write_atomic(&self.record_path(name)?, bytes)?)
    }

    fn list_records(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let (folder, start) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        let dir = if folder.is_empty() {
            self.root.clone()
        } else {
            self.record_path(folder)?
        };
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(start) && !n.starts_with(TEMP_PREFIX))
            .map(|n| {
                if folder.is_empty() {
                    n
                } else {
                    format!("{folder}/{n}")
                }
            })
            .collect();
        names.sort();
        Ok(names)
    }
}

/// The entries in one stage folder, by key: metadata and payload files.
fn list_folder(dir: &Path, stage: &str, out: &mut Vec<Listed>) {
    let Ok(files) = fs::read_dir(dir) else {
        return;
    };
    let mut by_key = std::collections::BTreeMap::<Digest, Listed>::new();
    for file in files.filter_map(Result::ok) {
        let name = file.file_name().to_string_lossy().into_owned();
        let Some((hex, rest)) = name.split_at_checked(64) else {
            continue;
        };
        let Ok(key) = hex.parse::<Digest>() else {
            continue;
        };
        if rest == ".lock" || !rest.starts_with('.') {
            continue;
        }
        let Ok(meta) = file.metadata() else {
            continue;
        };
        let modified_ms = meta.modified().map_or(0, ms_since_epoch);
        let listed = by_key.entry(key).or_insert_with(|| Listed {
            stage: stage.to_owned(),
            key,
            meta: false,
            payload_bytes: None,
            modified_ms,
        });
        listed.modified_ms = listed.modified_ms.max(modified_ms);
        if rest == META_SUFFIX {
            listed.meta = true;
        } else {
            listed.payload_bytes = Some(meta.len());
        }
    }
    out.extend(by_key.into_values());
}

/// Entry payloads are named after their key and codec extension.
#[must_use]
pub(crate) fn payload_name(key: &Digest, extension: &str) -> String {
    format!("{}.{extension}", key.to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::entry::tests::entry;
    use std::io::Write;

    #[test]
    fn write_then_lookup_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let key = Digest::of(b"k");
        let written = store
            .write(entry(key), |w| Ok(w.write_all(b"payload")?))
            .unwrap();
        assert_eq!(written.bytes, 7);
        assert_eq!(written.blake3, Digest::of(b"payload"));
        let found = store.find("demo::s", &key).unwrap();
        assert_eq!(found, written);
        let bytes = store.read(&found).unwrap();
        assert_eq!(&bytes[..], b"payload");
        assert!(store.find("demo::s", &Digest::of(b"other")).is_none());
        assert_eq!(store.entries("demo::s").len(), 1);
        assert_eq!(store.latest("demo::s").map(|e| e.key), Some(key));
        let listed = store.list(None).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].stage, "demo::s");
        assert!(listed[0].meta);
        assert_eq!(listed[0].payload_bytes, Some(7));
        for reads in [Reads::Whole, Reads::Stream, Reads::File, Reads::Map] {
            let back = store
                .with_payload(&found, reads, |p| p.into_bytes().unwrap())
                .unwrap();
            assert_eq!(&back[..], b"payload");
        }
    }

    #[test]
    fn a_failed_encode_leaves_no_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let key = Digest::of(b"k");
        let result = store.write(entry(key), |_| Err("no".into()));
        assert!(result.is_err_and(|e| e.entry.is_none()));
        assert!(store.find("demo::s", &key).is_none());
        let left: Vec<_> = fs::read_dir(store.stage_dir("demo::s")).unwrap().collect();
        assert!(left.is_empty());
    }

    #[test]
    fn removing_a_payload_keeps_the_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let key = Digest::of(b"k");
        let written = store.write(entry(key), |w| Ok(w.write_all(b"x")?)).unwrap();
        store.remove("demo::s", &key, false).unwrap();
        assert_eq!(store.find("demo::s", &key), Some(written.clone()));
        assert!(!store.has_payload(&written));
        store.remove("demo::s", &key, true).unwrap();
        assert!(store.find("demo::s", &key).is_none());
    }

    #[test]
    fn put_never_replaces_an_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let key = Digest::of(b"k");
        let written = store
            .write(entry(key), |w| Ok(w.write_all(b"one")?))
            .unwrap();
        let other = dir.path().join("other");
        fs::write(&other, b"two").unwrap();
        let mut theirs = written.clone();
        theirs.blake3 = Digest::of(b"two");
        assert_eq!(
            store.put(&theirs, &other).unwrap(),
            Put::Existing(Box::new(written))
        );
    }

    #[test]
    fn records_are_named_files_below_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        store.put_record("runs/a.json", b"1").unwrap();
        store.put_record("runs/b.json", b"2").unwrap();
        assert_eq!(
            store.list_records("runs/").unwrap(),
            ["runs/a.json", "runs/b.json"]
        );
        assert_eq!(&store.get_record("runs/b.json").unwrap().unwrap()[..], b"2");
        assert!(store.get_record("runs/c.json").unwrap().is_none());
        assert!(store.put_record("../escape", b"x").is_err());
    }
}

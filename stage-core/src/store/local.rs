//! The local store: one folder per stage, an entry per key, written atomically.
//!
//! An entry is a payload file `<key>.<ext>` and a metadata file `<key>.meta.json` written
//! after it. The metadata names the key and the payload's size and blake3, and carries a
//! checksum of itself: an entry whose metadata is missing, unreadable, of another format
//! or does not match its payload does not exist.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::entry::{damaged, decode_meta, encode_meta, meta_format};
use super::files::{
    TEMP_PREFIX, ms_since_epoch, publish, remove_stale_temporaries, sync_dir, temporary,
    write_atomic, write_whole,
};
use super::payload::PayloadWriter;
use super::{
    Entry, Listed, META_SUFFIX, Put, Store, StoreError, WriteError, check_segments, meta_name,
    stage_folder, stage_of_folder,
};
use crate::BoxError;
use crate::codec::{Payload, Reads};
use crate::key::{Digest, FORMAT, Ingredients, Reason, StatIndex};

pub use super::lock::{KeyLock, LockAttempt};

/// A cache folder on the local disk.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
    /// Payloads checked earlier, recognised by their stat: see [`LocalStore::trusting`].
    checked: Option<Arc<StatIndex>>,
}

/// The file in a stage's folder that names its latest entry.
const LATEST: &str = "latest";

/// The folder, in a per-item stage's folder, of its items.
pub const ITEMS: &str = "items";

impl LocalStore {
    /// The store kept in `root` (created when first written).
    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> LocalStore {
        LocalStore {
            root: root.into(),
            checked: None,
        }
    }

    /// Remembers in `index` each payload it checks, by the file's size, modification time,
    /// inode and change time, and reads a payload whose stat is still the one remembered
    /// without hashing it again (as raw inputs are recognised). A payload changed within
    /// two seconds of its check is never trusted this way.
    #[must_use]
    pub fn trusting(mut self, index: Arc<StatIndex>) -> LocalStore {
        self.checked = Some(index);
        self
    }

    /// Whether the payload at `path` is the one of `entry`, checked earlier: its stat is
    /// the one remembered with that hash. The canonical path, for remembering it after a
    /// check.
    fn checked_earlier(&self, path: &Path, entry: &Entry) -> (bool, Option<PathBuf>) {
        let Some(index) = &self.checked else {
            return (false, None);
        };
        let Ok(canonical) = fs::canonicalize(path) else {
            return (false, None);
        };
        let known = fs::metadata(&canonical).ok().and_then(|meta| {
            (meta.len() == entry.bytes)
                .then(|| index.known(&canonical, &meta))
                .flatten()
        });
        let trusted = known.is_some_and(|hash| Digest::from(hash) == entry.blake3);
        (trusted, Some(canonical))
    }

    /// Remembers that the payload at the canonical `path` matched `entry`.
    fn remember_checked(&self, path: Option<PathBuf>, entry: &Entry) {
        if let (Some(index), Some(path)) = (&self.checked, path)
            && let Ok(meta) = fs::metadata(&path)
        {
            index.remember(&path, &meta, blake3::Hash::from(entry.blake3.0));
        }
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

    /// The folder of the items of a per-item stage.
    #[must_use]
    pub fn item_dir(&self, stage: &str) -> PathBuf {
        self.stage_dir(stage).join(ITEMS)
    }

    /// The folder an entry's files are in: its stage's, or for an item, its stage's items'.
    #[must_use]
    pub fn entry_dir(&self, entry: &Entry) -> PathBuf {
        if entry.ingredients.element.is_some() {
            self.item_dir(entry.stage())
        } else {
            self.stage_dir(entry.stage())
        }
    }

    /// The path of an entry's payload.
    #[must_use]
    pub fn payload_path(&self, entry: &Entry) -> PathBuf {
        self.entry_dir(entry).join(&entry.payload)
    }

    /// The metadata of the entry for `key`, if it is intact and names `key`.
    #[must_use]
    pub fn find(&self, stage: &str, key: &Digest) -> Option<Entry> {
        let bytes = fs::read(self.stage_dir(stage).join(meta_name(key))).ok()?;
        decode_meta(&bytes)
            .filter(|e| e.key == *key && e.stage() == stage && e.ingredients.element.is_none())
    }

    /// The metadata of item `key` of the per-item stage `stage`, if it is intact.
    #[must_use]
    pub fn find_item(&self, stage: &str, key: &Digest) -> Option<Entry> {
        let bytes = fs::read(self.item_dir(stage).join(meta_name(key))).ok()?;
        decode_meta(&bytes)
            .filter(|e| e.key == *key && e.stage() == stage && e.ingredients.element.is_some())
    }

    /// Whether the payload of `entry` is there, at its size (a `stat`, no read).
    #[must_use]
    pub fn has_payload(&self, entry: &Entry) -> bool {
        fs::metadata(self.payload_path(entry)).is_ok_and(|m| m.len() == entry.bytes)
    }

    /// Reads the payload of `entry` the way `reads` asks, checking every byte before `f`
    /// sees it (or, with [`LocalStore::trusting`], recognising a payload checked earlier by
    /// its stat), and returns what `f` makes of it.
    ///
    /// # Errors
    /// When the payload cannot be opened, or (before `f` runs) does not match its entry.
    pub fn with_payload<T, E>(
        &self,
        entry: &Entry,
        reads: Reads,
        f: impl FnOnce(Payload) -> Result<T, E>,
    ) -> io::Result<Result<T, E>> {
        let path = self.payload_path(entry);
        // A large payload read as a stream stays checked a segment at a time even when it
        // was checked before: the check runs beside the decoder, and the payload is never
        // in memory whole.
        let streamed = matches!(reads, Reads::Stream) && entry.segments.len() > 1;
        let (trusted, canonical) = self.checked_earlier(&path, entry);
        if trusted && !streamed {
            return Self::with_trusted_payload(entry, &path, reads, f);
        }
        let read = Self::with_checked_payload(entry, &path, reads, f)?;
        // A payload read as a stream is checked as the decoder goes: all of it only when
        // the decoder got to its end.
        if read.is_ok() {
            self.remember_checked(canonical, entry);
        }
        Ok(read)
    }

    /// A payload whose stat is that of its earlier check: read as the codec asks, unhashed.
    fn with_trusted_payload<R>(
        entry: &Entry,
        path: &Path,
        reads: Reads,
        f: impl FnOnce(Payload) -> R,
    ) -> io::Result<R> {
        let file = entry.open_payload(path)?;
        Ok(match reads {
            Reads::File => f(Payload::checked_file(file, entry.bytes)),
            Reads::Map if entry.bytes >= super::mapped::MAP_MIN => {
                f(Payload::checked(super::mapped::map(&file)?))
            }
            _ => {
                let mut buf = Vec::with_capacity(usize::try_from(entry.bytes).unwrap_or(0));
                io::Read::read_to_end(&mut &file, &mut buf)?;
                entry.check_size(buf.len() as u64)?;
                f(Payload::checked(Bytes::from(buf)))
            }
        })
    }

    /// A payload checked as it is read, before `f` sees any of it.
    fn with_checked_payload<R>(
        entry: &Entry,
        path: &Path,
        reads: Reads,
        f: impl FnOnce(Payload) -> R,
    ) -> io::Result<R> {
        let path = path.to_path_buf();
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
        self.folder(stage).entries
    }

    /// What the stage's folder holds, read in one pass over its metadata files.
    #[must_use]
    pub fn folder(&self, stage: &str) -> Folder {
        let mut folder = Folder::default();
        let Ok(dir) = fs::read_dir(self.stage_dir(stage)) else {
            return folder;
        };
        for file in dir.filter_map(Result::ok) {
            if !file.file_name().to_string_lossy().ends_with(META_SUFFIX) {
                continue;
            }
            let Ok(bytes) = fs::read(file.path()) else {
                continue;
            };
            match decode_meta(&bytes) {
                Some(entry) if entry.stage() == stage => folder.entries.push(entry),
                Some(_) => {}
                None => {
                    folder.other_format |= meta_format(&bytes).is_some_and(|f| f != FORMAT);
                }
            }
        }
        folder
            .entries
            .sort_by_key(|e| std::cmp::Reverse(e.created_ms));
        folder
    }

    /// Writes an entry: the payload through `encode` into a temporary file, synced and
    /// renamed into place, then its metadata the same way, then the folder synced. The
    /// entry's size and checksums are filled in from what was written.
    ///
    /// An item of a per-item stage is written the same way but not synced: a call writes
    /// thousands, and losing some to a power failure costs their recompute, never a wrong
    /// value (every read checks the checksum).
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
        let item = entry.ingredients.element.is_some();
        let file = Self::temporary_in(&self.entry_dir(&entry));
        let (tmp, mut writer, opened) = match file {
            Ok((tmp, file)) if item => (Some(tmp), PayloadWriter::unsynced(file), Ok(())),
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
            Ok(()) => {
                // Hashed as it was written: a later read of this file needs no hash.
                let path = self.payload_path(&entry);
                self.remember_checked(fs::canonicalize(path).ok(), &entry);
                Ok(entry)
            }
            Err(e) => {
                remove_tmp();
                Err(WriteError {
                    entry: Some(Box::new(entry)),
                    error: e.into(),
                })
            }
        }
    }

    /// Writes an item of a per-item stage, its payload encoded in memory: its size and
    /// checksums filled in, the payload and then the metadata renamed into place, not
    /// synced (see [`LocalStore::write`]). Gives the entry back, the payload, and whether
    /// it was saved.
    ///
    /// # Errors
    /// When the payload could not be encoded.
    pub fn write_item(
        &self,
        mut entry: Entry,
        encode: impl FnOnce(&mut PayloadWriter) -> Result<(), BoxError>,
    ) -> Result<(Entry, Vec<u8>, io::Result<()>), BoxError> {
        let mut writer = PayloadWriter::memory();
        encode(&mut writer)?;
        let written = writer.finish()?;
        entry.bytes = written.bytes;
        entry.blake3 = written.checksum.blake3;
        entry.segments = written.checksum.segments;
        let payload = written.memory.unwrap_or_default();
        let dir = self.entry_dir(&entry);
        let saved = write_whole(&dir.join(&entry.payload), &payload, false).and_then(|()| {
            let meta = encode_meta(&entry).map_err(io::Error::other)?;
            write_whole(&dir.join(meta_name(&entry.key)), &meta, false)
        });
        Ok((entry, payload, saved))
    }

    /// Publishes the payload `tmp` (a synced temporary file in the stage's folder) and then
    /// the metadata of `entry`.
    ///
    /// # Errors
    /// When a rename or the metadata's write fails.
    pub fn commit(&self, entry: &Entry, tmp: &Path) -> io::Result<()> {
        let dir = self.entry_dir(entry);
        publish(tmp, &dir.join(&entry.payload))?;
        let meta = encode_meta(entry).map_err(io::Error::other)?;
        let item = entry.ingredients.element.is_some();
        write_whole(&dir.join(meta_name(&entry.key)), &meta, !item)?;
        if !item {
            sync_dir(&dir);
            self.set_latest(entry);
        }
        Ok(())
    }

    /// A new temporary file in the folder of `stage`, for a payload on its way in.
    ///
    /// # Errors
    /// When the folder cannot be written.
    pub fn temporary(&self, stage: &str) -> io::Result<(PathBuf, File)> {
        Self::temporary_in(&self.stage_dir(stage))
    }

    /// A new temporary file in the folder an entry goes to.
    ///
    /// # Errors
    /// When the folder cannot be written.
    pub fn temporary_for(&self, entry: &Entry) -> io::Result<(PathBuf, File)> {
        Self::temporary_in(&self.entry_dir(entry))
    }

    fn temporary_in(dir: &Path) -> io::Result<(PathBuf, File)> {
        fs::create_dir_all(dir)?;
        remove_stale_temporaries(dir);
        temporary(dir)
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
        Ok(self.find(stage, key).or_else(|| self.find_item(stage, key)))
    }

    fn read(&self, entry: &Entry) -> Result<Bytes, StoreError> {
        Ok(entry.read_payload(&self.payload_path(entry))?)
    }

    fn put(&self, entry: &Entry, payload: &Path) -> Result<Put, StoreError> {
        if let Some(existing) = self.lookup(entry.stage(), &entry.key)? {
            return Ok(Put::Existing(Box::new(existing)));
        }
        let (tmp, mut file) = self.temporary_for(entry)?;
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
        let gone = |e: &io::Error| e.kind() == io::ErrorKind::NotFound;
        if let Some(entry) = self.find(stage, key).or_else(|| self.find_item(stage, key)) {
            let dir = self.entry_dir(&entry);
            fs::remove_file(dir.join(&entry.payload))
                .or_else(|e| if gone(&e) { Ok(()) } else { Err(e) })?;
            if whole {
                fs::remove_file(dir.join(meta_name(key)))?;
            }
            return Ok(());
        }
        // No intact metadata: whatever files carry the key.
        let hex = key.to_hex();
        for dir in [self.stage_dir(stage), self.item_dir(stage)] {
            let Ok(files) = fs::read_dir(&dir) else {
                continue;
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
        by_key
            .entry(key)
            .or_insert_with(|| Listed::new(stage.to_owned(), key, modified_ms))
            .saw(rest, meta.len(), modified_ms);
    }
    out.extend(by_key.into_values());
}

/// What a stage's folder holds: see [`LocalStore::folder`].
#[derive(Debug, Default)]
pub struct Folder {
    /// Every intact entry of the stage, newest first.
    pub entries: Vec<Entry>,
    /// Whether the folder also holds entries written by another format version, which
    /// this one does not read: it says why a stage without a readable entry recomputes.
    pub other_format: bool,
}

impl Folder {
    /// Why a stage with `ingredients` has no entry here, and the index of the nearest
    /// entry it was compared with.
    #[must_use]
    pub fn reason(&self, ingredients: &Ingredients) -> (Reason, Option<usize>) {
        let found = ingredients.reason(self.entries.iter().map(|e| &e.ingredients));
        if matches!(found.0, Reason::NeverRun) && self.other_format {
            return (Reason::Format, None);
        }
        found
    }
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
                .with_payload(&found, reads, Payload::into_bytes)
                .unwrap()
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

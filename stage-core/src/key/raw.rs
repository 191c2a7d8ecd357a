//! Content hashes of raw input files and folders, remembered across runs.
//!
//! A stage's cache key includes the blake3 hash of the *content* of the raw
//! files and folders it reads, never their mtime. Re-reading large unchanged
//! inputs on every run would be slow, so a [`StatIndex`] remembers, per
//! canonical absolute path, the `stat` seen when the file was hashed
//! (size, mtime, inode, ctime) and trusts the stored hash while that `stat`
//! is unchanged and the entry is not "racy" (see [`RACY_NS`]).
//!
//! On disk the index is a 4-byte little-endian format version followed by a
//! bincode (standard config) list of `(path bytes, entry)` records.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Version written in the first four bytes of the index file.
const FORMAT_VERSION: u32 = 1;
/// Files at least this large are hashed with mmap and rayon.
const MMAP_THRESHOLD: u64 = 16 << 20;
/// An entry is trusted only if the file's mtime is at least this many
/// nanoseconds before the moment it was hashed: a file modified within the
/// timestamp granularity of its hashing could change again without its
/// `stat` changing.
const RACY_NS: i64 = 2_000_000_000;
/// Decoding stops past this many bytes, whatever a corrupt file claims.
const DECODE_LIMIT: usize = 1 << 30;
/// blake3 key-derivation context for folder hashes, so that a folder never
/// hashes equal to a file.
const FOLDER_CONTEXT: &str = "stage raw folder v1";

/// The parts of a file's `stat` that must match for a stored hash to be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Stat {
    size: u64,
    mtime_ns: i64,
    inode: u64,
    ctime_ns: i64,
}

impl Stat {
    #[cfg(unix)]
    fn of(meta: &Metadata) -> Stat {
        use std::os::unix::fs::MetadataExt;
        Stat {
            size: meta.len(),
            mtime_ns: join_ns(meta.mtime(), meta.mtime_nsec()),
            inode: meta.ino(),
            ctime_ns: join_ns(meta.ctime(), meta.ctime_nsec()),
        }
    }

    #[cfg(not(unix))]
    fn of(meta: &Metadata) -> Stat {
        // Without an mtime every entry is racy, so it is always re-hashed.
        let mtime_ns = meta.modified().map_or(i64::MAX, system_ns);
        Stat {
            size: meta.len(),
            mtime_ns,
            inode: 0,
            ctime_ns: 0,
        }
    }
}

/// What the index remembers about one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    stat: Stat,
    /// When hashing started, in nanoseconds since the Unix epoch.
    hashed_at_ns: i64,
    hash: [u8; 32],
}

impl Entry {
    /// The stored hash, if `stat` matches and the entry is not racy.
    fn trusted(&self, stat: &Stat) -> Option<blake3::Hash> {
        let settled = stat.mtime_ns <= self.hashed_at_ns.saturating_sub(RACY_NS);
        (self.stat == *stat && settled).then(|| blake3::Hash::from_bytes(self.hash))
    }
}

/// The state behind the lock.
#[derive(Default)]
struct Inner {
    /// By path, as its bytes: hashing bytes is several times faster than hashing a
    /// `Path` component by component, and a folder of 100,000 files looks up each.
    entries: HashMap<OsString, Entry>,
    /// Bumped on every change; the index is dirty while it differs from `saved`.
    generation: u64,
    saved: u64,
}

/// Content hashes of raw inputs, remembered across runs by a stat index kept
/// in a file.
///
/// All methods take `&self` and may be called from many threads at once; the
/// lock is never held while a file's content is read.
pub struct StatIndex {
    file: PathBuf,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for StatIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatIndex")
            .field("file", &self.file)
            .field("entries", &self.lock().entries.len())
            .finish_non_exhaustive()
    }
}

impl StatIndex {
    /// Loads the index kept at `file`.
    ///
    /// A missing, unreadable, corrupt or differently versioned file gives an
    /// empty index, never an error.
    #[must_use]
    pub fn open(file: PathBuf) -> StatIndex {
        let entries = fs::read(&file)
            .ok()
            .and_then(|b| decode(&b))
            .unwrap_or_default();
        let inner = Inner {
            entries,
            ..Inner::default()
        };
        StatIndex {
            file,
            inner: Mutex::new(inner),
        }
    }

    /// Content hash of a file, or of a folder (all regular files below it,
    /// recursively, with their relative paths).
    ///
    /// # Errors
    /// The `io::Error` of a missing or unreadable path (or of anything below
    /// a folder), or `InvalidInput` for a path that is neither a regular file
    /// nor a folder, or a folder whose symlinks loop.
    pub fn hash(&self, path: &Path) -> io::Result<blake3::Hash> {
        let path = fs::canonicalize(path)?;
        let meta = fs::metadata(&path)?;
        if meta.is_dir() {
            self.hash_folder(&path)
        } else if meta.is_file() {
            self.hash_file(&path, &meta)
        } else {
            Err(invalid(&path, "is neither a regular file nor a folder"))
        }
    }

    /// Writes the index back to its file if it changed since it was opened
    /// or last saved: a temporary file in the same folder, fsync, rename.
    ///
    /// # Errors
    /// Any `io::Error` from encoding, writing, syncing or renaming; the
    /// index stays dirty, so a later `save` tries again.
    pub fn save(&self) -> io::Result<()> {
        let (bytes, generation) = {
            let inner = self.lock();
            if inner.generation == inner.saved {
                return Ok(());
            }
            (encode(&inner.entries)?, inner.generation)
        };
        write_atomic(&self.file, &bytes)?;
        let mut inner = self.lock();
        inner.saved = inner.saved.max(generation);
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The content hash remembered for the file at the canonical `path` whose metadata is
    /// `meta`, when its stat is the one remembered and the entry is not racy: what a later
    /// reader may take for the file's hash without reading it.
    #[must_use]
    pub fn known(&self, path: &Path, meta: &Metadata) -> Option<blake3::Hash> {
        let stat = Stat::of(meta);
        self.lock()
            .entries
            .get(path.as_os_str())
            .and_then(|e| e.trusted(&stat))
    }

    /// Remembers that the file at the canonical `path`, whose metadata is `meta`, was just
    /// found to have the content hash `hash`.
    pub fn remember(&self, path: &Path, meta: &Metadata, hash: blake3::Hash) {
        let entry = Entry {
            stat: Stat::of(meta),
            hashed_at_ns: system_ns(SystemTime::now()),
            hash: *hash.as_bytes(),
        };
        let mut inner = self.lock();
        if inner
            .entries
            .get(path.as_os_str())
            .map(|e| (e.stat, e.hash))
            != Some((entry.stat, entry.hash))
        {
            inner.entries.insert(path.as_os_str().to_owned(), entry);
            inner.generation += 1;
        }
    }

    /// Hash of the regular file at the canonical `path` whose metadata is `meta`.
    fn hash_file(&self, path: &Path, meta: &Metadata) -> io::Result<blake3::Hash> {
        let stat = Stat::of(meta);
        let known = self
            .lock()
            .entries
            .get(path.as_os_str())
            .and_then(|e| e.trusted(&stat));
        if let Some(hash) = known {
            return Ok(hash);
        }
        let hashed_at_ns = system_ns(SystemTime::now());
        let hash = hash_content(path, stat.size)?;
        let entry = Entry {
            stat,
            hashed_at_ns,
            hash: *hash.as_bytes(),
        };
        let mut inner = self.lock();
        if inner.entries.insert(path.as_os_str().to_owned(), entry) != Some(entry) {
            inner.generation += 1;
        }
        Ok(hash)
    }

    /// Every regular file below the folder `path` (recursively, following symlinks), in
    /// bytewise order of their relative paths, each with its content hash; and the folder's
    /// hash, the one [`StatIndex::hash`] gives it.
    ///
    /// # Errors
    /// As [`StatIndex::hash`]; `InvalidInput` when `path` is not a folder.
    pub fn files(&self, path: &Path) -> io::Result<(Vec<HashedFile>, blake3::Hash)> {
        let root = fs::canonicalize(path)?;
        if !fs::metadata(&root)?.is_dir() {
            return Err(invalid(&root, "is not a folder"));
        }
        let found = walk(&root, &[], std::slice::from_ref(&root))?;
        // Files not seen before are hashed in parallel; known ones are a lookup.
        let contents = {
            use rayon::prelude::*;
            found
                .par_iter()
                .map(|file| self.hash_file(&file.abs, &file.meta))
                .collect::<io::Result<Vec<_>>>()?
        };
        let mut hasher = blake3::Hasher::new_derive_key(FOLDER_CONTEXT);
        let mut files = Vec::with_capacity(found.len());
        for (file, hash) in found.into_iter().zip(contents) {
            let len = u64::try_from(file.rel.len()).unwrap_or(u64::MAX);
            hasher.update(&len.to_le_bytes());
            hasher.update(&file.rel);
            hasher.update(hash.as_bytes());
            files.push(HashedFile {
                rel: String::from_utf8_lossy(&file.rel).into_owned(),
                abs: file.abs,
                hash,
            });
        }
        Ok((files, hasher.finalize()))
    }

    /// Hash of the folder at the canonical `root`.
    fn hash_folder(&self, root: &Path) -> io::Result<blake3::Hash> {
        self.files(root).map(|(_, hash)| hash)
    }
}

/// A regular file below a folder, with its content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedFile {
    /// Its path relative to the folder, `/`-separated.
    pub rel: String,
    /// Its absolute path.
    pub abs: PathBuf,
    /// blake3 of its content.
    pub hash: blake3::Hash,
}

/// A regular file found below a folder.
struct FoundFile {
    /// Path relative to the folder, `/`-separated.
    rel: Vec<u8>,
    /// Canonical absolute path.
    abs: PathBuf,
    meta: Metadata,
}

/// The regular files below `dir`, in bytewise order of their relative paths. Entries are
/// stat'ed (and subfolders walked) in parallel: a folder of 100,000 files is 100,000
/// `stat`s, most of the time of a warm call. `stack` holds the canonical folders being
/// walked, to stop symlink loops.
fn walk(dir: &Path, rel: &[u8], stack: &[PathBuf]) -> io::Result<Vec<FoundFile>> {
    use rayon::prelude::*;

    let mut entries = fs::read_dir(dir)?.collect::<io::Result<Vec<_>>>()?;
    entries.sort_by_cached_key(|e| e.file_name().into_encoded_bytes());
    let found = entries
        .into_par_iter()
        .map(|entry| {
            let name = entry.file_name();
            let mut child_rel = rel.to_vec();
            if !child_rel.is_empty() {
                child_rel.push(b'/');
            }
            child_rel.extend_from_slice(name.as_encoded_bytes());
            // A symlink is followed to its canonical target; anything else is stat'ed
            // relative to the open folder, without walking its path again.
            let (abs, meta) = if entry.file_type()?.is_symlink() {
                let target = fs::canonicalize(entry.path())?;
                let meta = fs::metadata(&target)?;
                (target, meta)
            } else {
                (entry.path(), entry.metadata()?)
            };
            if meta.is_dir() {
                if stack.contains(&abs) {
                    return Err(invalid(&entry.path(), "is a symlink loop"));
                }
                let mut stack = stack.to_vec();
                stack.push(abs.clone());
                walk(&abs, &child_rel, &stack)
            } else if meta.is_file() {
                Ok(vec![FoundFile {
                    rel: child_rel,
                    abs,
                    meta,
                }])
            } else {
                Ok(Vec::new())
            }
        })
        .collect::<io::Result<Vec<_>>>()?;
    Ok(found.into_iter().flatten().collect())
}

/// blake3 of a file's content; `size` picks mmap + rayon or a buffered read.
fn hash_content(path: &Path, size: u64) -> io::Result<blake3::Hash> {
    let mut hasher = blake3::Hasher::new();
    if size >= MMAP_THRESHOLD {
        hasher.update_mmap_rayon(path)?;
    } else {
        hasher.update_reader(File::open(path)?)?;
    }
    Ok(hasher.finalize())
}

fn invalid(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{} {what}", path.display()),
    )
}

#[cfg(unix)]
fn join_ns(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}

/// Nanoseconds since the Unix epoch, negative before it, saturating.
fn system_ns(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_nanos()).map_or(i64::MIN, |ns| -ns),
    }
}

fn encode(entries: &HashMap<OsString, Entry>) -> io::Result<Vec<u8>> {
    let records: Vec<(Vec<u8>, &Entry)> = entries
        .iter()
        .filter_map(|(path, entry)| Some((path_to_bytes(Path::new(path))?, entry)))
        .collect();
    let mut bytes = FORMAT_VERSION.to_le_bytes().to_vec();
    bincode::serde::encode_into_std_write(&records, &mut bytes, bincode::config::standard())
        .map_err(io::Error::other)?;
    Ok(bytes)
}

/// The entries in `bytes`, or `None` for another version or corrupt data.
fn decode(bytes: &[u8]) -> Option<HashMap<OsString, Entry>> {
    let (version, body) = bytes.split_first_chunk::<4>()?;
    if u32::from_le_bytes(*version) != FORMAT_VERSION {
        return None;
    }
    let config = bincode::config::standard().with_limit::<DECODE_LIMIT>();
    let (records, read): (Vec<(Vec<u8>, Entry)>, usize) =
        bincode::serde::decode_from_slice(body, config).ok()?;
    (read == body.len()).then(|| {
        records
            .into_iter()
            .filter_map(|(p, e)| Some((bytes_to_path(p)?, e)))
            .collect()
    })
}

#[cfg(unix)]
#[allow(clippy::unnecessary_wraps)] // mirrors the fallible non-unix version
fn path_to_bytes(path: &Path) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    Some(path.as_os_str().as_bytes().to_vec())
}

#[cfg(unix)]
#[allow(clippy::unnecessary_wraps)] // mirrors the fallible non-unix version
fn bytes_to_path(bytes: Vec<u8>) -> Option<OsString> {
    use std::os::unix::ffi::OsStringExt;
    Some(OsString::from_vec(bytes))
}

/// Elsewhere only UTF-8 paths are kept; others are simply re-hashed next run.
#[cfg(not(unix))]
fn path_to_bytes(path: &Path) -> Option<Vec<u8>> {
    path.to_str().map(|s| s.as_bytes().to_vec())
}

#[cfg(not(unix))]
fn bytes_to_path(bytes: Vec<u8>) -> Option<OsString> {
    String::from_utf8(bytes).ok().map(OsString::from)
}

/// Replaces `file` with `bytes` atomically: temp file beside it, fsync, rename.
fn write_atomic(file: &Path, bytes: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = file
        .file_name()
        .ok_or_else(|| invalid(file, "has no file name"))?;
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let unique = format!(
        ".{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut tmp_name = name.to_os_string();
    tmp_name.push(unique);
    let tmp = dir.join(tmp_name);
    let written = write_synced(&tmp, bytes).and_then(|()| fs::rename(&tmp, file));
    if written.is_err() {
        // Best effort: the write already failed, and that error is the one reported.
        let _ = fs::remove_file(&tmp);
    }
    written?;
    sync_dir(dir)
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes a rename in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
#[allow(clippy::unnecessary_wraps)] // mirrors the unix version
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn index(dir: &Path) -> StatIndex {
        StatIndex::open(dir.join("stat-index"))
    }

    #[test]
    fn content_decides_the_hash_not_the_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let idx = index(dir.path());
        let f = dir.path().join("a.txt");
        fs::write(&f, "one").unwrap();
        let first = idx.hash(&f).unwrap();
        assert_eq!(first, blake3::hash(b"one"));
        File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(SystemTime::now() + Duration::from_secs(5))
            .unwrap();
        assert_eq!(idx.hash(&f).unwrap(), first, "touched, same content");
        fs::write(&f, "two").unwrap();
        assert_eq!(idx.hash(&f).unwrap(), blake3::hash(b"two"));
    }

    /// A trusted entry is used without reading the file: prove it with an entry whose
    /// stored hash is deliberately wrong.
    #[test]
    fn a_matching_settled_entry_is_trusted_and_a_racy_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let f = fs::canonicalize(dir.path()).unwrap().join("big.bin");
        fs::write(&f, "content").unwrap();
        let stat = Stat::of(&fs::metadata(&f).unwrap());
        let planted = [7u8; 32];
        for (hashed_at_ns, trusted) in [
            (stat.mtime_ns + 3 * RACY_NS, true),
            (stat.mtime_ns + RACY_NS / 2, false),
        ] {
            let idx = index(dir.path());
            idx.lock().entries.insert(
                f.clone().into_os_string(),
                Entry {
                    stat,
                    hashed_at_ns,
                    hash: planted,
                },
            );
            let got = idx.hash(&f).unwrap();
            if trusted {
                assert_eq!(got.as_bytes(), &planted, "the index was not trusted");
            } else {
                assert_eq!(got, blake3::hash(b"content"), "a racy entry was trusted");
            }
        }
    }

    #[test]
    fn the_index_persists_and_a_corrupt_one_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.txt");
        fs::write(&f, "x").unwrap();
        let idx = index(dir.path());
        idx.hash(&f).unwrap();
        idx.save().unwrap();
        assert_eq!(index(dir.path()).lock().entries.len(), 1);
        fs::write(dir.path().join("stat-index"), b"\x01\0\0\0garbage").unwrap();
        assert!(index(dir.path()).lock().entries.is_empty());
    }

    #[test]
    fn folders_hash_their_files_and_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("a.csv"), "1").unwrap();
        fs::write(root.join("sub/b.csv"), "2").unwrap();
        let idx = index(dir.path());
        let base = idx.hash(&root).unwrap();
        assert_ne!(base, idx.hash(&root.join("a.csv")).unwrap());

        File::options()
            .write(true)
            .open(root.join("a.csv"))
            .unwrap()
            .set_modified(SystemTime::now() + Duration::from_secs(9))
            .unwrap();
        assert_eq!(idx.hash(&root).unwrap(), base, "touched only");
        fs::write(root.join("a.csv"), "3").unwrap();
        let edited = idx.hash(&root).unwrap();
        assert_ne!(edited, base, "edited");
        fs::write(root.join("a.csv"), "1").unwrap();
        assert_eq!(idx.hash(&root).unwrap(), base, "edited back");
        fs::rename(root.join("sub/b.csv"), root.join("sub/c.csv")).unwrap();
        assert_ne!(idx.hash(&root).unwrap(), base, "renamed");
        fs::rename(root.join("sub/c.csv"), root.join("sub/b.csv")).unwrap();
        fs::write(root.join("new.csv"), "").unwrap();
        assert_ne!(idx.hash(&root).unwrap(), base, "added");
        fs::remove_file(root.join("new.csv")).unwrap();
        assert_eq!(idx.hash(&root).unwrap(), base, "removed again");
    }

    #[test]
    fn a_missing_path_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = index(dir.path())
            .hash(&dir.path().join("nope"))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}

//! Where entries live. An entry is a payload and its metadata under a stage and a key; a
//! [`Store`] writes the payload first and the metadata last, so an entry without intact
//! metadata that matches its payload does not exist.
//!
//! [`LocalStore`] keeps entries in a folder; `RemoteStore` (feature `remote`) in an object
//! store. Wrappers add behaviour around any store: [`ReadOnly`] refuses writes, [`Breaker`]
//! stops using a store that failed. [`Layered`] puts the local folder in front of a remote.

mod breaker;
mod checksum;
mod entry;
mod files;
mod items;
mod layered;
mod local;
mod lock;
mod mapped;
mod payload;
mod read_only;
#[cfg(feature = "remote")]
mod remote;
mod uploads;

use std::fmt;
use std::io::{self, Write};
use std::path::Path;

use bytes::Bytes;

use crate::key::Digest;

pub use breaker::Breaker;
pub(crate) use checksum::check_segments;
pub use entry::{Entry, decode_meta, encode_meta, meta_format};
pub(crate) use files::now_ms;
pub use items::{INLINE_MAX, ListedItem, decode_items, encode_items};
pub use layered::{Found, Layered};
pub(crate) use local::payload_name;
pub use local::{Folder, ITEMS, KeyLock, LocalStore, LockAttempt};
pub use payload::PayloadWriter;
pub use read_only::ReadOnly;
#[cfg(feature = "remote")]
pub use remote::RemoteStore;

/// The store a [`Remote`](crate::config::Remote) names, wrapped in a [`Breaker`] (and
/// [`ReadOnly`] when asked), made once per process.
///
/// # Errors
/// When the URL is not one this build can open (a cloud whose feature is off), or an
/// option is not valid.
pub fn open_remote(
    remote: &crate::config::Remote,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    #[cfg(feature = "remote")]
    {
        remote::open(remote)
    }
    #[cfg(not(feature = "remote"))]
    {
        Err(StoreError::Unavailable {
            location: remote.url().to_owned(),
            source: "a remote cache needs `stage` built with its `remote` feature (and `aws`, `gcp` or `azure` for a cloud)".into(),
        })
    }
}

/// A place that keeps cache entries: a local folder, a bucket, or a combination.
///
/// Every implementation keeps the same promises: [`Store::put`] writes the payload before
/// the metadata and never replaces an entry that exists; [`Store::lookup`] returns only
/// metadata that is intact and names the key asked for; [`Store::read`] returns only a
/// payload that matches its entry's size and blake3. A damaged entry is a miss, never a
/// wrong value.
pub trait Store: Send + Sync + fmt::Debug {
    /// Where the store is, for messages: a folder, or a URL.
    fn location(&self) -> String;

    /// The entry `key` of `stage`, if its metadata is intact and names that key.
    ///
    /// # Errors
    /// When the store cannot be reached (a missing entry is `Ok(None)`).
    fn lookup(&self, stage: &str, key: &Digest) -> Result<Option<Entry>, StoreError>;

    /// The payload of `entry`, whole, checked against its size and blake3.
    ///
    /// # Errors
    /// When it cannot be read, or does not match (`StoreError::Damaged`).
    fn read(&self, entry: &Entry) -> Result<Bytes, StoreError>;

    /// Writes the payload of `entry` into `out` as it arrives, checking it against the
    /// entry's size and blake3: what `out` holds is checked only once this returns `Ok`.
    ///
    /// # Errors
    /// When it cannot be read, or does not match (`StoreError::Damaged`).
    fn read_into(&self, entry: &Entry, out: &mut dyn Write) -> Result<(), StoreError> {
        out.write_all(&self.read(entry)?)?;
        Ok(())
    }

    /// Commits `entry`, whose payload is the local file `payload`: the payload first, the
    /// metadata last. An entry that exists already is kept as it is, and returned.
    ///
    /// # Errors
    /// When the store cannot be written.
    fn put(&self, entry: &Entry, payload: &Path) -> Result<Put, StoreError>;

    /// What the store holds for `stage` (for every stage when `None`), from listings only:
    /// no metadata is read.
    ///
    /// # Errors
    /// When the store cannot be listed.
    fn list(&self, stage: Option<&str>) -> Result<Vec<Listed>, StoreError>;

    /// Removes the payload of entry `key` of `stage`, and its metadata too when `whole`.
    /// Keeping the metadata keeps what descendants' keys need (the payload's digest).
    ///
    /// # Errors
    /// When the store cannot be written.
    fn remove(&self, stage: &str, key: &Digest, whole: bool) -> Result<(), StoreError>;

    /// A small named record (a run record, an index), if it exists.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn get_record(&self, name: &str) -> Result<Option<Bytes>, StoreError>;

    /// Writes a small named record, replacing it.
    ///
    /// # Errors
    /// When the store cannot be written.
    fn put_record(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError>;

    /// The names of the records whose name starts with `prefix`.
    ///
    /// # Errors
    /// When the store cannot be listed.
    fn list_records(&self, prefix: &str) -> Result<Vec<String>, StoreError>;

    /// Whether the store accepts writes at all.
    fn writable(&self) -> bool {
        true
    }

    /// Checks that the store can be reached, with one small request.
    ///
    /// # Errors
    /// When it cannot.
    fn probe(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Why the store is no longer used in this process, when it failed.
    fn failure(&self) -> Option<String> {
        None
    }
}

/// What [`Store::put`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    /// The entry was written.
    Written,
    /// An entry of that key was there already; it is kept, and here it is.
    Existing(Box<Entry>),
}

/// One entry as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The stage's path.
    pub stage: String,
    /// The entry's key.
    pub key: Digest,
    /// Whether its metadata is there.
    pub meta: bool,
    /// The size of its payload, when the payload is there.
    pub payload_bytes: Option<u64>,
    /// When it was last written (ms since the Unix epoch), as the listing says.
    pub modified_ms: u64,
}

impl Listed {
    /// An entry of `stage` seen first through one of its files, written at `modified_ms`.
    pub(crate) fn new(stage: String, key: Digest, modified_ms: u64) -> Listed {
        Listed {
            stage,
            key,
            meta: false,
            payload_bytes: None,
            modified_ms,
        }
    }

    /// Notes one of the entry's files: `suffix` is its name after the key, `bytes` its size.
    pub(crate) fn saw(&mut self, suffix: &str, bytes: u64, modified_ms: u64) {
        self.modified_ms = self.modified_ms.max(modified_ms);
        if suffix == META_SUFFIX {
            self.meta = true;
        } else {
            self.payload_bytes = Some(bytes);
        }
    }
}

/// Why [`LocalStore::write`] could not save an entry.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct WriteError {
    /// The entry with its payload's size and checksum, when the payload was encoded: what
    /// descendants' keys need, though it is not saved.
    pub entry: Option<Box<Entry>>,
    /// What failed.
    pub error: crate::BoxError,
}

/// Why a store could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The bytes do not match their entry.
    #[error("{0}")]
    Damaged(String),
    /// The store could not be reached, or refused.
    #[error("{location}: {source}")]
    Unavailable {
        /// The store's location.
        location: String,
        /// What went wrong.
        #[source]
        source: crate::BoxError,
    },
    /// The store is read-only.
    #[error("{location} is read-only")]
    ReadOnly {
        /// The store's location.
        location: String,
    },
    /// A local file could not be read or written.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl StoreError {
    /// Whether the error says the bytes are damaged (as opposed to unreachable).
    #[must_use]
    pub fn is_damage(&self) -> bool {
        match self {
            StoreError::Damaged(_) => true,
            StoreError::Io(e) => e.kind() == io::ErrorKind::InvalidData,
            StoreError::Unavailable { .. } | StoreError::ReadOnly { .. } => false,
        }
    }
}

/// The folder name of a stage: its path with `.` for `::`, a name a person can recognise.
#[must_use]
pub fn stage_folder(stage: &str) -> String {
    stage.replace("::", ".")
}

/// The stage path of a folder name made by [`stage_folder`].
#[must_use]
pub fn stage_of_folder(folder: &str) -> String {
    folder.replace('.', "::")
}

/// The name of an entry's metadata file or object.
#[must_use]
pub fn meta_name(key: &Digest) -> String {
    format!("{}{META_SUFFIX}", key.to_hex())
}

/// Metadata files end with this.
pub const META_SUFFIX: &str = ".meta.json";

//! The store a call uses: the local cache folder, with a shared remote store behind it
//! when one is configured. Reads go local first, then remote (an entry found there is
//! checked and copied into the local folder before it is used); writes go local first,
//! then are uploaded behind the computation, and the call waits for them at its end
//! unless told not to.

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::uploads::{self, Pending, Upload};
use super::{Entry, LocalStore, Store, StoreError};
use crate::codec::{Payload, Reads};
use crate::config::Upload as UploadMode;
use crate::key::Digest;

/// Where an entry was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// In the local cache folder.
    Local,
    /// In the remote store only: its payload is fetched when it is read.
    Remote,
}

/// The local cache folder, and the remote store behind it, if any.
#[derive(Clone)]
pub struct Layered {
    local: LocalStore,
    remote: Option<Arc<dyn Store>>,
    upload: UploadMode,
    required: bool,
    pending: Arc<Pending>,
    /// Whether this call uploads entries: its run record is then waited for too.
    uploads_entries: Arc<AtomicBool>,
    /// Entries this call found missing in the remote store: not asked for twice.
    misses: Arc<Mutex<HashSet<(String, Digest)>>>,
}

impl fmt::Debug for Layered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layered")
            .field("local", &self.local.root())
            .field("remote", &self.remote.as_ref().map(|r| r.location()))
            .finish_non_exhaustive()
    }
}

impl Layered {
    /// The local folder alone.
    #[must_use]
    pub fn new(local: LocalStore) -> Layered {
        Layered {
            local,
            remote: None,
            upload: UploadMode::Wait,
            required: false,
            pending: Arc::default(),
            uploads_entries: Arc::default(),
            misses: Arc::default(),
        }
    }

    /// With `remote` behind the local folder.
    #[must_use]
    pub fn with_remote(mut self, remote: Arc<dyn Store>) -> Layered {
        self.remote = Some(remote);
        self
    }

    /// Whether [`Layered::finish`] waits for the uploads.
    #[must_use]
    pub fn upload(mut self, upload: UploadMode) -> Layered {
        self.upload = upload;
        self
    }

    /// Whether a remote store that cannot be used is an error of [`Layered::check`] and
    /// [`Layered::finish`].
    #[must_use]
    pub fn required(mut self, required: bool) -> Layered {
        self.required = required;
        self
    }

    /// The local cache folder.
    #[must_use]
    pub fn local(&self) -> &LocalStore {
        &self.local
    }

    /// The remote store, if any.
    #[must_use]
    pub fn remote(&self) -> Option<&Arc<dyn Store>> {
        self.remote.as_ref()
    }

    /// The metadata of entry `key` of `stage`, and where it is: the local folder first,
    /// then the remote store. Reads metadata only.
    #[must_use]
    pub fn lookup(&self, stage: &str, key: &Digest) -> Option<(Entry, Found)> {
        let local = self.local.find(stage, key);
        if let Some(entry) = local.or_else(|| self.local.find_item(stage, key)) {
            return Some((entry, Found::Local));
        }
        let remote = self.remote.as_ref()?;
        let id = (stage.to_owned(), *key);
        if self.misses.lock().is_ok_and(|m| m.contains(&id)) {
            return None;
        }
        match remote.lookup(stage, key) {
            Ok(Some(entry)) if entry.key == *key && entry.stage() == stage => {
                Some((entry, Found::Remote))
            }
            Ok(_) | Err(_) => {
                if let Ok(mut misses) = self.misses.lock() {
                    misses.insert(id);
                }
                None
            }
        }
    }

    /// Reads the payload of `entry` as `reads` asks, every byte checked before `f` sees
    /// it. A remote entry's payload is fetched, checked and kept in the local folder first.
    ///
    /// # Errors
    /// When the payload cannot be read or fetched (`NotFound` when the remote store has no
    /// payload or cannot be reached), or does not match its entry (`InvalidData`).
    pub fn with_payload<T, E>(
        &self,
        entry: &Entry,
        found: Found,
        reads: Reads,
        f: impl FnOnce(Payload) -> Result<T, E>,
    ) -> io::Result<Result<T, E>> {
        let local_payload =
            found == Found::Local && (self.remote.is_none() || self.local.has_payload(entry));
        if !local_payload {
            // A remote entry, or a local one whose payload was collected: fetched first.
            self.fetch(entry)?;
        }
        self.local.with_payload(entry, reads, f)
    }

    /// Copies a remote entry into the local folder: the payload, checked as it arrives,
    /// then the metadata. Nothing unchecked is ever committed.
    ///
    /// # Errors
    /// When the payload cannot be fetched or does not match, or the folder cannot be
    /// written.
    pub fn fetch(&self, entry: &Entry) -> io::Result<()> {
        let remote = self
            .remote
            .as_ref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no remote store"))?;
        let (tmp, mut file) = self.local.temporary_for(entry)?;
        let fetched = remote
            .read_into(entry, &mut file)
            .map_err(to_io)
            .and_then(|()| file.sync_all());
        drop(file);
        match fetched {
            Ok(()) => self.local.commit(entry, &tmp),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// An entry was committed in the local folder: uploads it to the remote store, behind
    /// the computation.
    pub fn share(&self, entry: &Entry) {
        if let Some(remote) = self.writable_remote() {
            let upload = Upload::Entry {
                entry: Box::new(entry.clone()),
                payload: self.local.payload_path(entry),
            };
            self.uploads_entries.store(true, Ordering::Relaxed);
            uploads::submit(Arc::clone(remote), upload, &self.pending);
        }
    }

    /// Uploads the small record `name` to the remote store, behind the computation. A call
    /// that uploads no entry (all hits) does not wait for its record: a warm call costs no
    /// round trip.
    pub fn share_record(&self, name: &str, bytes: Vec<u8>) {
        if let Some(remote) = self.writable_remote() {
            let upload = Upload::Record {
                name: name.to_owned(),
                bytes,
            };
            let pending = if self.uploads_entries.load(Ordering::Relaxed) {
                Arc::clone(&self.pending)
            } else {
                Arc::default()
            };
            uploads::submit(Arc::clone(remote), upload, &pending);
        }
    }

    fn writable_remote(&self) -> Option<&Arc<dyn Store>> {
        self.remote.as_ref().filter(|r| r.writable())
    }

    /// Before a call: a required remote store must answer.
    ///
    /// # Errors
    /// When the remote store is required and cannot be reached.
    pub fn check(&self) -> Result<(), StoreError> {
        match &self.remote {
            Some(remote) if self.required => remote.probe(),
            _ => Ok(()),
        }
    }

    /// At the end of a call: waits for its uploads (unless they run in the background).
    ///
    /// # Errors
    /// When the remote store is required and failed during the call.
    pub fn finish(&self) -> Result<(), StoreError> {
        if self.upload == UploadMode::Wait {
            self.pending.wait();
        }
        match &self.remote {
            Some(remote) if self.required => match remote.failure() {
                Some(why) => Err(StoreError::Unavailable {
                    location: remote.location(),
                    source: why.into(),
                }),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

/// A remote store that cannot be reached, or that lacks the payload, makes a miss that is
/// recomputed like a removed entry (the store said so once); damage is reported as such.
fn to_io(e: StoreError) -> io::Error {
    match e {
        StoreError::Io(e) => e,
        StoreError::Damaged(what) => io::Error::new(io::ErrorKind::InvalidData, what),
        other => io::Error::new(io::ErrorKind::NotFound, other.to_string()),
    }
}

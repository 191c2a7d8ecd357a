//! The store a call uses: the local cache folder, with a shared remote store behind it
//! when one is configured. Reads go local first, then remote (an entry found there is
//! checked and copied into the local folder before it is used); writes go local first,
//! then are shared with the remote.

use std::fmt;
use std::io::{self, Write};
use std::sync::Arc;

use super::{Entry, LocalStore, Store, StoreError};
use crate::codec::{Payload, Reads};
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
}

impl fmt::Debug for Layered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layered")
            .field("local", &self.local.root())
            .field("remote", &self.remote.as_ref().map(|r| r.location()))
            .finish()
    }
}

impl Layered {
    /// The local folder alone.
    #[must_use]
    pub fn new(local: LocalStore) -> Layered {
        Layered {
            local,
            remote: None,
        }
    }

    /// With `remote` behind the local folder.
    #[must_use]
    pub fn with_remote(mut self, remote: Arc<dyn Store>) -> Layered {
        self.remote = Some(remote);
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
        match remote.lookup(stage, key) {
            Ok(Some(entry)) if entry.key == *key && entry.stage() == stage => {
                Some((entry, Found::Remote))
            }
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(error = %e, "remote lookup failed");
                None
            }
        }
    }

    /// Reads the payload of `entry` as `reads` asks, every byte checked before `f` sees
    /// it. A remote entry's payload is fetched, checked and kept in the local folder first.
    ///
    /// # Errors
    /// When the payload cannot be read or fetched, or does not match its entry.
    pub fn with_payload<R>(
        &self,
        entry: &Entry,
        found: Found,
        reads: Reads,
        f: impl FnOnce(Payload) -> R,
    ) -> io::Result<R> {
        if found == Found::Remote {
            self.fetch(entry)?;
        }
        self.local.with_payload(entry, reads, f)
    }

    /// Copies a remote entry into the local folder: payload (checked), then metadata.
    fn fetch(&self, entry: &Entry) -> io::Result<()> {
        let remote = self
            .remote
            .as_ref()
            .ok_or_else(|| io::Error::other("no remote store"))?;
        let bytes = remote.read(entry).map_err(to_io)?;
        entry.check(&bytes)?;
        let (tmp, mut file) = self.local.temporary_for(entry)?;
        let written = file.write_all(&bytes).and_then(|()| file.sync_all());
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        self.local.commit(entry, &tmp)
    }

    /// An entry was committed in the local folder: shares it with the remote store.
    pub fn share(&self, entry: &Entry) {
        let Some(remote) = &self.remote else {
            return;
        };
        let payload = self.local.payload_path(entry);
        if let Err(e) = remote.put(entry, &payload) {
            tracing::debug!(error = %e, "remote upload failed");
        }
    }
}

fn to_io(e: StoreError) -> io::Error {
    match e {
        StoreError::Io(e) => e,
        StoreError::Damaged(what) => io::Error::new(io::ErrorKind::InvalidData, what),
        other => io::Error::other(other),
    }
}

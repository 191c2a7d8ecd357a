//! A wrapper that only reads: for a CI job that must not write what others will trust.

use std::io::Write;
use std::path::Path;

use bytes::Bytes;

use super::{Entry, Listed, Put, Store, StoreError};
use crate::key::Digest;

/// Wraps `S`: reads pass through, writes are refused with [`StoreError::ReadOnly`].
#[derive(Debug)]
pub struct ReadOnly<S> {
    inner: S,
}

impl<S: Store> ReadOnly<S> {
    /// `inner`, read only.
    pub fn new(inner: S) -> ReadOnly<S> {
        ReadOnly { inner }
    }

    fn refused<T>(&self) -> Result<T, StoreError> {
        Err(StoreError::ReadOnly {
            location: self.inner.location(),
        })
    }
}

impl<S: Store> Store for ReadOnly<S> {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn lookup(&self, stage: &str, key: &Digest) -> Result<Option<Entry>, StoreError> {
        self.inner.lookup(stage, key)
    }

    fn read(&self, entry: &Entry) -> Result<Bytes, StoreError> {
        self.inner.read(entry)
    }

    fn read_into(&self, entry: &Entry, out: &mut dyn Write) -> Result<(), StoreError> {
        self.inner.read_into(entry, out)
    }

    fn put(&self, _: &Entry, _: &Path) -> Result<Put, StoreError> {
        self.refused()
    }

    fn list(&self, stage: Option<&str>) -> Result<Vec<Listed>, StoreError> {
        self.inner.list(stage)
    }

    fn remove(&self, _: &str, _: &Digest, _: bool) -> Result<(), StoreError> {
        self.refused()
    }

    fn get_record(&self, name: &str) -> Result<Option<Bytes>, StoreError> {
        self.inner.get_record(name)
    }

    fn put_record(&self, _: &str, _: &[u8]) -> Result<(), StoreError> {
        self.refused()
    }

    fn list_records(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list_records(prefix)
    }

    fn writable(&self) -> bool {
        false
    }

    fn probe(&self) -> Result<(), StoreError> {
        self.inner.probe()
    }

    fn failure(&self) -> Option<String> {
        self.inner.failure()
    }
}

//! A wrapper that stops using a store after it fails: a cache that cannot be reached costs
//! one failed request per process run, not one per stage, and says so once.

use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use bytes::Bytes;

use super::{Entry, Listed, Put, Store, StoreError};
use crate::key::Digest;

/// Wraps `S`: after a read fails for want of the store (unreachable, refusing, silent),
/// every later call fails at once; after a write fails, every later write does. Each
/// warns once. A missing or damaged entry is not a failure of the store.
#[derive(Debug)]
pub struct Breaker<S> {
    inner: S,
    reads: OnceLock<String>,
    writes: OnceLock<String>,
}

impl<S: Store> Breaker<S> {
    /// `inner`, not failed yet.
    pub fn new(inner: S) -> Breaker<S> {
        Breaker {
            inner,
            reads: OnceLock::new(),
            writes: OnceLock::new(),
        }
    }

    fn skipped(&self, why: &str) -> StoreError {
        StoreError::Unavailable {
            location: self.inner.location(),
            source: format!("skipped after an earlier failure: {why}").into(),
        }
    }

    fn read<T>(&self, op: impl FnOnce(&S) -> Result<T, StoreError>) -> Result<T, StoreError> {
        if let Some(why) = self.reads.get() {
            return Err(self.skipped(why));
        }
        let result = op(&self.inner);
        if let Err(e @ StoreError::Unavailable { .. }) = &result {
            let why = e.to_string();
            if self.reads.set(why.clone()).is_ok() {
                let _ = self.writes.set(why);
                crate::error::warn(&format!(
                    "remote cache {e}: it is skipped for the rest of this run; stages are \
                     computed here and kept in the local cache"
                ));
            }
        }
        result
    }

    fn write<T>(&self, op: impl FnOnce(&S) -> Result<T, StoreError>) -> Result<T, StoreError> {
        if let Some(why) = self.writes.get() {
            return Err(self.skipped(why));
        }
        let result = op(&self.inner);
        if let Err(e @ StoreError::Unavailable { .. }) = &result
            && self.writes.set(e.to_string()).is_ok()
        {
            crate::error::warn(&format!(
                "remote cache {e}: nothing more is uploaded in this run; new entries stay \
                 in the local cache (`stage push` uploads them later)"
            ));
        }
        result
    }
}

impl<S: Store> Store for Breaker<S> {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn lookup(&self, stage: &str, key: &Digest) -> Result<Option<Entry>, StoreError> {
        self.read(|s| s.lookup(stage, key))
    }

    fn read(&self, entry: &Entry) -> Result<Bytes, StoreError> {
        self.read(|s| s.read(entry))
    }

    fn read_into(&self, entry: &Entry, out: &mut dyn Write) -> Result<(), StoreError> {
        self.read(|s| s.read_into(entry, out))
    }

    fn put(&self, entry: &Entry, payload: &Path) -> Result<Put, StoreError> {
        self.write(|s| s.put(entry, payload))
    }

    fn list(&self, stage: Option<&str>) -> Result<Vec<Listed>, StoreError> {
        self.read(|s| s.list(stage))
    }

    fn remove(&self, stage: &str, key: &Digest, whole: bool) -> Result<(), StoreError> {
        self.write(|s| s.remove(stage, key, whole))
    }

    fn get_record(&self, name: &str) -> Result<Option<Bytes>, StoreError> {
        self.read(|s| s.get_record(name))
    }

    fn put_record(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.write(|s| s.put_record(name, bytes))
    }

    fn list_records(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.read(|s| s.list_records(prefix))
    }

    fn writable(&self) -> bool {
        self.inner.writable()
    }

    fn probe(&self) -> Result<(), StoreError> {
        self.read(Store::probe)
    }

    fn failure(&self) -> Option<String> {
        self.reads.get().cloned()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A store that cannot be reached, counting the requests it is sent.
    #[derive(Debug, Default)]
    struct Down(AtomicUsize);

    impl Down {
        fn fail<T>(&self) -> Result<T, StoreError> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Err(StoreError::Unavailable {
                location: "down".into(),
                source: "connection refused".into(),
            })
        }
    }

    impl Store for Down {
        fn location(&self) -> String {
            "down".into()
        }
        fn lookup(&self, _: &str, _: &Digest) -> Result<Option<Entry>, StoreError> {
            self.fail()
        }
        fn read(&self, _: &Entry) -> Result<Bytes, StoreError> {
            self.fail()
        }
        fn put(&self, _: &Entry, _: &Path) -> Result<Put, StoreError> {
            self.fail()
        }
        fn list(&self, _: Option<&str>) -> Result<Vec<Listed>, StoreError> {
            self.fail()
        }
        fn remove(&self, _: &str, _: &Digest, _: bool) -> Result<(), StoreError> {
            self.fail()
        }
        fn get_record(&self, _: &str) -> Result<Option<Bytes>, StoreError> {
            self.fail()
        }
        fn put_record(&self, _: &str, _: &[u8]) -> Result<(), StoreError> {
            self.fail()
        }
        fn list_records(&self, _: &str) -> Result<Vec<String>, StoreError> {
            self.fail()
        }
    }

    #[test]
    fn a_failed_read_stops_every_later_request() {
        let breaker = Breaker::new(Down::default());
        assert!(breaker.failure().is_none());
        for _ in 0..10 {
            assert!(breaker.lookup("s", &Digest::of(b"k")).is_err());
            assert!(breaker.put_record("r", b"").is_err());
        }
        assert_eq!(breaker.inner.0.load(Ordering::Relaxed), 1);
        assert!(breaker.failure().is_some_and(|why| why.contains("refused")));
    }

    #[test]
    fn a_failed_write_stops_writes_only() {
        let breaker = Breaker::new(Down::default());
        for _ in 0..10 {
            assert!(breaker.put_record("r", b"").is_err());
        }
        assert_eq!(breaker.inner.0.load(Ordering::Relaxed), 1);
        assert!(breaker.failure().is_none());
        assert!(breaker.get_record("r").is_err());
        assert_eq!(breaker.inner.0.load(Ordering::Relaxed), 2);
    }
}

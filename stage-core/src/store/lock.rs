//! Per-key locks, so that two threads or processes sharing a cache never compute one key
//! twice.

use std::collections::HashSet;
use std::fs::{self, File};
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};

use super::LocalStore;
use crate::key::Digest;

impl LocalStore {
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

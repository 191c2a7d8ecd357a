//! Writing files so that a reader sees all of one or none of it: a temporary file in the
//! same folder, synced, then renamed into place.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Temporary files, which readers ignore, start with this.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

/// A new temporary file in `dir`, named so that no other writer picks the same name.
pub(crate) fn temporary(dir: &Path) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("{TEMP_PREFIX}{}-{n}-{nanos}", std::process::id()));
    let file = File::options().write(true).create_new(true).open(&path)?;
    Ok((path, file))
}

/// Renames `tmp` to `to`, removing `tmp` when that fails.
pub(crate) fn publish(tmp: &Path, to: &Path) -> io::Result<()> {
    fs::rename(tmp, to).inspect_err(|_| {
        let _ = fs::remove_file(tmp);
    })
}

/// Writes `bytes` to `to` atomically: a synced temporary file renamed into place.
pub(crate) fn write_atomic(to: &Path, bytes: &[u8]) -> io::Result<()> {
    write_whole(to, bytes, true)
}

/// Writes `bytes` to `to` atomically: a temporary file (synced when `sync`) renamed into
/// place.
pub(crate) fn write_whole(to: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    let dir = to.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let (tmp, mut file) = temporary(dir)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| if sync { file.sync_all() } else { Ok(()) })
        .and_then(|()| publish(&tmp, to));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Syncs a folder, so that the names just renamed into it survive a crash.
#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(not(unix))]
pub(crate) fn sync_dir(_: &Path) {}

/// A temporary file older than this belongs to a writer that is gone.
pub(crate) const STALE: Duration = Duration::from_secs(3600);

/// Removes the temporary files of writers that were killed: older than [`STALE`], nobody
/// writes them. Each folder is swept once per process: a folder of many entries is not
/// listed again for each one written.
pub(crate) fn remove_stale_temporaries(dir: &Path) {
    static SWEPT: LazyLock<Mutex<HashSet<PathBuf>>> = LazyLock::new(Mutex::default);
    if let Ok(mut swept) = SWEPT.lock()
        && !swept.insert(dir.to_path_buf())
    {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.filter_map(Result::ok) {
        let stale = entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX)
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > STALE);
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    ms_since_epoch(SystemTime::now())
}

/// Milliseconds from the Unix epoch to `time`.
pub(crate) fn ms_since_epoch(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

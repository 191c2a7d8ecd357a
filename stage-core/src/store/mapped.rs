//! Payload files mapped into memory: the one place `stage` uses `unsafe`.
//!
//! A hit of a large payload checks it whole, then decodes it. Mapped, its pages are hashed
//! and read where the operating system caches them, with no copy into a buffer of ours
//! (for `Reads::Map`, Arrow IPC, the arrays of the value then point into the mapping).

use std::fs::File;
use std::io;

use bytes::Bytes;

/// Below this many bytes a payload is read: mapping it costs more than a copy.
pub(crate) const MAP_MIN: u64 = 4 << 20;

/// The whole payload file `file`, mapped read-only.
///
/// # Errors
/// When the file cannot be mapped.
#[allow(
    unsafe_code,
    reason = "a mapped file is read in place; see the safety note"
)]
pub(crate) fn map(file: &File) -> io::Result<Bytes> {
    // SAFETY: `Mmap::map` is unsafe because the bytes of a mapping change, or their pages
    // vanish (SIGBUS), if another process writes or truncates the file in place while it is
    // mapped. `stage` never does: a payload is written to a new temporary file, synced,
    // renamed into place and never opened for writing again; `stage gc` and `stage verify
    // --remove` unlink files, which leaves a mapping intact. The mapping is read-only and
    // private. What a process outside `stage` may do to a payload file it does not own is
    // stated in the README's Guarantees.
    let map = unsafe { memmap2::MmapOptions::new().map_copy_read_only(file)? };
    Ok(Bytes::from_owner(map))
}

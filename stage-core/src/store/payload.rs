//! The writer a codec encodes a payload into: buffered, hashed and written on a thread of
//! its own while the codec goes on encoding.

use std::fs::File;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::checksum::{Checksum, SegmentHasher};

/// Where a codec writes a payload. Writes fill a buffer; each full buffer goes to a
/// thread of its own that hashes it and writes it to the file while the codec goes on
/// encoding. A payload that fits in one buffer never starts that thread.
///
/// Writes never fail: an error of the file is kept and returned when the payload is
/// finished, while hashing goes on, so that a payload that could not be saved still has
/// its digest. A codec's many small writes then compile to a copy and a length check,
/// with no error path.
#[derive(Debug)]
pub struct PayloadWriter {
    buf: Vec<u8>,
    sink: Sink,
    sync: bool,
}

#[derive(Debug)]
enum Sink {
    /// Nothing sent yet: the file is here.
    Here(Box<Output>),
    /// Full buffers go to the writing thread; emptied ones come back.
    Behind {
        full: SyncSender<Vec<u8>>,
        empty: Receiver<Vec<u8>>,
        thread: JoinHandle<Option<Output>>,
    },
    /// Between states, and after a panic of the writing thread.
    Gone,
}

/// Where a payload goes, with what has been written.
#[derive(Debug)]
struct Output {
    target: Target,
    hasher: SegmentHasher,
    bytes: u64,
    error: Option<io::Error>,
}

#[derive(Debug)]
enum Target {
    File(File),
    Memory(Vec<u8>),
    /// Nowhere: the payload is only hashed.
    Hash,
}

/// What writing a payload gave: its size and checksum, and whether it reached the file.
#[derive(Debug)]
pub(crate) struct Written {
    pub bytes: u64,
    pub checksum: Checksum,
    /// The first error of the file (or of syncing it), if any.
    pub saved: io::Result<()>,
    /// The payload, for a writer to memory.
    pub memory: Option<Vec<u8>>,
}

/// Bytes per buffer.
const BUFFER: usize = 1 << 20;

impl Output {
    fn put(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.bytes += data.len() as u64;
        match &mut self.target {
            Target::File(file) if self.error.is_none() => {
                if let Err(e) = file.write_all(data) {
                    self.error = Some(e);
                }
            }
            Target::Memory(out) => out.extend_from_slice(data),
            Target::File(_) | Target::Hash => {}
        }
    }
}

impl PayloadWriter {
    pub(crate) fn new(file: File) -> PayloadWriter {
        PayloadWriter::to(Target::File(file))
    }

    /// A writer that keeps the payload in memory, for a small entry written whole.
    pub(crate) fn memory() -> PayloadWriter {
        PayloadWriter::to(Target::Memory(Vec::new()))
    }

    /// A writer whose file is not synced when it is finished: for entries whose loss in a
    /// power failure costs a recompute and nothing else (their checksum catches it).
    pub(crate) fn unsynced(file: File) -> PayloadWriter {
        let mut writer = PayloadWriter::to(Target::File(file));
        writer.sync = false;
        writer
    }

    /// A writer that only hashes: for a payload that cannot be saved, whose digest
    /// descendants' keys still need.
    pub(crate) fn hash_only() -> PayloadWriter {
        PayloadWriter::to(Target::Hash)
    }

    fn to(target: Target) -> PayloadWriter {
        PayloadWriter {
            sync: true,
            buf: Vec::with_capacity(BUFFER),
            sink: Sink::Here(Box::new(Output {
                target,
                hasher: SegmentHasher::new(),
                bytes: 0,
                error: None,
            })),
        }
    }

    /// Appends `data` to the payload.
    #[inline]
    pub fn push(&mut self, data: &[u8]) {
        // Against the capacity, so that the compiler drops `extend_from_slice`'s own
        // check.
        if data.len() < self.buf.capacity() - self.buf.len() {
            self.buf.extend_from_slice(data);
        } else {
            self.push_slow(data);
        }
    }

    #[cold]
    #[inline(never)]
    fn push_slow(&mut self, mut data: &[u8]) {
        self.buf.reserve(BUFFER.saturating_sub(self.buf.capacity()));
        while !data.is_empty() {
            let room = self.buf.capacity() - self.buf.len();
            let (now, later) = data.split_at(room.min(data.len()));
            self.buf.extend_from_slice(now);
            data = later;
            if self.buf.len() == self.buf.capacity() {
                self.send();
            }
        }
    }

    /// Hands the full buffer to the writing thread, starting it if need be (or, when no
    /// thread can be started, writes it here).
    fn send(&mut self) {
        self.start();
        match &mut self.sink {
            Sink::Here(out) => {
                out.put(&self.buf);
                self.buf.clear();
            }
            Sink::Behind { full, empty, .. } => {
                let next = empty
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(BUFFER));
                let buf = std::mem::replace(&mut self.buf, next);
                if full.send(buf).is_err() {
                    // The thread panicked; `finish` reports it.
                    self.sink = Sink::Gone;
                }
            }
            Sink::Gone => self.buf.clear(),
        }
    }

    /// Starts the writing thread, unless it runs already; when no thread can be started,
    /// the payload is written on this one.
    fn start(&mut self) {
        if !matches!(self.sink, Sink::Here(_)) {
            return;
        }
        let (full, to_write) = sync_channel::<Vec<u8>>(2);
        let (give_back, empty) = sync_channel::<Vec<u8>>(4);
        let (hand_over, take_over) = sync_channel::<Box<Output>>(1);
        let spawned = std::thread::Builder::new()
            .name("stage-writer".into())
            .spawn(move || {
                let mut out = take_over.recv().ok()?;
                for mut buf in to_write {
                    out.put(&buf);
                    buf.clear();
                    let _ = give_back.try_send(buf);
                }
                Some(*out)
            });
        let Ok(thread) = spawned else {
            return;
        };
        let Sink::Here(out) = std::mem::replace(&mut self.sink, Sink::Gone) else {
            unreachable!("matched above");
        };
        if hand_over.send(out).is_ok() {
            self.sink = Sink::Behind {
                full,
                empty,
                thread,
            };
        }
    }

    /// Writes what is left, waits for the file to be on disk, and gives the payload's
    /// size, checksum, and whether it reached the file.
    ///
    /// # Errors
    /// When the writing thread could not run: then not even the checksum is known.
    pub(crate) fn finish(mut self) -> io::Result<Written> {
        let buf = std::mem::take(&mut self.buf);
        let mut out = match std::mem::replace(&mut self.sink, Sink::Gone) {
            Sink::Here(mut out) => {
                out.put(&buf);
                *out
            }
            Sink::Behind { full, thread, .. } => {
                let sent = full.send(buf);
                drop(full);
                let out = join(thread)?;
                sent.map_err(|_| stopped())?;
                out
            }
            Sink::Gone => return Err(stopped()),
        };
        let (saved, memory) = match (out.error.take(), out.target) {
            (Some(e), _) => (Err(e), None),
            (None, Target::File(file)) if self.sync => (file.sync_all(), None),
            (None, Target::File(_)) => (Ok(()), None),
            (None, Target::Memory(bytes)) => (Ok(()), Some(bytes)),
            (None, Target::Hash) => (Err(io::Error::other("the payload was only hashed")), None),
        };
        Ok(Written {
            bytes: out.bytes,
            checksum: out.hasher.finish(),
            saved,
            memory,
        })
    }
}

fn stopped() -> io::Error {
    io::Error::other("the payload writer stopped")
}

fn join(thread: JoinHandle<Option<Output>>) -> io::Result<Output> {
    thread
        .join()
        .map_err(|_| io::Error::other("the payload writer panicked"))?
        .ok_or_else(stopped)
}

impl Drop for PayloadWriter {
    fn drop(&mut self) {
        // An abandoned payload: stop the thread before its file is removed.
        if let Sink::Behind { full, thread, .. } = std::mem::replace(&mut self.sink, Sink::Gone) {
            drop(full);
            let _ = thread.join();
        }
    }
}

// Codecs write a field at a time from the user's crate: these must inline there.
impl Write for PayloadWriter {
    #[inline]
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.push(data);
        Ok(data.len())
    }

    #[inline]
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.push(data);
        Ok(())
    }

    /// Nothing to do: the payload reaches the disk when its entry is committed.
    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Digest;

    fn written(pieces: &[&[u8]]) -> (Vec<u8>, u64, Checksum) {
        let mut file = tempfile::tempfile().unwrap();
        let mut w = PayloadWriter::new(file.try_clone().unwrap());
        for piece in pieces {
            w.write_all(piece).unwrap();
        }
        let written = w.finish().unwrap();
        written.saved.unwrap();
        let (bytes, sum) = (written.bytes, written.checksum);
        let mut back = Vec::new();
        io::Seek::rewind(&mut file).unwrap();
        io::Read::read_to_end(&mut file, &mut back).unwrap();
        (back, bytes, sum)
    }

    #[test]
    fn small_and_large_writes_reach_the_file_in_order() {
        let data: Vec<u8> = (0..3 * BUFFER + 12_345)
            .map(|i| u8::try_from(i % 253).unwrap())
            .collect();
        let (small, rest) = data.split_at(BUFFER - 3);
        let (large, tail) = rest.split_at(2 * BUFFER + 7);
        let mut pieces: Vec<&[u8]> = small.chunks(1000).collect();
        pieces.push(large);
        pieces.extend(tail.chunks(1));
        let (back, bytes, sum) = written(&pieces);
        assert_eq!(back, data);
        assert_eq!(bytes, data.len() as u64);
        assert_eq!(sum.blake3, Digest::of(&data));
        assert_eq!(sum.segments.len(), data.len().div_ceil(1 << 20));
    }

    #[test]
    fn a_payload_in_one_buffer_is_written_without_a_thread() {
        let (back, bytes, sum) = written(&[b"one", b"two"]);
        assert_eq!(back, b"onetwo");
        assert_eq!(bytes, 6);
        assert_eq!(sum.blake3, Digest::of(b"onetwo"));
        assert!(sum.segments.is_empty());
        let (back, _, sum) = written(&[]);
        assert!(back.is_empty());
        assert_eq!(sum.blake3, Digest::of(b""));
    }

    #[test]
    fn a_write_error_is_returned_when_the_payload_is_finished() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("payload");
        File::create(&path).unwrap();
        let mut w = PayloadWriter::new(File::open(&path).unwrap());
        for _ in 0..3 {
            w.write_all(&vec![7; BUFFER]).unwrap();
        }
        let written = w.finish().unwrap();
        assert!(written.saved.is_err());
        assert_eq!(written.bytes, 3 * BUFFER as u64);
        assert_eq!(written.checksum.blake3, Digest::of(&vec![7; 3 * BUFFER]));
    }

    #[test]
    fn a_payload_only_hashed_has_its_digest() {
        let mut w = PayloadWriter::hash_only();
        w.write_all(b"abc").unwrap();
        let written = w.finish().unwrap();
        assert!(written.saved.is_err());
        assert_eq!(written.checksum.blake3, Digest::of(b"abc"));
    }
}

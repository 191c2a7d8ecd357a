//! What a decoder is handed: a payload's bytes, checked before the decoder sees them.

use std::fs::File;
use std::io::{self, BufRead, Read};
use std::sync::mpsc::{Receiver, SyncSender};

use bytes::Bytes;

/// How a [`Codec`](super::Codec) reads its payloads back; the store checks the bytes the
/// way that suits it, and never hands a decoder a byte it has not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// The whole payload in one buffer, checked before the decoder starts. For formats that
    /// use the bytes in place (Arrow IPC) or need them all at once.
    Whole,
    /// Front to back: another thread reads and checks the payload a segment ahead of the
    /// decoder, so a hit costs the decode rather than the decode plus the hash.
    Stream,
    /// An open file, checked whole before the decoder starts, which then reads the parts it
    /// needs: for large payloads whose decoder should not hold all of them in memory.
    File,
    /// The whole payload as [`Reads::Whole`] gives it, but a large one is the file mapped
    /// into memory rather than a copy: for formats whose values keep using the bytes in
    /// place (Arrow IPC), so that a hit costs its checksum and nothing else.
    Map,
}

/// A payload handed to [`Codec::decode`](super::Codec::decode).
///
/// From the cache, its bytes are exactly what [`Codec::encode`](super::Codec::encode)
/// wrote: the store checked them against the entry's size and blake3 (or checks each
/// segment before the decoder reaches it). [`Payload::unchecked`] makes one from bytes of
/// any origin, which a decoder must survive without a panic.
///
/// ```
/// use std::io::Read;
/// let payload = stage_core::Payload::unchecked(&b"hello"[..]);
/// assert!(!payload.is_checked());
/// let mut text = String::new();
/// payload.into_reader().read_to_string(&mut text).unwrap();
/// assert_eq!(text, "hello");
/// ```
#[derive(Debug)]
pub struct Payload {
    len: u64,
    checked: bool,
    source: Source,
}

#[derive(Debug)]
enum Source {
    Bytes(Bytes),
    Segments(Segments),
    File(File),
}

impl Payload {
    /// A payload of unknown origin: a decoder may not rely on its bytes.
    pub fn unchecked(bytes: impl Into<Bytes>) -> Payload {
        let bytes = bytes.into();
        Payload {
            len: bytes.len() as u64,
            checked: false,
            source: Source::Bytes(bytes),
        }
    }

    /// A whole payload whose size and blake3 matched its entry.
    pub(crate) fn checked(bytes: Bytes) -> Payload {
        Payload {
            checked: true,
            ..Payload::unchecked(bytes)
        }
    }

    /// A payload read and checked segment by segment as the decoder goes.
    pub(crate) fn checked_segments(segments: Segments) -> Payload {
        Payload {
            len: segments.len,
            checked: true,
            source: Source::Segments(segments),
        }
    }

    /// An open payload file of `len` bytes whose content matched its entry.
    pub(crate) fn checked_file(file: File, len: u64) -> Payload {
        Payload {
            len,
            checked: true,
            source: Source::File(file),
        }
    }

    /// The payload's length in bytes.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the payload is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the bytes were checked against the entry that names them: exactly what the
    /// codec wrote. A decoder may then skip the bounds that bytes of unknown origin need.
    #[must_use]
    pub fn is_checked(&self) -> bool {
        self.checked
    }

    /// The whole payload in one buffer (gathered, when it arrives in segments or a file).
    ///
    /// # Errors
    /// When a segment is damaged or the file cannot be read.
    pub fn into_bytes(self) -> io::Result<Bytes> {
        match self.source {
            Source::Bytes(bytes) => Ok(bytes),
            Source::Segments(segments) => Ok(Bytes::from(segments.into_whole()?)),
            Source::File(mut file) => {
                let mut buf = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
                file.read_to_end(&mut buf)?;
                Ok(Bytes::from(buf))
            }
        }
    }

    /// The payload front to back, as a buffered reader.
    #[must_use]
    pub fn into_reader(self) -> PayloadReader {
        let inner = match self.source {
            Source::Bytes(bytes) => Reader::Bytes(bytes),
            Source::Segments(segments) => Reader::Segments {
                segments,
                buf: Vec::new(),
                pos: 0,
            },
            Source::File(file) => Reader::File(io::BufReader::with_capacity(1 << 16, file)),
        };
        PayloadReader(inner)
    }

    /// The open payload file, when the payload arrives as one ([`Reads::File`]): its content
    /// was checked whole before the decoder got it, and it is positioned at its start.
    ///
    /// # Errors
    /// The payload itself when it does not arrive as a file.
    pub fn into_file(self) -> Result<File, Payload> {
        match self.source {
            Source::File(file) => Ok(file),
            source => Err(Payload { source, ..self }),
        }
    }

    /// The payload's checked segments, when it arrives that way.
    ///
    /// # Errors
    /// The payload itself when it does not.
    pub(crate) fn into_segments(self) -> Result<Segments, Payload> {
        match self.source {
            Source::Segments(segments) => Ok(segments),
            source => Err(Payload { source, ..self }),
        }
    }
}

/// A payload read front to back; see [`Payload::into_reader`].
#[derive(Debug)]
pub struct PayloadReader(Reader);

#[derive(Debug)]
enum Reader {
    Bytes(Bytes),
    Segments {
        segments: Segments,
        buf: Vec<u8>,
        pos: usize,
    },
    File(io::BufReader<File>),
}

impl Read for PayloadReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let here = self.fill_buf()?;
        let n = here.len().min(out.len());
        out[..n].copy_from_slice(&here[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for PayloadReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match &mut self.0 {
            Reader::Bytes(bytes) => Ok(&bytes[..]),
            Reader::Segments { segments, buf, pos } => {
                if *pos == buf.len()
                    && let Some(next) = segments.next_checked()?
                {
                    segments.recycle(std::mem::replace(buf, next));
                    *pos = 0;
                }
                Ok(&buf[*pos..])
            }
            Reader::File(file) => file.fill_buf(),
        }
    }

    fn consume(&mut self, n: usize) {
        match &mut self.0 {
            Reader::Bytes(bytes) => bytes::Buf::advance(bytes, n),
            Reader::Segments { pos, .. } => *pos += n,
            Reader::File(file) => file.consume(n),
        }
    }
}

/// The payload's bytes do not match its entry's checksum.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("payload checksum differs from its metadata")]
pub struct Damaged;

impl From<Damaged> for io::Error {
    fn from(damaged: Damaged) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, damaged)
    }
}

/// A payload's segments, each handed out once it has been checked against the entry's
/// metadata. Another thread reads and checks them a few segments ahead of the decoder; a
/// decoder never sees a byte that did not match.
#[derive(Debug)]
pub struct Segments {
    checked: Receiver<Result<Vec<u8>, Damaged>>,
    spare: SyncSender<Vec<u8>>,
    len: u64,
    received: u64,
}

impl Segments {
    /// Segments of a `len`-byte payload that arrive checked on `checked`; read buffers go
    /// back on `spare` to be filled again.
    pub(crate) fn new(
        checked: Receiver<Result<Vec<u8>, Damaged>>,
        spare: SyncSender<Vec<u8>>,
        len: u64,
    ) -> Segments {
        Segments {
            checked,
            spare,
            len,
            received: 0,
        }
    }

    /// The payload's length in bytes.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the payload is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The next checked segment, `None` after the last.
    ///
    /// # Errors
    /// When the segment does not match its checksum, or the payload ends early.
    pub fn next_checked(&mut self) -> Result<Option<Vec<u8>>, Damaged> {
        if self.received == self.len {
            return Ok(None);
        }
        let segment = self.checked.recv().map_err(|_| Damaged)??;
        self.received += segment.len() as u64;
        Ok(Some(segment))
    }

    /// Hands a read segment back, for the reader to fill again.
    pub fn recycle(&self, mut buf: Vec<u8>) {
        buf.clear();
        let _ = self.spare.try_send(buf);
    }

    /// The whole payload, once every segment is checked.
    ///
    /// # Errors
    /// When a segment does not match its checksum.
    pub fn into_whole(mut self) -> Result<Vec<u8>, Damaged> {
        let mut whole = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
        while let Some(segment) = self.next_checked()? {
            whole.extend_from_slice(&segment);
        }
        Ok(whole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_over_segments_reads_across_their_ends() {
        let (to, checked) = std::sync::mpsc::sync_channel(4);
        let (spare, _spares) = std::sync::mpsc::sync_channel(4);
        to.send(Ok(b"hel".to_vec())).unwrap();
        to.send(Ok(b"lo ".to_vec())).unwrap();
        to.send(Ok(b"world".to_vec())).unwrap();
        let payload = Payload::checked_segments(Segments::new(checked, spare, 11));
        let mut text = String::new();
        payload.into_reader().read_to_string(&mut text).unwrap();
        assert_eq!(text, "hello world");
    }

    #[test]
    fn a_damaged_segment_is_a_read_error() {
        let (to, checked) = std::sync::mpsc::sync_channel(4);
        let (spare, _spares) = std::sync::mpsc::sync_channel(4);
        to.send(Ok(b"abc".to_vec())).unwrap();
        to.send(Err(Damaged)).unwrap();
        let payload = Payload::checked_segments(Segments::new(checked, spare, 6));
        let mut out = Vec::new();
        let err = payload.into_reader().read_to_end(&mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}

//! Payload checksums that can be checked front to back while a decoder reads.
//!
//! A payload's checksum is its plain blake3. Beside it, an entry keeps the blake3 chaining
//! values of the payload's segments: aligned power-of-two ranges that are subtrees of
//! blake3's own tree, so they merge to exactly the whole payload's blake3. A reader checks
//! the segments in order on one thread while a decoder on another reads only the part
//! already checked: a hit pays for decoding, not for decoding plus hashing, and no decoder
//! ever sees a byte that did not match.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::sync::mpsc::sync_channel;

use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, left_subtree_len, merge_subtrees_non_root, merge_subtrees_root,
};

use crate::codec::{Damaged, Segments};
use crate::key::Digest;

/// The shortest segment, and the length segments are hashed in as a payload is written.
const SEGMENT: u64 = 1 << 20;

/// Segments an entry keeps at most: longer payloads have longer segments, so metadata stays
/// small (64 KiB of hex at most).
const MAX_SEGMENTS: usize = 1024;

/// What writing a payload gives, for its entry to keep: how a reader checks it later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checksum {
    /// blake3 of the whole payload.
    pub blake3: Digest,
    /// Chaining values of its segments, in order; empty for a payload of one segment.
    pub segments: Vec<Digest>,
}

/// Hashes a payload as it is written: one pass gives its blake3 and its segments.
#[derive(Debug)]
pub(crate) struct SegmentHasher {
    current: blake3::Hasher,
    /// Bytes in the current segment.
    filled: u64,
    /// Where the current segment starts.
    offset: u64,
    done: Vec<ChainingValue>,
}

impl SegmentHasher {
    pub(crate) fn new() -> SegmentHasher {
        SegmentHasher {
            current: blake3::Hasher::new(),
            filled: 0,
            offset: 0,
            done: Vec::new(),
        }
    }

    pub(crate) fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.filled == SEGMENT {
                // A segment is closed only once a byte follows it: a payload of exactly
                // one segment is hashed as a root.
                self.done.push(self.current.finalize_non_root());
                self.offset += SEGMENT;
                self.filled = 0;
                self.current = blake3::Hasher::new();
                self.current.set_input_offset(self.offset);
            }
            let room = usize::try_from(SEGMENT - self.filled).unwrap_or(usize::MAX);
            let (now, later) = data.split_at(room.min(data.len()));
            self.current.update(now);
            self.filled += now.len() as u64;
            data = later;
        }
    }

    pub(crate) fn finish(mut self) -> Checksum {
        if self.done.is_empty() {
            return Checksum {
                blake3: self.current.finalize().into(),
                segments: Vec::new(),
            };
        }
        self.done.push(self.current.finalize_non_root());
        let len = self.offset + self.filled;
        let blake3 = root(&self.done, SEGMENT, len).unwrap_or_default();
        let segments = coarsen(self.done, MAX_SEGMENTS);
        Checksum {
            blake3,
            segments: segments.into_iter().map(Digest).collect(),
        }
    }
}

/// Merges neighbouring segments until at most `max` are left; each pass doubles their
/// length. Two aligned neighbours form a subtree, and so does a lone last segment.
fn coarsen(mut cvs: Vec<ChainingValue>, max: usize) -> Vec<ChainingValue> {
    while cvs.len() > max {
        cvs = cvs
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => merge_subtrees_non_root(left, right, Mode::Hash),
                [last] => *last,
                _ => unreachable!("chunks(2) yields one or two"),
            })
            .collect();
    }
    cvs
}

/// The segment length that cuts `len` bytes into `count` segments, if one does.
fn segment_len(len: u64, count: usize) -> Option<u64> {
    let mut seg = SEGMENT;
    while len.div_ceil(seg) > count as u64 {
        seg = seg.checked_mul(2)?;
    }
    (len.div_ceil(seg) == count as u64).then_some(seg)
}

/// The chaining value of the subtree made of `cvs`, segments of `seg` bytes covering `len`.
fn subtree(cvs: &[ChainingValue], seg: u64, len: u64) -> Option<ChainingValue> {
    if let [one] = cvs {
        return Some(*one);
    }
    let (left, right, left_len) = split(cvs, seg, len)?;
    Some(merge_subtrees_non_root(
        &subtree(left, seg, left_len)?,
        &subtree(right, seg, len - left_len)?,
        Mode::Hash,
    ))
}

/// The blake3 of a payload of `len` bytes from its segments (two or more).
fn root(cvs: &[ChainingValue], seg: u64, len: u64) -> Option<Digest> {
    let (left, right, left_len) = split(cvs, seg, len)?;
    let hash = merge_subtrees_root(
        &subtree(left, seg, left_len)?,
        &subtree(right, seg, len - left_len)?,
        Mode::Hash,
    );
    Some(hash.into())
}

/// Splits segments the way blake3's tree splits their bytes.
#[allow(clippy::type_complexity, reason = "a private helper's tuple")]
fn split(
    cvs: &[ChainingValue],
    seg: u64,
    len: u64,
) -> Option<(&[ChainingValue], &[ChainingValue], u64)> {
    let left_len = left_subtree_len(len);
    let n = usize::try_from(left_len / seg).ok()?;
    (left_len.is_multiple_of(seg) && n > 0 && n < cvs.len())
        .then(|| (&cvs[..n], &cvs[n..], left_len))
}

/// Segments read ahead of the decoder: enough to keep it busy, few enough to keep memory
/// small.
const AHEAD: usize = 3;

/// Starts checking the `len`-byte payload `file` against its `blake3` and `segments` on a
/// thread of `scope`; the decoder takes the checked segments from what this returns.
/// `None` when the payload is not kept in segments (one segment, or written before
/// segments were kept), or when `segments` cannot cut `len` bytes.
pub(crate) fn check_segments<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    mut file: impl Read + Send + 'scope,
    len: u64,
    blake3: Digest,
    segments: &[Digest],
) -> Option<Segments> {
    let cvs: Vec<ChainingValue> = segments.iter().map(|d| d.0).collect();
    let seg = segment_len(len, cvs.len()).filter(|_| cvs.len() > 1)?;
    let (to_decoder, checked) = sync_channel(AHEAD);
    let (spare, spares) = sync_channel::<Vec<u8>>(AHEAD + 2);
    scope.spawn(move || {
        if root(&cvs, seg, len) != Some(blake3) {
            let _ = to_decoder.send(Err(Damaged));
            return;
        }
        let step = usize::try_from(seg).unwrap_or(usize::MAX);
        for (i, expected) in cvs.iter().enumerate() {
            let mut buf = spares
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(step));
            let read = (&mut file).take(seg).read_to_end(&mut buf);
            let offset = i as u64 * seg;
            let want = seg.min(len - offset);
            let good = read.is_ok_and(|n| n as u64 == want) && {
                let mut hasher = blake3::Hasher::new();
                hasher.set_input_offset(offset);
                hasher.update(&buf);
                hasher.finalize_non_root() == *expected
            };
            let sent = to_decoder.send(if good { Ok(buf) } else { Err(Damaged) });
            if !good || sent.is_err() {
                return;
            }
        }
    });
    Some(Segments::new(checked, spare, len))
}

/// Bytes read at a time when a payload file is checked whole.
const CHUNK: usize = 4 << 20;

/// Checks the `len`-byte payload `file` against its `blake3` (hashing on every core), and
/// leaves the file at its start. A large file is mapped and hashed in place, then unmapped;
/// a small one is read a chunk at a time.
pub(crate) fn check_file(mut file: &File, len: u64, blake3: Digest) -> io::Result<()> {
    if len >= super::mapped::MAP_MIN
        && let Ok(bytes) = super::mapped::map(file)
    {
        if bytes.len() as u64 != len || !matches(&bytes, blake3) {
            return Err(Damaged.into());
        }
        return Ok(());
    }
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0; CHUNK];
    let mut seen = 0u64;
    loop {
        let n = read_full(&mut file, &mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update_rayon(&buf[..n]);
        seen += n as u64;
    }
    if seen != len || Digest::from(hasher.finalize()) != blake3 {
        return Err(Damaged.into());
    }
    file.rewind()
}

/// Fills `buf` as far as the file goes.
fn read_full(file: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Checks a whole payload against its `blake3` at once, hashing on every core.
pub(crate) fn matches(payload: &[u8], blake3: Digest) -> bool {
    let mut hasher = blake3::Hasher::new();
    hasher.update_rayon(payload);
    Digest::from(hasher.finalize()) == blake3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| u8::try_from(i * 31 % 251).unwrap())
            .collect()
    }

    fn written(data: &[u8], pieces: usize) -> Checksum {
        let mut h = SegmentHasher::new();
        for part in data.chunks(pieces.max(1)) {
            h.update(part);
        }
        h.finish()
    }

    const MIB: usize = 1 << 20;

    #[test]
    fn the_blake3_is_the_plain_hash_of_the_payload() {
        for len in [
            0,
            1,
            1024,
            MIB - 1,
            MIB,
            MIB + 1,
            2 * MIB,
            3 * MIB + 17,
            4 * MIB,
            5 * MIB - 3,
        ] {
            let data = payload(len);
            for pieces in [7, 4096, MIB + 3] {
                let sum = written(&data, pieces);
                assert_eq!(sum.blake3, Digest::of(&data), "len {len}, pieces {pieces}");
                let expected = if len > MIB { len.div_ceil(MIB) } else { 0 };
                assert_eq!(sum.segments.len(), expected, "len {len}");
            }
        }
    }

    /// The segments `check_segments` hands out for `data`, or where it stopped.
    fn read_back(data: &[u8], sum: &Checksum) -> Result<Vec<Vec<u8>>, (usize, Damaged)> {
        std::thread::scope(|s| {
            let mut segments =
                check_segments(s, data, data.len() as u64, sum.blake3, &sum.segments).unwrap();
            let mut out = Vec::new();
            loop {
                match segments.next_checked() {
                    Ok(Some(seg)) => out.push(seg),
                    Ok(None) => return Ok(out),
                    Err(e) => return Err((out.len(), e)),
                }
            }
        })
    }

    #[test]
    fn segments_are_handed_out_checked_and_stop_at_the_first_damage() {
        let data = payload(5 * MIB - 3);
        let sum = written(&data, 65_536);
        let segments = read_back(&data, &sum).unwrap();
        assert_eq!(
            segments.iter().map(Vec::len).collect::<Vec<_>>(),
            [MIB, MIB, MIB, MIB, MIB - 3]
        );
        assert_eq!(segments.concat(), data);
        for at in [0, MIB - 1, MIB, 3 * MIB + 5, data.len() - 1] {
            let mut bad = data.clone();
            bad[at] ^= 0x10;
            let stopped = read_back(&bad, &sum).unwrap_err().0;
            assert_eq!(stopped, at / MIB, "flip at {at}");
        }
        assert!(read_back(&data[..data.len() - 1], &sum).is_err());
        let mut swapped = sum.clone();
        swapped.segments.swap(0, 1);
        assert_eq!(read_back(&data, &swapped).unwrap_err().0, 0);
        let mut short = sum.clone();
        short.segments.pop();
        std::thread::scope(|s| {
            let len = data.len() as u64;
            assert!(check_segments(s, &data[..], len, short.blake3, &short.segments).is_none());
        });
    }

    #[test]
    fn coarser_segments_still_merge_to_the_payload_hash() {
        let data = payload(13 * MIB + 100);
        let fine = written(&data, MIB);
        let cvs: Vec<ChainingValue> = fine.segments.iter().map(|d| d.0).collect();
        for max in [8, 4, 3, 2] {
            let coarse = coarsen(cvs.clone(), max);
            assert!(coarse.len() <= max);
            let sum = Checksum {
                blake3: fine.blake3,
                segments: coarse.into_iter().map(Digest).collect(),
            };
            assert_eq!(read_back(&data, &sum).unwrap().concat(), data, "max {max}");
        }
    }
}

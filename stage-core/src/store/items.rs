//! The payload of a per-item stage's call: the list of its items, in order, each with the
//! element it is for and its output; small items' payloads kept inline, so that a call over
//! many small items reads one file.
//!
//! The list holds what the items *are* (labels, element identities, outputs), not their
//! keys: its digest, which descendants' keys take, changes only when an item's output does.

use bytes::{Buf, Bytes};

use crate::key::Digest;

/// Items whose payload is at most this long are kept inline in the list.
pub const INLINE_MAX: u64 = 16 << 10;

const MAGIC: &[u8; 8] = b"stageit1";

/// One item of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedItem {
    /// The element's relative path or index.
    pub label: String,
    /// What the item's key takes from its element.
    pub identity: Digest,
    /// The blake3 of the item's payload.
    pub output: Digest,
    /// The item's payload size.
    pub bytes: u64,
    /// The payload itself, when it is at most [`INLINE_MAX`] bytes.
    pub inline: Option<Bytes>,
}

/// Encodes a list of items.
#[must_use]
pub fn encode_items(files: bool, items: &[ListedItem]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + items.len() * 96);
    out.extend_from_slice(MAGIC);
    out.push(u8::from(files));
    out.extend_from_slice(&(items.len() as u64).to_le_bytes());
    for item in items {
        out.extend_from_slice(&(item.label.len() as u64).to_le_bytes());
        out.extend_from_slice(item.label.as_bytes());
        out.extend_from_slice(&item.identity.0);
        out.extend_from_slice(&item.output.0);
        out.extend_from_slice(&item.bytes.to_le_bytes());
        match &item.inline {
            Some(bytes) => {
                out.push(1);
                out.extend_from_slice(bytes);
            }
            None => out.push(0),
        }
    }
    out
}

/// Decodes a list of items: whether they are files, and the items; `None` for bytes that
/// are not such a list.
#[must_use]
pub fn decode_items(bytes: &Bytes) -> Option<(bool, Vec<ListedItem>)> {
    let mut buf = bytes.clone();
    if buf.len() < MAGIC.len() + 9 || &buf[..MAGIC.len()] != MAGIC {
        return None;
    }
    buf.advance(MAGIC.len());
    let files = match buf.get_u8() {
        0 => false,
        1 => true,
        _ => return None,
    };
    let count = usize::try_from(buf.get_u64_le()).ok()?;
    // Each item takes at least 81 bytes: a count beyond that is damage, not a size to
    // allocate.
    let mut items = Vec::with_capacity(count.min(buf.len() / 81));
    for _ in 0..count {
        let label = usize::try_from(take_u64(&mut buf)?).ok()?;
        let label = String::from_utf8(take(&mut buf, label)?.to_vec()).ok()?;
        let identity = take_digest(&mut buf)?;
        let output = take_digest(&mut buf)?;
        let size = take_u64(&mut buf)?;
        let inline = match take(&mut buf, 1)?[0] {
            0 => None,
            1 => Some(take(&mut buf, usize::try_from(size).ok()?)?),
            _ => return None,
        };
        items.push(ListedItem {
            label,
            identity,
            output,
            bytes: size,
            inline,
        });
    }
    buf.is_empty().then_some((files, items))
}

fn take(buf: &mut Bytes, n: usize) -> Option<Bytes> {
    (buf.len() >= n).then(|| buf.split_to(n))
}

fn take_u64(buf: &mut Bytes) -> Option<u64> {
    let bytes = take(buf, 8)?;
    Some(u64::from_le_bytes(bytes[..].try_into().ok()?))
}

fn take_digest(buf: &mut Bytes) -> Option<Digest> {
    let bytes = take(buf, 32)?;
    Some(Digest(bytes[..].try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Vec<ListedItem> {
        vec![
            ListedItem {
                label: "a/b.png".into(),
                identity: Digest([1; 32]),
                output: Digest([2; 32]),
                bytes: 3,
                inline: Some(Bytes::from_static(b"abc")),
            },
            ListedItem {
                label: "c.png".into(),
                identity: Digest([3; 32]),
                output: Digest([4; 32]),
                bytes: INLINE_MAX + 1,
                inline: None,
            },
        ]
    }

    #[test]
    fn a_list_round_trips_and_damage_is_no_list() {
        let bytes = Bytes::from(encode_items(true, &items()));
        assert_eq!(decode_items(&bytes), Some((true, items())));
        assert_eq!(
            decode_items(&Bytes::from(encode_items(false, &[]))),
            Some((false, vec![]))
        );
        for cut in 0..bytes.len() {
            assert_eq!(decode_items(&bytes.slice(..cut)), None, "cut at {cut}");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert_eq!(decode_items(&Bytes::from(longer)), None);
    }
}

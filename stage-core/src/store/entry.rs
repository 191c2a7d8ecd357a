//! An entry's metadata: what it is, how it was made, and its payload's checksum, as JSON
//! that carries a checksum of itself.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::key::{Digest, FORMAT, Ingredients};

/// The metadata of a cache entry: what it is, how it was made, and its payload's checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The entry's key.
    pub key: Digest,
    /// What the key was made of: provenance of the value.
    pub ingredients: Ingredients,
    /// The output type, as written in the stage.
    pub output: String,
    /// File name of the payload, in the stage's folder.
    pub payload: String,
    /// Size of the payload in bytes.
    pub bytes: u64,
    /// blake3 of the payload: the output digest that descendants' keys depend on.
    pub blake3: Digest,
    /// blake3 chaining values of the payload's segments, so that a reader can check it
    /// front to back while it decodes; empty for a payload of one segment (1 MiB or less).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<Digest>,
    /// When the entry was written (ms since the Unix epoch).
    pub created_ms: u64,
    /// How long the body took (ms).
    pub compute_ms: u64,
}

impl Entry {
    /// The stage the entry belongs to.
    #[must_use]
    pub fn stage(&self) -> &str {
        &self.ingredients.stage
    }

    /// The payload at `path`, whole and checked against this entry's size and blake3.
    ///
    /// # Errors
    /// When the payload cannot be read, or its size or checksum differs (`InvalidData`).
    pub fn read_payload(&self, path: &Path) -> io::Result<Bytes> {
        let mut file = self.open_payload(path)?;
        let mut buf = Vec::with_capacity(usize::try_from(self.bytes).unwrap_or(0));
        file.read_to_end(&mut buf)?;
        self.check(&buf)?;
        Ok(Bytes::from(buf))
    }

    /// Checks a whole payload against this entry's size and blake3.
    ///
    /// # Errors
    /// `InvalidData` when it differs.
    pub fn check(&self, payload: &[u8]) -> io::Result<()> {
        self.check_size(payload.len() as u64)?;
        if !super::checksum::matches(payload, self.blake3) {
            return Err(damaged("payload checksum differs from its metadata".into()));
        }
        Ok(())
    }

    /// The payload file at `path`, its size checked but not its content.
    pub(crate) fn open_payload(&self, path: &Path) -> io::Result<File> {
        let file = File::open(path)?;
        self.check_size(file.metadata()?.len())?;
        Ok(file)
    }

    pub(crate) fn check_size(&self, len: u64) -> io::Result<()> {
        if len == self.bytes {
            return Ok(());
        }
        Err(damaged(format!(
            "payload is {len} bytes, its metadata says {}",
            self.bytes
        )))
    }
}

pub(crate) fn damaged(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

#[derive(Serialize)]
struct MetaOut<'a> {
    format: u32,
    checksum: Digest,
    entry: &'a RawValue,
}

#[derive(Deserialize)]
struct MetaIn<'a> {
    format: u32,
    checksum: Digest,
    #[serde(borrow)]
    entry: &'a RawValue,
}

/// Encodes an entry's metadata file: JSON with a checksum over the entry's exact bytes.
///
/// # Errors
/// Never in practice: the entry is plain data.
pub fn encode_meta(entry: &Entry) -> Result<Vec<u8>, serde_json::Error> {
    let body = serde_json::to_string(entry)?;
    let raw = RawValue::from_string(body)?;
    let meta = MetaOut {
        format: FORMAT,
        checksum: Digest::of(raw.get().as_bytes()),
        entry: &raw,
    };
    serde_json::to_vec(&meta)
}

/// Decodes a metadata file; `None` for anything but an intact entry of this format.
#[must_use]
pub fn decode_meta(bytes: &[u8]) -> Option<Entry> {
    let meta: MetaIn<'_> = serde_json::from_slice(bytes).ok()?;
    if meta.format != FORMAT || Digest::of(meta.entry.get().as_bytes()) != meta.checksum {
        return None;
    }
    serde_json::from_str(meta.entry.get()).ok()
}

/// The format version a metadata file says it has, when it says one: an entry of another
/// version is not read, but tells why a stage recomputes.
#[must_use]
pub fn meta_format(bytes: &[u8]) -> Option<u32> {
    #[derive(Deserialize)]
    struct Format {
        format: u32,
    }
    serde_json::from_slice::<Format>(bytes)
        .ok()
        .map(|f| f.format)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn entry(key: Digest) -> Entry {
        Entry {
            key,
            ingredients: Ingredients {
                format: FORMAT,
                stage: "demo::s".into(),
                code: Digest::of(b"code"),
                salt: None,
                helpers: vec![],
                codec: "bincode/2".into(),
                shape: None,
                params: vec![],
                inputs: vec![],
                ancestors: vec![],
                element: None,
            },
            output: "u32".into(),
            payload: format!("{}.bin", key.to_hex()),
            bytes: 0,
            blake3: Digest::default(),
            segments: vec![],
            created_ms: 1,
            compute_ms: 1,
        }
    }

    #[test]
    fn damaged_metadata_is_no_entry() {
        let e = entry(Digest::of(b"k"));
        let good = encode_meta(&e).unwrap();
        assert_eq!(decode_meta(&good), Some(e));
        assert_eq!(meta_format(&good), Some(FORMAT));
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            assert!(
                decode_meta(&bad).is_none_or(|d| d == decode_meta(&good).unwrap()),
                "flip at {i}"
            );
        }
        assert!(decode_meta(&good[..good.len() / 2]).is_none());
    }
}

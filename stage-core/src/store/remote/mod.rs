//! A store in an object store (S3, GCS, Azure, a folder, memory), through the
//! `object_store` crate: the same layout as the local folder under a prefix,
//! `<prefix>/<stage folder>/<key>.<ext>` and `<key>.meta.json`, records under
//! `<prefix>/runs/`.
//!
//! Nothing read from it is trusted: metadata must carry its own checksum and name the key
//! asked for, and a payload is checked against its size and blake3 as it arrives. A
//! payload is uploaded before its metadata, and the metadata is created with a
//! conditional put, so an entry that exists is never replaced.

#[cfg(any(feature = "aws", feature = "gcp", feature = "azure"))]
mod cloud;
mod open;
mod runtime;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path as FsPath;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path;
use object_store::{
    ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart,
};

use super::entry::{decode_meta, encode_meta, meta_format};
use super::{
    Entry, Listed, META_SUFFIX, Put, Store, StoreError, meta_name, stage_folder, stage_of_folder,
};
use crate::key::{Digest, FORMAT};

pub(crate) use open::open;

/// Payloads larger than this are uploaded in parts.
const MULTIPART_FROM: u64 = 16 << 20;
/// The size of an upload's parts.
const PART: usize = 8 << 20;
/// Parts of one upload in flight at once.
const PARTS_AT_ONCE: usize = 4;
/// Objects asked for per listing page; servers give at most their own limit.
const PAGE: usize = 10_000;

/// Entries in an object store under a prefix.
pub struct RemoteStore {
    /// For metadata, listings and records: short timeouts.
    small: Arc<dyn ObjectStore>,
    /// For payloads: no overall timeout, only between reads.
    bulk: Arc<dyn ObjectStore>,
    /// Listings in pages as large as the server gives, where the store can ask for that.
    pages: Option<Arc<dyn PaginatedListStore>>,
    prefix: Option<Path>,
    url: String,
    /// Objects already reported as damaged.
    reported: Mutex<HashSet<String>>,
}

impl fmt::Debug for RemoteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RemoteStore {
    fn new(stores: open::Stores, prefix: &str, url: String) -> RemoteStore {
        let prefix = prefix.trim_matches('/');
        RemoteStore {
            small: stores.small,
            bulk: stores.bulk,
            pages: stores.pages,
            prefix: (!prefix.is_empty()).then(|| Path::from(prefix)),
            url,
            reported: Mutex::default(),
        }
    }

    /// The object `name` below the prefix (`name` may hold `/`).
    fn object(&self, name: &str) -> Path {
        let full = match &self.prefix {
            Some(prefix) => format!("{prefix}/{name}"),
            None => name.to_owned(),
        };
        Path::from(full)
    }

    fn entry_object(&self, stage: &str, name: &str) -> Path {
        self.object(&format!("{}/{name}", stage_folder(stage)))
    }

    /// The part of `location` below the prefix.
    fn relative<'p>(&self, location: &'p Path) -> Option<&'p str> {
        let full = location.as_ref();
        match &self.prefix {
            Some(prefix) => full
                .strip_prefix(prefix.as_ref())
                .and_then(|rest| rest.strip_prefix('/')),
            None => Some(full),
        }
    }

    fn unavailable(&self, source: impl Into<crate::BoxError>) -> StoreError {
        StoreError::Unavailable {
            location: self.url.clone(),
            source: source.into(),
        }
    }

    fn run<F, T>(&self, future: F) -> Result<T, StoreError>
    where
        F: Future<Output = object_store::Result<T>> + Send,
        T: Send,
    {
        runtime::block_on(future)
            .map_err(|e| self.unavailable(e))?
            .map_err(|e| self.unavailable(e))
    }

    /// The bytes of object `path`, or `None` when there is none.
    fn get_small(&self, path: &Path) -> Result<Option<Bytes>, StoreError> {
        let got = runtime::block_on(async {
            match self.small.get(path).await {
                Ok(result) => result.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        });
        got.map_err(|e| self.unavailable(e))?
            .map_err(|e| self.unavailable(e))
    }

    /// The error for damaged object `what`.
    fn damaged(&self, what: &Path, why: &str) -> StoreError {
        StoreError::Damaged(format!("{}/{what}: {why}", self.url_root()))
    }

    /// Reports damage once per process and object: a caller that only sees a miss (a
    /// lookup) would not tell anyone.
    fn report(&self, e: StoreError) -> StoreError {
        let first = self
            .reported
            .lock()
            .is_ok_and(|mut seen| seen.insert(e.to_string()));
        if first {
            crate::error::warn(&format!("remote cache object {e}: ignored"));
        }
        e
    }

    /// The scheme and bucket of the URL: object names are given in full after it.
    fn url_root(&self) -> &str {
        let after_scheme = self.url.find("://").map_or(0, |i| i + 3);
        let end = self.url[after_scheme..]
            .find('/')
            .map_or(self.url.len(), |i| after_scheme + i);
        &self.url[..end]
    }

    /// Every object below `prefix`: one listing, in pages of as many objects as the server
    /// gives at once (S3 and GCS: 1,000; Azure: 5,000), never a request per object.
    fn list_all(&self, prefix: Option<&Path>) -> Result<Vec<ObjectMeta>, StoreError> {
        let Some(pages) = &self.pages else {
            return self.run(async {
                let mut all = Vec::new();
                let mut listing = self.small.list(prefix);
                while let Some(meta) = listing.next().await {
                    all.push(meta?);
                }
                Ok(all)
            });
        };
        // A paginated listing does not add the trailing `/` that `list` adds.
        let prefix = prefix.map(|p| format!("{p}/"));
        self.run(async {
            let mut all = Vec::new();
            let mut token = None;
            loop {
                let options = PaginatedListOptions {
                    max_keys: Some(PAGE),
                    page_token: token,
                    ..PaginatedListOptions::default()
                };
                let page = pages.list_paginated(prefix.as_deref(), options).await?;
                all.extend(page.result.objects);
                token = page.page_token;
                if token.is_none() {
                    return Ok(all);
                }
            }
        })
    }

    /// The objects of entry `key` of `stage`: a listing of the names that start with the
    /// key where the store can list by any prefix, else of the stage's folder.
    fn objects_of(&self, stage: &str, key: &Digest) -> Result<Vec<Path>, StoreError> {
        let start = self.entry_object(stage, &key.to_hex());
        let objects = match &self.pages {
            Some(pages) => self.run(async {
                let mut all = Vec::new();
                let mut token = None;
                loop {
                    let options = PaginatedListOptions {
                        page_token: token,
                        ..PaginatedListOptions::default()
                    };
                    let page = pages.list_paginated(Some(start.as_ref()), options).await?;
                    all.extend(page.result.objects);
                    token = page.page_token;
                    if token.is_none() {
                        return Ok(all);
                    }
                }
            })?,
            None => self.list_all(Some(&self.object(&stage_folder(stage))))?,
        };
        Ok(objects
            .into_iter()
            .map(|o| o.location)
            .filter(|name| {
                name.as_ref()
                    .strip_prefix(start.as_ref())
                    .is_some_and(|rest| rest.starts_with('.'))
            })
            .collect())
    }

    /// Uploads the payload file at `local` to `path`: in one request, or in parts.
    fn upload_payload(&self, local: &FsPath, path: &Path, bytes: u64) -> Result<(), StoreError> {
        let mut file = File::open(local)?;
        if bytes < MULTIPART_FROM {
            let mut buf = Vec::with_capacity(usize::try_from(bytes).unwrap_or(0));
            file.read_to_end(&mut buf)?;
            let payload = PutPayload::from(buf);
            return self.run(self.bulk.put(path, payload)).map(drop);
        }
        let uploaded: Result<(), StoreError> = runtime::block_on(async {
            let upload = self
                .bulk
                .put_multipart(path)
                .await
                .map_err(|e| self.unavailable(e))?;
            let mut parts = WriteMultipart::new_with_chunk_size(upload, PART);
            loop {
                let mut part = Vec::with_capacity(PART);
                let read = (&mut file).take(PART as u64).read_to_end(&mut part);
                match read {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        let _ = parts.abort().await;
                        return Err(e.into());
                    }
                }
                if let Err(e) = parts.wait_for_capacity(PARTS_AT_ONCE).await {
                    let _ = parts.abort().await;
                    return Err(self.unavailable(e));
                }
                parts.put(Bytes::from(part));
            }
            parts
                .finish()
                .await
                .map(drop)
                .map_err(|e| self.unavailable(e))
        })
        .map_err(|e| self.unavailable(e))?;
        uploaded
    }

    /// What a put finds when the entry's metadata exists already: theirs, kept. When their
    /// payload differs from ours (a stage that is not a function of its key), ours may have
    /// replaced their payload: it is checked, and removed if it no longer matches their
    /// metadata, so that no damaged entry is left behind.
    fn existing(&self, ours: &Entry, theirs: Entry) -> Put {
        let first = || {
            self.reported
                .lock()
                .is_ok_and(|mut seen| seen.insert(format!("{}/{}", ours.stage(), ours.key)))
        };
        if theirs.blake3 != ours.blake3 {
            if first() {
                crate::error::warn(&format!(
                    "stage `{}`: entry {} in the remote cache holds another value than the \
                     one computed here: the stage is not a function of its key (it reads the \
                     clock, randomness or undeclared files?); the remote entry is kept",
                    ours.stage(),
                    ours.key.short()
                ));
            }
            if self.read_into(&theirs, &mut std::io::sink()).is_err() {
                let payload = self.entry_object(theirs.stage(), &theirs.payload);
                let _ = self.run(self.small.delete(&payload));
            }
        }
        Put::Existing(Box::new(theirs))
    }
}

impl Store for RemoteStore {
    fn location(&self) -> String {
        self.url.clone()
    }

    fn lookup(&self, stage: &str, key: &Digest) -> Result<Option<Entry>, StoreError> {
        let path = self.entry_object(stage, &meta_name(key));
        let Some(bytes) = self.get_small(&path)? else {
            return Ok(None);
        };
        match decode_meta(&bytes) {
            Some(entry) if entry.key == *key && entry.stage() == stage => Ok(Some(entry)),
            Some(_) => Err(self.report(self.damaged(&path, "metadata of another entry"))),
            None if meta_format(&bytes).is_some_and(|f| f != FORMAT) => Ok(None),
            None => Err(self.report(self.damaged(&path, "metadata is damaged"))),
        }
    }

    fn read(&self, entry: &Entry) -> Result<Bytes, StoreError> {
        let mut buf = Vec::with_capacity(usize::try_from(entry.bytes).unwrap_or(0));
        self.read_into(entry, &mut buf)?;
        Ok(Bytes::from(buf))
    }

    fn read_into(&self, entry: &Entry, out: &mut dyn Write) -> Result<(), StoreError> {
        let path = self.entry_object(entry.stage(), &entry.payload);
        let mut stream = match self.run(self.bulk.get(&path)) {
            Ok(got) => got.into_stream(),
            Err(StoreError::Unavailable { source, .. })
                if matches!(
                    source.downcast_ref::<object_store::Error>(),
                    Some(object_store::Error::NotFound { .. })
                ) =>
            {
                return Err(StoreError::Io(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{}/{path}: no payload", self.url_root()),
                )));
            }
            Err(e) => return Err(e),
        };
        let mut hasher = blake3::Hasher::new();
        let mut len = 0u64;
        while let Some(chunk) = runtime::block_on(stream.next()).map_err(|e| self.unavailable(e))? {
            let chunk = chunk.map_err(|e| self.unavailable(e))?;
            len += chunk.len() as u64;
            if len > entry.bytes {
                return Err(self.damaged(&path, "payload is longer than its metadata says"));
            }
            hasher.update(&chunk);
            out.write_all(&chunk)?;
        }
        if len != entry.bytes {
            return Err(self.damaged(
                &path,
                &format!("payload is {len} bytes, its metadata says {}", entry.bytes),
            ));
        }
        if Digest::from(hasher.finalize()) != entry.blake3 {
            return Err(self.damaged(&path, "payload checksum differs from its metadata"));
        }
        Ok(())
    }

    fn put(&self, entry: &Entry, payload: &FsPath) -> Result<Put, StoreError> {
        match self.lookup(entry.stage(), &entry.key) {
            Ok(Some(theirs)) => return Ok(self.existing(entry, theirs)),
            Err(e @ StoreError::Unavailable { .. }) => return Err(e),
            // Damaged metadata stays (never replaced); the upload finds it again below.
            Ok(None) | Err(_) => {}
        }
        let payload_path = self.entry_object(entry.stage(), &entry.payload);
        self.upload_payload(payload, &payload_path, entry.bytes)?;
        let meta = encode_meta(entry).map_err(std::io::Error::other)?;
        let meta_path = self.entry_object(entry.stage(), &meta_name(&entry.key));
        let create = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let created = runtime::block_on(self.small.put_opts(&meta_path, meta.into(), create))
            .map_err(|e| self.unavailable(e))?;
        match created {
            Ok(_) => Ok(Put::Written),
            Err(object_store::Error::AlreadyExists { .. }) => {
                match self.lookup(entry.stage(), &entry.key)? {
                    Some(theirs) => Ok(self.existing(entry, theirs)),
                    None => Err(self.damaged(&meta_path, "metadata exists but is not readable")),
                }
            }
            Err(e) => Err(self.unavailable(e)),
        }
    }

    fn list(&self, stage: Option<&str>) -> Result<Vec<Listed>, StoreError> {
        let prefix = match stage {
            Some(stage) => Some(self.object(&stage_folder(stage))),
            None => self.prefix.clone(),
        };
        let objects = self.list_all(prefix.as_ref())?;
        let mut by_key = BTreeMap::<(String, Digest), Listed>::new();
        for object in &objects {
            let Some(name) = self.relative(&object.location) else {
                continue;
            };
            let Some((folder, file)) = name.split_once('/') else {
                continue;
            };
            if file.contains('/') {
                continue;
            }
            let Some((hex, rest)) = file.split_at_checked(64) else {
                continue;
            };
            let Ok(key) = hex.parse::<Digest>() else {
                continue;
            };
            if !rest.starts_with('.') {
                continue;
            }
            let modified_ms = u64::try_from(object.last_modified.timestamp_millis()).unwrap_or(0);
            by_key
                .entry((folder.to_owned(), key))
                .or_insert_with(|| Listed::new(stage_of_folder(folder), key, modified_ms))
                .saw(rest, object.size, modified_ms);
        }
        Ok(by_key.into_values().collect())
    }

    fn remove(&self, stage: &str, key: &Digest, whole: bool) -> Result<(), StoreError> {
        for name in self.objects_of(stage, key)? {
            let is_meta = name.as_ref().ends_with(META_SUFFIX);
            if whole || !is_meta {
                self.run(self.small.delete(&name))?;
            }
        }
        Ok(())
    }

    fn get_record(&self, name: &str) -> Result<Option<Bytes>, StoreError> {
        self.get_small(&self.object(name))
    }

    fn put_record(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let payload = PutPayload::from(bytes.to_vec());
        self.run(self.small.put(&self.object(name), payload))
            .map(drop)
    }

    fn list_records(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let (folder, start) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        let folder_path = if folder.is_empty() {
            self.prefix.clone()
        } else {
            Some(self.object(folder))
        };
        let listed = self.run(self.small.list_with_delimiter(folder_path.as_ref()))?;
        let mut names: Vec<String> = listed
            .objects
            .iter()
            .filter_map(|o| self.relative(&o.location))
            .filter(|name| {
                name.rsplit('/')
                    .next()
                    .is_some_and(|file| file.starts_with(start))
            })
            .map(str::to_owned)
            .collect();
        names.sort();
        Ok(names)
    }

    fn probe(&self) -> Result<(), StoreError> {
        let path = self.object("runs/.probe");
        match runtime::block_on(self.small.head(&path)).map_err(|e| self.unavailable(e))? {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.unavailable(e)),
        }
    }
}

#[cfg(test)]
mod tests;

//! Opens the object store a [`Remote`] names, once per process: its client keeps its
//! connections, and the wrappers around it remember a failure for the rest of the run.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use object_store::ObjectStore;
use object_store::list::PaginatedListStore;
use object_store::memory::InMemory;

use super::RemoteStore;
use crate::config::Remote;
use crate::store::{Breaker, ReadOnly, Store, StoreError};

/// The store `remote` names, wrapped in its behaviour (a breaker, read-only when asked),
/// made once per process for each remote and its options.
///
/// # Errors
/// When the URL is not one this build can open, or its options are not valid.
pub(crate) fn open(remote: &Remote) -> Result<Arc<dyn Store>, StoreError> {
    static OPEN: LazyLock<Mutex<HashMap<Remote, Arc<dyn Store>>>> = LazyLock::new(Mutex::default);
    let mut open = OPEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(store) = open.get(remote) {
        return Ok(Arc::clone(store));
    }
    let (stores, prefix) = build(remote).map_err(|source| StoreError::Unavailable {
        location: display_url(remote.url()),
        source: source.into(),
    })?;
    let store = RemoteStore::new(stores, &prefix, display_url(remote.url()));
    let store: Arc<dyn Store> = if remote.is_read_only() {
        Arc::new(Breaker::new(ReadOnly::new(store)))
    } else {
        Arc::new(Breaker::new(store))
    };
    open.insert(remote.clone(), Arc::clone(&store));
    Ok(store)
}

/// The object store of a remote, made twice with other timeouts.
pub(crate) struct Stores {
    /// For metadata, listings and records.
    pub(crate) small: Arc<dyn ObjectStore>,
    /// For payloads.
    pub(crate) bulk: Arc<dyn ObjectStore>,
    /// The small one, for listings in large pages, where the store can.
    pub(crate) pages: Option<Arc<dyn PaginatedListStore>>,
}

impl Stores {
    fn one(store: Arc<dyn ObjectStore>) -> Stores {
        Stores {
            small: Arc::clone(&store),
            bulk: store,
            pages: None,
        }
    }
}

/// The object stores for small requests and for payloads, and the prefix.
fn build(remote: &Remote) -> Result<(Stores, String), String> {
    let url = remote.url();
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        format!(
            "`{url}` is not a URL: write s3://bucket/prefix, gs://, az://, file:// or memory://"
        )
    })?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let prefix = prefix.trim_matches('/').to_owned();
    match scheme {
        "memory" => Ok((Stores::one(memory(bucket)), prefix)),
        "file" => {
            let root = format!("/{}", rest.trim_start_matches('/'));
            std::fs::create_dir_all(&root).map_err(|e| format!("`{root}`: {e}"))?;
            let store: Arc<dyn ObjectStore> = Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(&root)
                    .map_err(|e| e.to_string())?,
            );
            Ok((Stores::one(store), String::new()))
        }
        "s3" | "s3a" => s3(remote, bucket).map(|s| (s, prefix)),
        "gs" => gcs(remote, bucket).map(|s| (s, prefix)),
        "az" | "azure" | "abfs" | "abfss" => azure(remote, bucket).map(|s| (s, prefix)),
        other => Err(format!(
            "`{other}://` is not a remote cache this build knows: expected one of s3://, gs://, az://, file://, memory://"
        )),
    }
}

/// One in-memory store per name, for the whole process: two caches that name it share it.
fn memory(name: &str) -> Arc<dyn ObjectStore> {
    static MEMORY: LazyLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> =
        LazyLock::new(Mutex::default);
    let mut stores = MEMORY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Arc::clone(
        stores
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(InMemory::new())),
    )
}

/// The URL without anything that could be a secret (a user or a query).
pub(super) fn display_url(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host_end = rest.find('/').unwrap_or(rest.len());
            let host = &rest[..host_end];
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            format!("{scheme}://{host}{}", &rest[host_end..])
        }
        None => url.to_owned(),
    }
}

#[cfg(feature = "azure")]
use super::cloud::azure;
#[cfg(feature = "gcp")]
use super::cloud::gcs;
#[cfg(feature = "aws")]
use super::cloud::s3;

#[cfg(not(feature = "aws"))]
fn s3(_: &Remote, _: &str) -> Result<Stores, String> {
    Err(missing("s3://", "aws"))
}

#[cfg(not(feature = "gcp"))]
fn gcs(_: &Remote, _: &str) -> Result<Stores, String> {
    Err(missing("gs://", "gcp"))
}

#[cfg(not(feature = "azure"))]
fn azure(_: &Remote, _: &str) -> Result<Stores, String> {
    Err(missing("az://", "azure"))
}

#[allow(dead_code, reason = "for the clouds this build lacks")]
fn missing(scheme: &str, feature: &str) -> String {
    format!("a {scheme} remote cache needs `stage` built with its `{feature}` feature")
}

//! Opens the object store a [`Remote`] names, once per process: its client keeps its
//! connections, and the wrappers around it remember a failure for the rest of the run.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use object_store::ObjectStore;
use object_store::list::PaginatedListStore;
use object_store::memory::InMemory;
use object_store::{BackoffConfig, ClientOptions, RetryConfig};

use super::RemoteStore;
use crate::config::Remote;
use crate::store::{Breaker, ReadOnly, Store, StoreError};

/// How long to wait for a connection.
const CONNECT: Duration = Duration::from_secs(2);
/// How long a small request (metadata, listing page, record) may take in all.
const SMALL_REQUEST: Duration = Duration::from_secs(10);
/// How long a server may stay silent while a request waits for bytes.
const SILENT: Duration = Duration::from_secs(3);
/// Payload transfers: silent this long at most, with no limit on the whole.
const SILENT_BULK: Duration = Duration::from_secs(30);

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
pub(super) struct Stores {
    /// For metadata, listings and records.
    pub(super) small: Arc<dyn ObjectStore>,
    /// For payloads.
    pub(super) bulk: Arc<dyn ObjectStore>,
    /// The small one, for listings in large pages, where the store can.
    pub(super) pages: Option<Arc<dyn PaginatedListStore>>,
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
        "s3" | "s3a" => cloud::s3(remote, bucket).map(|s| (s, prefix)),
        "gs" => cloud::gcs(remote, bucket).map(|s| (s, prefix)),
        "az" | "azure" | "abfs" | "abfss" => cloud::azure(remote, bucket).map(|s| (s, prefix)),
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

/// Client options: short timeouts for small requests, none overall for payloads.
fn client_options(small: bool) -> ClientOptions {
    let options = ClientOptions::new().with_connect_timeout(CONNECT);
    if small {
        options
            .with_timeout(SMALL_REQUEST)
            .with_read_timeout(SILENT)
    } else {
        options
            .with_timeout_disabled()
            .with_read_timeout(SILENT_BULK)
    }
}

/// A few quick retries: a dead server costs a fraction of a second, not minutes.
fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
            base: 2.0,
        },
        max_retries: 2,
        retry_timeout: Duration::from_secs(2),
    }
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

#[cfg(any(feature = "aws", feature = "gcp", feature = "azure"))]
fn from_env<K: std::str::FromStr>(prefix: &str) -> Vec<(K, String)> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with(prefix))
        .filter_map(|(k, v)| Some((k.to_ascii_lowercase().parse().ok()?, v)))
        .collect()
}

#[cfg(any(feature = "aws", feature = "gcp", feature = "azure"))]
fn options<K: std::str::FromStr>(remote: &Remote) -> Result<Vec<(K, String)>, String> {
    remote
        .options()
        .iter()
        .map(|(k, v)| {
            k.to_ascii_lowercase()
                .parse()
                .map(|key| (key, v.clone()))
                .map_err(|_| format!("`{k}` is not an option of {}", remote.url()))
        })
        .collect()
}

/// The cloud stores, each behind its feature.
mod cloud {
    use super::{Remote, Stores};

    /// A builder with our defaults, then the environment, then the remote's options; once
    /// for small requests and once for payloads.
    macro_rules! build {
        ($remote:expr, $bucket:expr, $builder:ty, $store:ty, $key:ty, $env:literal, $with_bucket:ident) => {{
            let explicit = super::options::<$key>($remote)?;
            let env = super::from_env::<$key>($env);
            let make = |small: bool| -> Result<std::sync::Arc<$store>, String> {
                let mut builder = <$builder>::new()
                    .$with_bucket($bucket)
                    .with_client_options(super::client_options(small))
                    .with_retry(super::retry());
                for (k, v) in env.iter().chain(&explicit) {
                    builder = builder.with_config(k.clone(), v.clone());
                }
                Ok(std::sync::Arc::new(
                    builder.build().map_err(|e| e.to_string())?,
                ))
            };
            let small = make(true)?;
            Ok(Stores {
                small: small.clone(),
                bulk: make(false)?,
                pages: Some(small),
            })
        }};
    }

    #[cfg(feature = "aws")]
    pub(super) fn s3(remote: &Remote, bucket: &str) -> Result<Stores, String> {
        use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
        build!(
            remote,
            bucket,
            AmazonS3Builder,
            AmazonS3,
            AmazonS3ConfigKey,
            "AWS_",
            with_bucket_name
        )
    }

    #[cfg(feature = "gcp")]
    pub(super) fn gcs(remote: &Remote, bucket: &str) -> Result<Stores, String> {
        use object_store::gcp::{GoogleCloudStorage, GoogleCloudStorageBuilder, GoogleConfigKey};
        build!(
            remote,
            bucket,
            GoogleCloudStorageBuilder,
            GoogleCloudStorage,
            GoogleConfigKey,
            "GOOGLE_",
            with_bucket_name
        )
    }

    #[cfg(feature = "azure")]
    pub(super) fn azure(remote: &Remote, container: &str) -> Result<Stores, String> {
        use object_store::azure::{AzureConfigKey, MicrosoftAzure, MicrosoftAzureBuilder};
        build!(
            remote,
            container,
            MicrosoftAzureBuilder,
            MicrosoftAzure,
            AzureConfigKey,
            "AZURE_",
            with_container_name
        )
    }

    #[cfg(not(feature = "aws"))]
    pub(super) fn s3(_: &Remote, _: &str) -> Result<Stores, String> {
        Err(missing("s3://", "aws"))
    }

    #[cfg(not(feature = "gcp"))]
    pub(super) fn gcs(_: &Remote, _: &str) -> Result<Stores, String> {
        Err(missing("gs://", "gcp"))
    }

    #[cfg(not(feature = "azure"))]
    pub(super) fn azure(_: &Remote, _: &str) -> Result<Stores, String> {
        Err(missing("az://", "azure"))
    }

    #[allow(dead_code, reason = "used by the clouds this build lacks")]
    fn missing(scheme: &str, feature: &str) -> String {
        format!("a {scheme} remote cache needs `stage` built with its `{feature}` feature")
    }
}

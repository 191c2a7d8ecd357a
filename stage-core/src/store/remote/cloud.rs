//! The cloud object stores, each behind its feature: built with short timeouts and few
//! retries, from the environment the way each cloud's own tools read it, then the
//! remote's options.

use std::time::Duration;

use object_store::{BackoffConfig, ClientOptions, RetryConfig};

use super::open::Stores;
use crate::config::Remote;

/// How long to wait for a connection.
const CONNECT: Duration = Duration::from_secs(2);
/// How long a small request (metadata, listing page, record) may take in all.
const SMALL_REQUEST: Duration = Duration::from_secs(10);
/// How long a server may stay silent while a request waits for bytes.
const SILENT: Duration = Duration::from_secs(3);
/// Payload transfers: silent this long at most, with no limit on the whole.
const SILENT_BULK: Duration = Duration::from_secs(30);

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

fn from_env<K: std::str::FromStr>(prefix: &str) -> Vec<(K, String)> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with(prefix))
        .filter_map(|(k, v)| Some((k.to_ascii_lowercase().parse().ok()?, v)))
        .collect()
}

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

/// A builder with our defaults, then the environment, then the remote's options; once
/// for small requests and once for payloads.
macro_rules! build {
    ($remote:expr, $bucket:expr, $builder:ty, $store:ty, $key:ty, $env:literal, $with_bucket:ident) => {{
        let explicit = options::<$key>($remote)?;
        let env = from_env::<$key>($env);
        let make = |small: bool| -> Result<std::sync::Arc<$store>, String> {
            let mut builder = <$builder>::new()
                .$with_bucket($bucket)
                .with_client_options(client_options(small))
                .with_retry(retry());
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

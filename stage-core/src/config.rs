//! Where the cache lives and how a run behaves: read from the environment, or set per
//! thread with [`Config::scope`] (see `run::scope`).

use std::fmt;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

/// How stage calls on this thread behave: cache folder, where raw inputs are found,
/// threads, strictness, progress, and the settings of the formats.
///
/// By default it is read from the environment ([`Config::from_env`]). A test gives its
/// pipeline its own cache with [`Config::scope`], without touching the environment, so
/// tests of one binary run in parallel:
///
/// ```
/// # use stage_core::Config;
/// let dir = tempfile::tempdir().unwrap();
/// let answer = Config::from_env().dir(dir.path()).scope(|| 40 + 2);
/// assert_eq!(answer, 42);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    dir: PathBuf,
    data_dir: Option<PathBuf>,
    jobs: NonZeroUsize,
    strict: bool,
    progress: bool,
    parquet_compression: ParquetCompression,
    remote: Option<Remote>,
    allow_missing: bool,
    shard: Option<Shard>,
}

/// One shard of the items of per-item stages: several processes (CI jobs, machines) each
/// compute the items whose key falls in their shard, and meet in a shared cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// Shard `index` of `count`, counted from 1; `None` unless `1 <= index <= count`.
    #[must_use]
    pub fn new(index: u32, count: u32) -> Option<Shard> {
        (1..=count)
            .contains(&index)
            .then_some(Shard { index, count })
    }

    /// Reads `k/n`, as `STAGE_SHARD` gives it.
    #[must_use]
    pub fn parse(text: &str) -> Option<Shard> {
        let (index, count) = text.trim().split_once('/')?;
        Shard::new(index.trim().parse().ok()?, count.trim().parse().ok()?)
    }

    /// Whether the item of `key` is this shard's to compute.
    #[must_use]
    pub fn owns(&self, key: &crate::key::Digest) -> bool {
        let mut first = [0; 8];
        first.copy_from_slice(&key.0[..8]);
        u64::from_le_bytes(first) % u64::from(self.count) == u64::from(self.index - 1)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A team's shared cache in an object store, behind the local cache folder
/// (`STAGE_REMOTE`).
///
/// The URL names the store and a prefix in it: `s3://bucket/prefix` (feature `aws`),
/// `gs://bucket/prefix` (`gcp`), `az://container/prefix` (`azure`), `file:///path` or
/// `memory://name` (feature `remote`). Credentials, region and endpoint come from where the
/// object store's own client reads them (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`,
/// `GOOGLE_APPLICATION_CREDENTIALS`, `AZURE_STORAGE_ACCOUNT_NAME`, ...), or from
/// [`Remote::option`]; they are never logged nor written into entries.
///
/// [`Remote::new`] takes its other settings from the environment
/// (`STAGE_REMOTE_READ_ONLY`, `STAGE_REMOTE_REQUIRED`, `STAGE_REMOTE_UPLOAD`), so that a CI
/// job that is told to be read-only stays read-only whatever remote its code chooses.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Remote {
    url: String,
    options: Vec<(String, String)>,
    read_only: bool,
    required: bool,
    upload: Upload,
}

/// When a call's new entries are uploaded to the remote cache (`STAGE_REMOTE_UPLOAD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Upload {
    /// Uploads start as soon as an entry is written locally, and the call returns once
    /// they are done (`wait`).
    #[default]
    Wait,
    /// The call returns without waiting for its uploads (`background`): a process that
    /// exits at once loses the uploads still running.
    Background,
}

impl Remote {
    /// The remote store at `url`, with the settings the environment gives.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Remote {
        let upload = match std::env::var("STAGE_REMOTE_UPLOAD") {
            Ok(v) if v.trim() == "background" => Upload::Background,
            Ok(v) if v.trim().is_empty() || v.trim() == "wait" => Upload::Wait,
            Ok(v) => {
                crate::error::warn(&format!(
                    "STAGE_REMOTE_UPLOAD={v} is not one of wait, background: using wait"
                ));
                Upload::Wait
            }
            Err(_) => Upload::Wait,
        };
        Remote {
            url: url.into().trim().to_owned(),
            options: Vec::new(),
            read_only: flag("STAGE_REMOTE_READ_ONLY").unwrap_or(false),
            required: flag("STAGE_REMOTE_REQUIRED").unwrap_or(false),
            upload,
        }
    }

    /// Sets an option of the object store's client, by the name its configuration uses
    /// (`aws_endpoint`, `aws_region`, `aws_allow_http`, `aws_access_key_id`, ...).
    #[must_use]
    pub fn option(mut self, key: impl Into<String>, value: impl Into<String>) -> Remote {
        self.options.push((key.into(), value.into()));
        self
    }

    /// When `true`, entries are read from the remote cache and never written to it.
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Remote {
        self.read_only = read_only;
        self
    }

    /// When `true`, a remote cache that cannot be reached is an error instead of a warning.
    #[must_use]
    pub fn required(mut self, required: bool) -> Remote {
        self.required = required;
        self
    }

    /// When a call's uploads happen.
    #[must_use]
    pub fn upload(mut self, upload: Upload) -> Remote {
        self.upload = upload;
        self
    }

    /// The URL of the store and prefix.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The client options set with [`Remote::option`].
    #[must_use]
    pub fn options(&self) -> &[(String, String)] {
        &self.options
    }

    /// Whether the remote cache is only read.
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Whether a remote cache that cannot be reached is an error.
    #[must_use]
    pub fn is_required(&self) -> bool {
        self.required
    }

    /// When a call's uploads happen.
    #[must_use]
    pub fn upload_mode(&self) -> Upload {
        self.upload
    }
}

impl From<&str> for Remote {
    fn from(url: &str) -> Remote {
        Remote::new(url)
    }
}

impl From<String> for Remote {
    fn from(url: String) -> Remote {
        Remote::new(url)
    }
}

/// Option values may be secrets: only their names are shown.
impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("url", &self.url)
            .field(
                "options",
                &self.options.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("read_only", &self.read_only)
            .field("required", &self.required)
            .field("upload", &self.upload)
            .finish()
    }
}

/// The page compression of new `cache = parquet` entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ParquetCompression {
    /// No compression: the fastest to write and to read back.
    #[default]
    None,
    /// Snappy pages.
    Snappy,
    /// Zstandard pages, level 1: smaller files, slower to write.
    Zstd,
}

impl ParquetCompression {
    /// The name used in `STAGE_PARQUET_COMPRESSION` and in keys.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ParquetCompression::None => "none",
            ParquetCompression::Snappy => "snappy",
            ParquetCompression::Zstd => "zstd1",
        }
    }

    /// The compression named `name` (`none`, `snappy`, `zstd` or `zstd1`).
    #[must_use]
    pub fn from_name(name: &str) -> Option<ParquetCompression> {
        match name.trim() {
            "none" => Some(ParquetCompression::None),
            "snappy" => Some(ParquetCompression::Snappy),
            "zstd" | "zstd1" => Some(ParquetCompression::Zstd),
            _ => None,
        }
    }
}

impl Config {
    /// The configuration the environment gives:
    ///
    /// - `STAGE_DIR`: the cache folder (else `.stage` in the current directory);
    /// - `STAGE_DATA_DIR`: the folder relative raw inputs are found in (else the current
    ///   directory);
    /// - `STAGE_JOBS`: stages run at once (else the number of cores);
    /// - `STAGE_STRICT=1`: a cache that cannot be written is an error;
    /// - `STAGE_PROGRESS=0`: no progress display;
    /// - `STAGE_PARQUET_COMPRESSION`: `none` (the default), `snappy` or `zstd`;
    /// - `STAGE_REMOTE`: a shared cache behind the local one (see [`Remote`]);
    /// - `STAGE_SHARD=k/n`: compute only the items of per-item stages in shard `k` of `n`;
    /// - `STAGE_ALLOW_MISSING=1`: a missing raw input is keyed by the hash the latest run
    ///   recorded for it.
    ///
    /// An unknown value is reported with a warning and the default is used.
    #[must_use]
    pub fn from_env() -> Config {
        let dir =
            std::env::var_os("STAGE_DIR").map_or_else(|| PathBuf::from(".stage"), PathBuf::from);
        let data_dir = std::env::var_os("STAGE_DATA_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
        let jobs = std::env::var("STAGE_JOBS")
            .ok()
            .and_then(|n| n.trim().parse::<NonZeroUsize>().ok())
            .or_else(|| std::thread::available_parallelism().ok())
            .unwrap_or(NonZeroUsize::MIN);
        let parquet_compression = match std::env::var("STAGE_PARQUET_COMPRESSION") {
            Err(_) => ParquetCompression::default(),
            Ok(name) if name.trim().is_empty() => ParquetCompression::default(),
            Ok(name) => ParquetCompression::from_name(&name).unwrap_or_else(|| {
                crate::error::warn(&format!(
                    "STAGE_PARQUET_COMPRESSION={name} is not one of none, snappy, zstd: using none"
                ));
                ParquetCompression::default()
            }),
        };
        let shard = std::env::var("STAGE_SHARD").ok().and_then(|text| {
            let shard = Shard::parse(&text);
            if shard.is_none() {
                crate::error::warn(&format!(
                    "STAGE_SHARD={text} is not `k/n` with 1 <= k <= n: computing every item"
                ));
            }
            shard
        });
        Config {
            shard,
            dir,
            data_dir,
            jobs,
            strict: flag("STAGE_STRICT").unwrap_or(false),
            progress: flag("STAGE_PROGRESS").unwrap_or(true),
            parquet_compression,
            remote: std::env::var("STAGE_REMOTE")
                .ok()
                .filter(|url| !url.trim().is_empty())
                .map(Remote::new),
            allow_missing: flag("STAGE_ALLOW_MISSING").unwrap_or(false),
        }
    }

    /// Puts the shared cache `remote` behind the local cache folder: a URL
    /// (`"s3://bucket/prefix"`) or a [`Remote`] with options.
    #[must_use]
    pub fn remote(mut self, remote: impl Into<Remote>) -> Config {
        self.remote = Some(remote.into());
        self
    }

    /// Uses the local cache folder alone, whatever `STAGE_REMOTE` says.
    #[must_use]
    pub fn local_only(mut self) -> Config {
        self.remote = None;
        self
    }

    /// When `true`, a raw input that is missing is keyed by the content hash the latest
    /// run in the cache recorded for its path (with a warning), so that results can be
    /// read without the raw data; a stage that then has to run gets an error.
    #[must_use]
    pub fn allow_missing(mut self, allow: bool) -> Config {
        self.allow_missing = allow;
        self
    }

    /// Keeps the cache in `dir`.
    #[must_use]
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Config {
        self.dir = dir.into();
        self
    }

    /// Finds relative raw inputs (`param = "data/x.csv"`, [`File`](crate::File)) in
    /// `dir` instead of the current directory.
    #[must_use]
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Config {
        self.data_dir = Some(dir.into());
        self
    }

    /// Runs at most `jobs` stages at once (1: one after the other, on the calling thread).
    #[must_use]
    pub fn jobs(mut self, jobs: usize) -> Config {
        self.jobs = NonZeroUsize::new(jobs).unwrap_or(NonZeroUsize::MIN);
        self
    }

    /// When `true`, an entry that cannot be saved is an error instead of a warning.
    #[must_use]
    pub fn strict(mut self, strict: bool) -> Config {
        self.strict = strict;
        self
    }

    /// When `false`, calls never show a progress display. It shows only when standard
    /// error is a terminal.
    #[must_use]
    pub fn progress(mut self, progress: bool) -> Config {
        self.progress = progress;
        self
    }

    /// Writes new `cache = parquet` entries with this page compression (part of the key).
    #[must_use]
    pub fn parquet_compression(mut self, compression: ParquetCompression) -> Config {
        self.parquet_compression = compression;
        self
    }

    /// Computes only the items of per-item stages in `shard` (`None`: all of them). A call
    /// that leaves items to other shards ends with [`Error::Sharded`](crate::Error::Sharded)
    /// once its own are cached.
    #[must_use]
    pub fn shard(mut self, shard: Option<Shard>) -> Config {
        self.shard = shard;
        self
    }

    /// The shard of items this process computes, if it computes only some.
    #[must_use]
    pub fn items_shard(&self) -> Option<Shard> {
        self.shard
    }

    /// The cache folder.
    #[must_use]
    pub fn cache_dir(&self) -> &Path {
        &self.dir
    }

    /// The folder relative raw inputs are found in, when one is set.
    #[must_use]
    pub fn data_root(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    /// Where the raw input written `path` is: `path` itself when it is absolute, else
    /// `path` in the data folder, else in the current directory (made absolute, so that
    /// errors show where it was looked for).
    #[must_use]
    pub fn resolve_input(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            return path.to_path_buf();
        }
        let base = match &self.data_dir {
            Some(dir) if dir.is_absolute() => dir.clone(),
            Some(dir) => current_dir().join(dir),
            None => current_dir(),
        };
        base.join(path)
    }

    /// The most stages run at once.
    #[must_use]
    pub fn max_jobs(&self) -> usize {
        self.jobs.get()
    }

    /// Whether an entry that cannot be saved is an error.
    #[must_use]
    pub fn is_strict(&self) -> bool {
        self.strict
    }

    /// Whether calls may show a progress display on a terminal.
    #[must_use]
    pub fn shows_progress(&self) -> bool {
        self.progress
    }

    /// The page compression of new `cache = parquet` entries.
    #[must_use]
    pub fn compression(&self) -> ParquetCompression {
        self.parquet_compression
    }

    /// The shared cache behind the local one, when there is one.
    #[must_use]
    pub fn remote_cache(&self) -> Option<&Remote> {
        self.remote.as_ref()
    }

    /// Whether a missing raw input is keyed by the hash the latest run recorded for it.
    #[must_use]
    pub fn allows_missing(&self) -> bool {
        self.allow_missing
    }
}

impl Default for Config {
    fn default() -> Config {
        Config::from_env()
    }
}

/// A yes/no setting: `1`, `true`, `yes` are yes; any other value is no; unset is `None`.
fn flag(name: &str) -> Option<bool> {
    std::env::var(name)
        .ok()
        .map(|v| matches!(v.trim(), "1" | "true" | "yes"))
}

fn current_dir() -> PathBuf {
    std::env::current_dir().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_jobs_means_one() {
        assert_eq!(Config::from_env().jobs(0).max_jobs(), 1);
    }

    #[test]
    fn relative_inputs_resolve_against_the_data_folder() {
        let config = Config::from_env().data_dir("/data/here");
        assert_eq!(
            config.resolve_input(Path::new("x/a.csv")),
            Path::new("/data/here/x/a.csv")
        );
        assert_eq!(
            config.resolve_input(Path::new("/abs/b.csv")),
            Path::new("/abs/b.csv")
        );
        let plain = Config::from_env();
        if plain.data_root().is_none() {
            assert!(plain.resolve_input(Path::new("a.csv")).is_absolute());
        }
    }

    #[test]
    fn shards_split_keys_among_them() {
        assert_eq!(Shard::parse("2/3"), Shard::new(2, 3));
        for bad in ["0/3", "4/3", "1", "a/b", "1/0"] {
            assert_eq!(Shard::parse(bad), None, "{bad}");
        }
        let shards: Vec<Shard> = (1..=3).filter_map(|k| Shard::new(k, 3)).collect();
        for i in 0..100u32 {
            let key = crate::key::Digest::of(&i.to_le_bytes());
            assert_eq!(shards.iter().filter(|s| s.owns(&key)).count(), 1);
        }
    }

    #[test]
    fn compression_names_round_trip() {
        for c in [
            ParquetCompression::None,
            ParquetCompression::Snappy,
            ParquetCompression::Zstd,
        ] {
            assert_eq!(ParquetCompression::from_name(c.name()), Some(c));
        }
        assert_eq!(ParquetCompression::from_name("lz5"), None);
    }
}

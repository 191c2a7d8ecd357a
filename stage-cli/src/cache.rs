//! A cache folder read as data: its entries, damaged metadata, orphan payloads, temporary
//! files and run records.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use stage_core::{Digest, Entry, META_SUFFIX, RUNS_DIR, RunRecord, decode_meta};

/// An intact entry and where it lives.
pub struct Found {
    /// The stage's folder name (`crate.module.function`).
    pub stage: String,
    pub entry: Entry,
    pub meta_path: PathBuf,
    pub payload_path: PathBuf,
    /// When a run last listed it (ms), else `None`.
    pub last_used: Option<u64>,
}

impl Found {
    /// Last use, or creation when never used.
    pub fn last_touch(&self) -> u64 {
        self.last_used
            .unwrap_or(self.entry.created_ms)
            .max(self.entry.created_ms)
    }

    /// What the entry takes on disk: its payload (when it is there) and its metadata. `ls`
    /// shows it per entry and `du` adds it up, so the two agree.
    pub fn disk_bytes(&self) -> u64 {
        let len = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        len(&self.payload_path) + len(&self.meta_path)
    }

    /// The lock file of this entry.
    pub fn lock_path(&self) -> PathBuf {
        self.meta_path
            .with_file_name(format!("{}.lock", self.entry.key.to_hex()))
    }
}

/// Everything in a cache folder.
#[derive(Default)]
pub struct Cache {
    pub entries: Vec<Found>,
    /// Metadata files that do not decode into an intact entry.
    pub damaged: Vec<PathBuf>,
    /// Payload files no metadata refers to.
    pub orphans: Vec<PathBuf>,
    /// Temporary files of writers, with their age in ms.
    pub temporaries: Vec<(PathBuf, u64)>,
    pub runs: Vec<(PathBuf, RunRecord)>,
}

impl Cache {
    /// Reads the folder `root`.
    pub fn scan(root: &Path) -> Result<Cache, String> {
        let dirs = fs::read_dir(root)
            .map_err(|e| format!("cannot read the cache folder `{}`: {e}", root.display()))?;
        let runs = RunRecord::read_all(root);
        let mut last_used: HashMap<Digest, u64> = HashMap::new();
        for (_, run) in &runs {
            for used in &run.used {
                let t = last_used.entry(used.key).or_default();
                *t = (*t).max(run.time_ms);
            }
        }
        let mut cache = Cache {
            runs,
            ..Cache::default()
        };
        let now = now_ms();
        for dir in dirs
            .filter_map(Result::ok)
            .filter(|d| d.path().is_dir() && d.file_name() != RUNS_DIR)
        {
            cache.scan_stage(&dir.path(), &last_used, now);
        }
        cache.entries.sort_by(|a, b| {
            a.stage
                .cmp(&b.stage)
                .then(b.entry.created_ms.cmp(&a.entry.created_ms))
        });
        Ok(cache)
    }

    fn scan_stage(&mut self, dir: &Path, last_used: &HashMap<Digest, u64>, now: u64) {
        let stage = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Ok(files) = fs::read_dir(dir) else { return };
        let mut payloads = Vec::new();
        let mut referenced = Vec::new();
        for file in files.filter_map(Result::ok) {
            let (path, name) = (file.path(), file.file_name().to_string_lossy().into_owned());
            if name.starts_with(".tmp-") {
                let age = file
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .map_or(0, |t| now.saturating_sub(ms(t)));
                self.temporaries.push((path, age));
            } else if name.ends_with(META_SUFFIX) {
                match fs::read(&path).ok().and_then(|b| decode_meta(&b)) {
                    Some(entry) => {
                        referenced.push(entry.payload.clone());
                        self.entries.push(Found {
                            stage: stage.clone(),
                            payload_path: dir.join(&entry.payload),
                            last_used: last_used.get(&entry.key).copied(),
                            entry,
                            meta_path: path,
                        });
                    }
                    None => self.damaged.push(path),
                }
            } else if !has_extension(&path, "lock") && name != "latest" {
                payloads.push((name, path));
            }
        }
        self.orphans.extend(
            payloads
                .into_iter()
                .filter(|(n, _)| !referenced.contains(n))
                .map(|(_, p)| p),
        );
    }

    /// The entry whose key starts with `prefix`.
    pub fn find(&self, prefix: &str) -> Result<&Found, String> {
        let prefix = prefix.trim().to_ascii_lowercase();
        if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "`{prefix}` is not a key: give its hex digits, or a prefix of them"
            ));
        }
        let matches: Vec<&Found> = self
            .entries
            .iter()
            .filter(|f| f.entry.key.to_hex().starts_with(&prefix))
            .collect();
        match matches.as_slice() {
            [one] => Ok(one),
            [] => Err(format!("no entry has a key starting with `{prefix}`")),
            many => Err(format!(
                "`{prefix}` is the start of {} keys; give more digits ({})",
                many.len(),
                many.iter()
                    .map(|f| f.entry.key.short())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// The entry with exactly `key`.
    pub fn get(&self, key: &Digest) -> Option<&Found> {
        self.entries.iter().find(|f| f.entry.key == *key)
    }
}

fn has_extension(path: &Path, extension: &str) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(extension))
}

pub fn now_ms() -> u64 {
    ms(std::time::SystemTime::now())
}

fn ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

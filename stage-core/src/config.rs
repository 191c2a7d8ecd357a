//! Where the cache lives and how a run behaves, set per process or per thread.

use std::cell::RefCell;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How stage calls on this thread behave: cache folder, threads, strictness.
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
    jobs: NonZeroUsize,
    strict: bool,
    progress: bool,
}

impl Config {
    /// `STAGE_DIR` (else `.stage` in the current directory), `STAGE_JOBS` (else the number
    /// of cores), `STAGE_STRICT=1` makes a cache that cannot be written an error,
    /// `STAGE_PROGRESS=0` hides the progress display.
    #[must_use]
    pub fn from_env() -> Config {
        let dir =
            std::env::var_os("STAGE_DIR").map_or_else(|| PathBuf::from(".stage"), PathBuf::from);
        let jobs = std::env::var("STAGE_JOBS")
            .ok()
            .and_then(|n| n.trim().parse::<NonZeroUsize>().ok())
            .or_else(|| std::thread::available_parallelism().ok())
            .unwrap_or(NonZeroUsize::MIN);
        let flag = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| matches!(v.trim(), "1" | "true" | "yes"))
        };
        let strict = flag("STAGE_STRICT").unwrap_or(false);
        let progress = flag("STAGE_PROGRESS").unwrap_or(true);
        Config {
            dir,
            jobs,
            strict,
            progress,
        }
    }

    /// The configuration in force on this thread: the innermost [`Config::scope`], else
    /// [`Config::from_env`].
    #[must_use]
    pub fn current() -> Config {
        CURRENT
            .with(|c| c.borrow().as_ref().map(|s| s.config.clone()))
            .unwrap_or_else(Config::from_env)
    }

    /// Keeps the cache in `dir`.
    #[must_use]
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Config {
        self.dir = dir.into();
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

    /// Whether calls may show a progress display on a terminal.
    #[must_use]
    pub fn shows_progress(&self) -> bool {
        self.progress
    }

    /// The cache folder.
    #[must_use]
    pub fn cache_dir(&self) -> &Path {
        &self.dir
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

    /// Runs `f` with this configuration for every stage call it makes on this thread
    /// (and on the threads those calls use).
    pub fn scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let log = CURRENT.with(|c| c.borrow().as_ref().and_then(|s| s.log.clone()));
        with_scope(
            Scope {
                config: self.clone(),
                log,
            },
            f,
        )
    }
}

impl Default for Config {
    fn default() -> Config {
        Config::from_env()
    }
}

/// What a run did for one stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The stage's path.
    pub stage: String,
    /// The key it ran or loaded under.
    pub key: crate::Digest,
    /// What happened.
    pub outcome: Outcome,
}

/// What happened to a stage in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Its body ran, for this reason.
    Computed(crate::Reason),
    /// Its value was read back from the cache.
    Loaded,
    /// Its value was computed but could not be saved (the warning's text).
    NotSaved(String),
}

/// The stages that calls made inside [`observe`] computed and loaded, in order of completion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunLog {
    /// Every event, in the order they happened.
    pub events: Vec<Event>,
}

impl RunLog {
    /// Names (function names) of the stages whose body ran, in order.
    #[must_use]
    pub fn computed(&self) -> Vec<&str> {
        self.names(|o| matches!(o, Outcome::Computed(_)))
    }

    /// Names of the stages read back from the cache, in order.
    #[must_use]
    pub fn loaded(&self) -> Vec<&str> {
        self.names(|o| matches!(o, Outcome::Loaded))
    }

    /// Why the stage named `name` was computed, if it was.
    #[must_use]
    pub fn reason(&self, name: &str) -> Option<&crate::Reason> {
        self.events.iter().find_map(|e| match &e.outcome {
            Outcome::Computed(reason) if short_name(&e.stage) == name => Some(reason),
            _ => None,
        })
    }

    /// Warnings of entries that could not be saved.
    #[must_use]
    pub fn warnings(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|e| match &e.outcome {
                Outcome::NotSaved(w) => Some(w.as_str()),
                _ => None,
            })
            .collect()
    }

    fn names(&self, keep: impl Fn(&Outcome) -> bool) -> Vec<&str> {
        self.events
            .iter()
            .filter(|e| keep(&e.outcome))
            .map(|e| short_name(&e.stage))
            .collect()
    }
}

/// One line per stage, in order: `computed  <name>  (<reason>)`, `loaded    <name>`, or
/// `not saved <name>  (<warning>)`; nothing when no stage was called.
///
/// ```
/// let ((), log) = stage_core::observe(|| ());
/// assert_eq!(log.to_string(), "");
/// ```
impl std::fmt::Display for RunLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let width = self
            .events
            .iter()
            .map(|e| short_name(&e.stage).len())
            .max()
            .unwrap_or(0);
        for e in &self.events {
            let name = short_name(&e.stage);
            match &e.outcome {
                Outcome::Computed(reason) => writeln!(f, "computed  {name:<width$}  ({reason})")?,
                Outcome::Loaded => writeln!(f, "loaded    {name}")?,
                Outcome::NotSaved(warning) => {
                    writeln!(f, "not saved {name:<width$}  ({warning})")?;
                }
            }
        }
        Ok(())
    }
}

fn short_name(path: &str) -> &str {
    path.rsplit("::").next().unwrap_or(path)
}

/// Runs `f` and returns what its stage calls computed and loaded.
///
/// ```
/// let ((), log) = stage_core::observe(|| ());
/// assert!(log.computed().is_empty());
/// ```
pub fn observe<R>(f: impl FnOnce() -> R) -> (R, RunLog) {
    let log = Arc::new(std::sync::Mutex::new(RunLog::default()));
    let scope = Scope {
        config: Config::current(),
        log: Some(Arc::clone(&log)),
    };
    let value = with_scope(scope, f);
    let log = log.lock().map(|l| l.clone()).unwrap_or_default();
    (value, log)
}

/// The configuration and log a run carries to its worker threads.
#[derive(Clone)]
pub(crate) struct Scope {
    pub(crate) config: Config,
    pub(crate) log: Option<Arc<std::sync::Mutex<RunLog>>>,
}

impl Scope {
    pub(crate) fn current() -> Scope {
        CURRENT
            .with(|c| c.borrow().clone())
            .unwrap_or_else(|| Scope {
                config: Config::from_env(),
                log: None,
            })
    }

    pub(crate) fn record(&self, event: Event) {
        if let Some(log) = &self.log
            && let Ok(mut log) = log.lock()
        {
            log.events.push(event);
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

/// Runs `f` with `scope` in force on this thread, restoring the previous one after,
/// even if `f` panics.
pub(crate) fn with_scope<R>(scope: Scope, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Scope>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = previous);
        }
    }
    let previous = CURRENT.with(|c| c.borrow_mut().replace(scope));
    let _restore = Restore(previous);
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_overrides_and_restores() {
        let outside = Config::current();
        let inner = Config::from_env().dir("/tmp/somewhere").jobs(3);
        let seen = inner.scope(Config::current);
        assert_eq!(seen.cache_dir(), Path::new("/tmp/somewhere"));
        assert_eq!(seen.max_jobs(), 3);
        assert_eq!(Config::current(), outside);
    }

    #[test]
    fn a_run_log_prints_one_line_per_stage() {
        let event = |stage: &str, outcome| Event {
            stage: stage.to_owned(),
            key: crate::Digest::of(stage.as_bytes()),
            outcome,
        };
        let log = RunLog {
            events: vec![
                event("app::load", Outcome::Loaded),
                event("app::clean", Outcome::Computed(crate::Reason::Code)),
                event("app::report", Outcome::NotSaved("disk full".to_owned())),
            ],
        };
        assert_eq!(
            log.to_string(),
            "loaded    load\n\
             computed  clean   (code changed)\n\
             not saved report  (disk full)\n"
        );
    }

    #[test]
    fn zero_jobs_means_one() {
        assert_eq!(Config::from_env().jobs(0).max_jobs(), 1);
    }
}

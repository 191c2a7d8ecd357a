//! The configuration and run log in force on a thread, carried to the threads a call uses.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::run::log::{Event, RunLog};

impl Config {
    /// The configuration in force on this thread: the innermost [`Config::scope`], else
    /// [`Config::from_env`].
    #[must_use]
    pub fn current() -> Config {
        CURRENT
            .with(|c| c.borrow().as_ref().map(|s| s.config.clone()))
            .unwrap_or_else(Config::from_env)
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

/// Runs `f` and returns what its stage calls computed and loaded.
///
/// ```
/// let ((), log) = stage_core::observe(|| ());
/// assert!(log.computed().is_empty());
/// ```
pub fn observe<R>(f: impl FnOnce() -> R) -> (R, RunLog) {
    let log = Arc::new(Mutex::new(RunLog::default()));
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
    pub(crate) log: Option<Arc<Mutex<RunLog>>>,
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

    /// Changes the events recorded so far.
    pub(crate) fn update(&self, f: impl FnOnce(&mut Vec<Event>)) {
        if let Some(log) = &self.log
            && let Ok(mut log) = log.lock()
        {
            f(&mut log.events);
        }
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
    use std::path::Path;

    #[test]
    fn scope_overrides_and_restores() {
        let outside = Config::current();
        let inner = Config::from_env().dir("/tmp/somewhere").jobs(3);
        let seen = inner.scope(Config::current);
        assert_eq!(seen.cache_dir(), Path::new("/tmp/somewhere"));
        assert_eq!(seen.max_jobs(), 3);
        assert_eq!(Config::current(), outside);
    }
}

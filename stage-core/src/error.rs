//! The error every stage call returns.

use std::path::PathBuf;

/// Any error a stage body may return, kept as the source of [`Error::Body`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong in a stage call.
///
/// Every variant names the stage it happened in, so a message read in a log is enough to
/// find the code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The body of a stage returned an error. Nothing was cached for it.
    #[error("stage `{stage}` failed")]
    Body {
        /// The stage's path, `module::function`.
        stage: String,
        /// The error the body returned.
        #[source]
        source: BoxError,
    },
    /// The body of a per-item stage failed for one item (or the item could not be read);
    /// the items computed before are kept, and the next call computes only the rest.
    #[error("stage `{stage}` failed on item `{item}`")]
    Item {
        /// The stage's path.
        stage: String,
        /// The item: the file's relative path, or the element's index.
        item: String,
        /// What went wrong.
        #[source]
        source: BoxError,
    },
    /// The body of a stage panicked. Nothing was cached for it.
    #[error("stage `{stage}` panicked: {message}")]
    Panic {
        /// The stage's path.
        stage: String,
        /// The panic's message, when it was a string.
        message: String,
    },
    /// A raw input file or folder could not be read.
    #[error("stage `{stage}` cannot read its input `{}`", path.display())]
    Input {
        /// The stage's path.
        stage: String,
        /// The path that was tried: absolute, resolved against the data folder.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// A free parameter could not be turned into key bytes.
    #[error("stage `{stage}` cannot hash its parameter `{param}`")]
    Param {
        /// The stage's path.
        stage: String,
        /// The parameter's name.
        param: String,
        /// Why it could not be encoded.
        #[source]
        source: BoxError,
    },
    /// This process computes one shard of the items of per-item stages (`STAGE_SHARD`):
    /// its items are cached, and the others are left to the other shards.
    #[error(
        "stage `{stage}`: shard {shard} computed {computed} of {left} items left; the others are for the other shards (a call without `STAGE_SHARD` gathers them)"
    )]
    Sharded {
        /// The per-item stage.
        stage: String,
        /// The shard, `k/n`.
        shard: String,
        /// Items this shard computed.
        computed: usize,
        /// Items that were not cached when it started.
        left: usize,
    },
    /// A key was asked for before it can be known: it depends on the output of an ancestor
    /// that is not cached.
    #[error(
        "the key of stage `{stage}` depends on the output of `{ancestor}`, which is not cached yet"
    )]
    Pending {
        /// The stage whose key was asked for.
        stage: String,
        /// The ancestor whose output is not known.
        ancestor: String,
    },
    /// The stages depend on each other in a cycle.
    #[error("stages depend on each other in a cycle: {}", stages.join(" -> "))]
    Cycle {
        /// The stages in the cycle, the first repeated at the end.
        stages: Vec<String>,
    },
    /// The remote cache is required (`STAGE_REMOTE_REQUIRED=1`) and could not be used.
    #[error("the remote cache `{location}` is required (STAGE_REMOTE_REQUIRED) and cannot be used")]
    Remote {
        /// The remote cache's URL.
        location: String,
        /// Why it could not be used.
        #[source]
        source: BoxError,
    },
    /// The cache could not be written, and the configuration asks for that to be an error.
    #[error("stage `{stage}`: the cache entry could not be saved in `{}`", path.display())]
    Save {
        /// The stage's path.
        stage: String,
        /// The folder the entry was to be written to.
        path: PathBuf,
        /// Why it could not be written.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// The path of the stage the error happened in.
    #[must_use]
    pub fn stage(&self) -> Option<&str> {
        match self {
            Error::Body { stage, .. }
            | Error::Item { stage, .. }
            | Error::Panic { stage, .. }
            | Error::Input { stage, .. }
            | Error::Param { stage, .. }
            | Error::Save { stage, .. }
            | Error::Pending { stage, .. }
            | Error::Sharded { stage, .. } => Some(stage),
            Error::Cycle { .. } | Error::Remote { .. } => None,
        }
    }
}

/// A warning: to `tracing` when a subscriber is installed, else to standard error.
pub(crate) fn warn(message: &str) {
    tracing::warn!("{message}");
    if !tracing::dispatcher::has_been_set() {
        eprintln!("warning: {message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_static<T: std::error::Error + Send + Sync + 'static>() {}

    #[test]
    fn error_is_send_sync_static() {
        assert_send_sync_static::<Error>();
    }

    #[test]
    fn cycle_names_its_stages() {
        let e = Error::Cycle {
            stages: vec!["a".into(), "b".into(), "a".into()],
        };
        assert_eq!(
            e.to_string(),
            "stages depend on each other in a cycle: a -> b -> a"
        );
    }
}

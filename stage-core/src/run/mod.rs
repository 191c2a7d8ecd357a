//! Running a call: plan every key first, then load or compute what is needed; the run log,
//! the graph, and the record each call leaves for `stage gc`.

mod exec;
mod graph;
pub(crate) mod info;
mod items;
mod log;
mod map;
mod param;
mod plan;
mod progress;
mod record;
pub(crate) mod scope;
pub(crate) mod stage;
mod support;

use std::sync::Arc;

use crate::config::Config;
use crate::key::Digest;
use crate::store::{Layered, LocalStore, StoreError, open_remote};
use crate::{BoxError, Error};

pub use graph::{Graph, Node as GraphNode, State, explain, graph};
pub use info::{AncestorInfo, RawInfo, StageInfo, TrackInfo, TrackedImpl};
pub use items::{Each, Items};
pub use log::{Event, ItemCount, Outcome, RunLog};
pub use param::{File, Param, Params};
pub use record::{RUNS_DIR, RecordedInput, RunRecord, UsedKey};
pub use scope::observe;
pub use stage::{AsStage, Inputs, Plan, Stage, info_of};
pub use support::{
    ByValue, ItemArgs, OutputIs, RawArg, body_result, clone_args, clone_element, output_is,
    same_names,
};

use plan::Planner;
use scope::Scope;
use stage::Typed;

/// Calls stage `S` with `args`: what every `#[stage]` wrapper does.
///
/// # Errors
/// See [`Error`].
pub fn call<S: Stage>(args: S::Args) -> Result<S::Value, Error> {
    let scope = Scope::current();
    let store = layered(&scope.config)?;
    let mut planner = Planner::new(&scope.config, &store);
    let root = planner.plan(Box::new(Typed::<S>::new(args)));
    planner.save_index();
    let root = root?;
    let nodes = planner.nodes;
    let (value, keys) = exec::execute(&scope, &store, &nodes, root);
    record::record_run(&store, &nodes, &keys, root);
    if let Err(e) = plan::stat_index(scope.config.cache_dir()).save() {
        tracing::debug!(error = %e, "stat index not saved");
    }
    store.finish().map_err(remote_error)?;
    let typed = Arc::downcast::<S::Value>(value?)
        .map_err(|_| internal(S::INFO, "the output has another type"))?;
    Arc::try_unwrap(typed).map_err(|_| internal(S::INFO, "the output is still shared"))
}

/// The key of stage `S` for `args`, computed without running anything or reading anything
/// but the raw inputs' stat (or content, when they changed) and the ancestors' metadata.
///
/// A key depends on the outputs of the stage's cached ancestors: when one of them has no
/// entry, the key is not known until it is computed, and this says which.
///
/// # Errors
/// When an input cannot be read, the stages form a cycle, or an ancestor's output is not
/// known.
pub fn key<S: Stage>(args: S::Args) -> Result<Digest, Error> {
    let scope = Scope::current();
    let store = layered(&scope.config)?;
    let mut planner = Planner::new(&scope.config, &store);
    let root = planner.plan(Box::new(Typed::<S>::new(args)));
    planner.save_index();
    let node = &planner.nodes[root?];
    node.key.ok_or_else(|| Error::Pending {
        stage: node.path.clone(),
        ancestor: planner
            .nodes
            .iter()
            .find(|n| n.output.is_none())
            .map_or_else(String::new, |n| n.path.clone()),
    })
}

/// The store of a call: the cache folder, and the remote cache behind it when one is set.
/// A remote that cannot be opened is a warning (once per process), or an error when it is
/// required.
pub(crate) fn layered(config: &Config) -> Result<Layered, Error> {
    let checked = plan::stat_index(config.cache_dir());
    let local = Layered::new(LocalStore::new(config.cache_dir()).trusting(checked));
    let Some(remote) = config.remote_cache() else {
        return Ok(local);
    };
    match open_remote(remote) {
        Ok(store) => {
            let layered = local
                .with_remote(store)
                .upload(remote.upload_mode())
                .required(remote.is_required());
            layered.check().map_err(remote_error)?;
            Ok(layered)
        }
        Err(e) if remote.is_required() => Err(remote_error(e)),
        Err(e) => {
            warn_once(&format!("{e}: the remote cache is not used"));
            Ok(local)
        }
    }
}

fn remote_error(e: StoreError) -> Error {
    match e {
        StoreError::Unavailable { location, source } => Error::Remote { location, source },
        other => Error::Remote {
            location: String::new(),
            source: other.into(),
        },
    }
}

fn warn_once(message: &str) {
    static SAID: std::sync::LazyLock<std::sync::Mutex<std::collections::HashSet<String>>> =
        std::sync::LazyLock::new(Default::default);
    if SAID
        .lock()
        .is_ok_and(|mut said| said.insert(message.to_owned()))
    {
        crate::error::warn(message);
    }
}

fn internal(info: &StageInfo, what: &str) -> Error {
    Error::Body {
        stage: info.path(),
        source: BoxError::from(format!("internal error: {what}")),
    }
}

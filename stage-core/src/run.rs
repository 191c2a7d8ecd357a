//! One call of a stage: plan every key first, then load or compute what is needed.

use std::any::TypeId;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use crate::codec::Codec;
use crate::config::Scope;
use crate::info::{StageInfo, tracked_closure};
use crate::ingredients::{FORMAT, Ingredients, Named};
use crate::raw::StatIndex;
use crate::stage::{Inputs, Params, Plan, Stage, Value};
use crate::store::LocalStore;
use crate::{BoxError, Digest, Error};

/// Calls stage `S` with `args`: what every `#[stage]` wrapper does.
///
/// # Errors
/// See [`Error`].
pub fn call<S: Stage>(args: S::Args) -> Result<S::Output, Error> {
    let scope = Scope::current();
    let mut planner = Planner::new(scope.config.cache_dir());
    let root = planner.plan::<S>(args);
    planner.save_index();
    let root = root?;
    let value = crate::exec::execute(&scope, &planner.nodes, root)?;
    let typed = Arc::downcast::<S::Output>(value).map_err(|_| internal(S::INFO, "the output has another type"))?;
    Arc::try_unwrap(typed).map_err(|_| internal(S::INFO, "the output is still shared"))
}

/// The key of stage `S` for `args`, computed without running or reading anything but the
/// raw inputs' stat (or content, when they changed).
///
/// # Errors
/// When an input cannot be read or the stages form a cycle.
pub fn key<S: Stage>(args: S::Args) -> Result<Digest, Error> {
    let scope = Scope::current();
    let mut planner = Planner::new(scope.config.cache_dir());
    let root = planner.plan::<S>(args);
    planner.save_index();
    Ok(planner.key(root?))
}

fn internal(info: &StageInfo, what: &str) -> Error {
    Error::Body { stage: info.path(), source: format!("internal error: {what}").into() }
}

/// A stage instance of a call: its key, ingredients, ancestors, and how to run it.
pub(crate) struct Node {
    pub(crate) info: &'static StageInfo,
    pub(crate) path: String,
    pub(crate) key: Digest,
    pub(crate) ingredients: Ingredients,
    pub(crate) ancestors: Vec<usize>,
    pub(crate) persistent: bool,
    pub(crate) extension: &'static str,
    pub(crate) erased: Box<dyn Erased>,
}

/// The typed operations of a node, behind a trait object so nodes of any stage mix.
pub(crate) trait Erased: Send + Sync {
    fn compute(&self, inputs: &Inputs<'_>) -> Result<Value, BoxError>;
    fn encode(&self, value: &Value, out: crate::store::PayloadWriter) -> Result<crate::store::PayloadWriter, BoxError>;
    fn decode(&self, bytes: bytes::Bytes) -> Result<Value, BoxError>;
}

struct Typed<S: Stage> {
    args: Mutex<Option<S::Args>>,
}

impl<S: Stage> Erased for Typed<S> {
    fn compute(&self, inputs: &Inputs<'_>) -> Result<Value, BoxError> {
        let args = self
            .args
            .lock()
            .map_err(|_| "internal error: poisoned arguments")?
            .take()
            .ok_or("internal error: a stage ran twice in one call")?;
        Ok(Arc::new(S::compute(args, inputs)?))
    }

    fn encode(&self, value: &Value, out: crate::store::PayloadWriter) -> Result<crate::store::PayloadWriter, BoxError> {
        let value = value.downcast_ref::<S::Output>().ok_or("internal error: output of another type")?;
        <S::Codec as Codec<S::Output>>::encode(value, out)
    }

    fn decode(&self, bytes: bytes::Bytes) -> Result<Value, BoxError> {
        Ok(Arc::new(<S::Codec as Codec<S::Output>>::decode(bytes)?))
    }
}

/// Derives the keys of a stage and all its ancestors, each (stage, arguments) once.
pub(crate) struct Planner {
    pub(crate) nodes: Vec<Node>,
    seen: HashMap<(TypeId, Digest), usize>,
    stack: Vec<(TypeId, &'static StageInfo)>,
    index: Arc<StatIndex>,
}

impl Planner {
    pub(crate) fn new(root: &Path) -> Planner {
        Planner { nodes: Vec::new(), seen: HashMap::new(), stack: Vec::new(), index: stat_index(root) }
    }

    pub(crate) fn index(&self) -> &StatIndex {
        &self.index
    }

    pub(crate) fn key(&self, id: usize) -> Digest {
        self.nodes[id].key
    }

    fn save_index(&self) {
        if let Err(e) = self.index.save() {
            tracing::debug!(error = %e, "stat index not saved");
        }
    }

    /// Plans stage `S` called with `args`; returns its node.
    pub(crate) fn plan<S: Stage>(&mut self, args: S::Args) -> Result<usize, Error> {
        let info = S::INFO;
        let mut params = Params { stage: info, index: &self.index, parts: Vec::new() };
        S::params(&args, &mut params)?;
        let params = params.parts;
        let mut identity = blake3::Hasher::new();
        for p in &params {
            identity.update(&p.hash.0);
        }
        let identity = (TypeId::of::<S>(), Digest::from(identity.finalize()));
        if let Some(&id) = self.seen.get(&identity) {
            return Ok(id);
        }
        if let Some(at) = self.stack.iter().position(|(t, _)| *t == identity.0) {
            let mut stages: Vec<String> = self.stack[at..].iter().map(|(_, i)| i.path()).collect();
            stages.push(info.path());
            return Err(Error::Cycle { stages });
        }
        self.stack.push((identity.0, info));
        let mut plan = Plan { planner: self, stage: info, ancestors: Vec::new(), inputs: Vec::new() };
        let planned = S::inputs(&args, &mut plan);
        let Plan { ancestors, inputs, .. } = plan;
        self.stack.pop();
        planned?;
        let (ancestor_ids, ancestors): (Vec<usize>, Vec<_>) = ancestors.into_iter().unzip();
        let ingredients = Ingredients {
            format: FORMAT,
            stage: info.path(),
            code: info.code_hash,
            salt: info.version.map(str::to_owned),
            helpers: tracked_closure(info.uses)
                .into_iter()
                .map(|t| Named { name: t.path(), hash: t.code_hash })
                .collect(),
            codec: <S::Codec as Codec<S::Output>>::ID.to_owned(),
            params,
            inputs,
            ancestors,
        };
        let id = self.nodes.len();
        self.nodes.push(Node {
            info,
            path: info.path(),
            key: ingredients.key(),
            ingredients,
            ancestors: ancestor_ids,
            persistent: <S::Codec as Codec<S::Output>>::PERSISTENT,
            extension: <S::Codec as Codec<S::Output>>::EXTENSION,
            erased: Box::new(Typed::<S> { args: Mutex::new(Some(args)) }),
        });
        self.seen.insert(identity, id);
        Ok(id)
    }
}

/// The stat index of a cache root, shared by every call in the process.
fn stat_index(root: &Path) -> Arc<StatIndex> {
    static INDEXES: LazyLock<Mutex<HashMap<PathBuf, Arc<StatIndex>>>> = LazyLock::new(Mutex::default);
    let file = root.join("stat-index");
    let Ok(mut indexes) = INDEXES.lock() else {
        return Arc::new(StatIndex::open(file));
    };
    Arc::clone(indexes.entry(root.to_path_buf()).or_insert_with(|| Arc::new(StatIndex::open(file))))
}

/// The store of the current configuration.
pub(crate) fn store_of(scope: &Scope) -> LocalStore {
    LocalStore::new(scope.config.cache_dir())
}

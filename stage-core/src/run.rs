//! One call of a stage: plan every key first, then load or compute what is needed.

use std::any::TypeId;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use crate::codec::Codec;
use crate::config::Scope;
use crate::info::{StageInfo, tracked_closure};
use crate::ingredients::{FORMAT, Ingredients, Named};
use crate::raw::StatIndex;
use crate::runlog::{RunRecord, UsedKey};
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
    let value = crate::exec::execute(&scope, &planner.nodes, root);
    record_run(&scope, &planner.nodes, root);
    let value = value?;
    let typed = Arc::downcast::<S::Output>(value)
        .map_err(|_| internal(S::INFO, "the output has another type"))?;
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

/// Notes the keys this call's pipeline used, for `stage gc`; a cache that cannot be written
/// has already been warned about.
fn record_run(scope: &Scope, nodes: &[Node], root: usize) {
    let used: Vec<UsedKey> = nodes
        .iter()
        .filter(|n| n.persistent)
        .map(|n| UsedKey {
            stage: n.path.clone(),
            key: n.key,
        })
        .collect();
    if used.is_empty() {
        return;
    }
    let record = RunRecord {
        root: nodes[root].path.clone(),
        key: nodes[root].key,
        time_ms: crate::store::now_ms(),
        used,
    };
    if let Err(e) = record.write(scope.config.cache_dir()) {
        tracing::debug!(error = %e, "run record not written");
    }
}

fn internal(info: &StageInfo, what: &str) -> Error {
    Error::Body {
        stage: info.path(),
        source: format!("internal error: {what}").into(),
    }
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
    fn encode(
        &self,
        value: &Value,
        out: crate::PayloadWriter,
    ) -> Result<crate::PayloadWriter, BoxError>;
    /// Decodes a payload whose checksum matched.
    fn decode(&self, bytes: bytes::Bytes) -> Result<Value, BoxError>;
    /// Whether [`Erased::decode_segments`] reads while the payload is checked.
    fn streams(&self) -> bool;
    /// Decodes a payload while another thread reads and checks it.
    fn decode_segments(&self, segments: crate::Segments) -> Result<Value, BoxError>;
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

    fn encode(
        &self,
        value: &Value,
        out: crate::PayloadWriter,
    ) -> Result<crate::PayloadWriter, BoxError> {
        let value = value
            .downcast_ref::<S::Output>()
            .ok_or("internal error: output of another type")?;
        <S::Codec as Codec<S::Output>>::encode(value, out)
    }

    fn decode(&self, bytes: bytes::Bytes) -> Result<Value, BoxError> {
        Ok(Arc::new(<S::Codec as Codec<S::Output>>::decode_verified(
            bytes,
        )?))
    }

    fn streams(&self) -> bool {
        <S::Codec as Codec<S::Output>>::STREAMS
    }

    fn decode_segments(&self, segments: crate::Segments) -> Result<Value, BoxError> {
        Ok(Arc::new(<S::Codec as Codec<S::Output>>::decode_segments(
            segments,
        )?))
    }
}

/// `id+settings` of a codec, as the key records it (`parquet/1+snappy`).
fn codec_id<T, C: Codec<T>>() -> String {
    match C::settings() {
        "" => C::ID.to_owned(),
        settings => format!("{}+{settings}", C::ID),
    }
}

/// Derives the keys of a stage and all its ancestors, each (stage, arguments) once.
pub(crate) struct Planner {
    pub(crate) nodes: Vec<Node>,
    seen: HashMap<(TypeId, Digest), usize>,
    stack: Vec<(TypeId, Digest, &'static StageInfo)>,
    on_stack: HashSet<(TypeId, Digest)>,
    index: Arc<StatIndex>,
}

impl Planner {
    pub(crate) fn new(root: &Path) -> Planner {
        Planner {
            nodes: Vec::new(),
            seen: HashMap::new(),
            stack: Vec::new(),
            on_stack: HashSet::new(),
            index: stat_index(root),
        }
    }

    pub(crate) fn index(&self) -> &StatIndex {
        &self.index
    }

    pub(crate) fn key(&self, id: usize) -> Digest {
        self.nodes[id].key
    }

    pub(crate) fn save_index(&self) {
        if let Err(e) = self.index.save() {
            tracing::debug!(error = %e, "stat index not saved");
        }
    }

    /// Plans stage `S` called with `args`; returns its node.
    pub(crate) fn plan<S: Stage>(&mut self, args: S::Args) -> Result<usize, Error> {
        let info = S::INFO;
        let mut params = Params {
            stage: info,
            index: &self.index,
            parts: Vec::new(),
        };
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
        if self.on_stack.contains(&identity) {
            let at = self
                .stack
                .iter()
                .position(|(t, d, _)| (*t, *d) == identity)
                .unwrap_or(0);
            let mut stages: Vec<String> = self.stack[at..].iter().map(|(.., i)| i.path()).collect();
            stages.push(info.path());
            return Err(Error::Cycle { stages });
        }
        self.stack.push((identity.0, identity.1, info));
        self.on_stack.insert(identity);
        // Deep pipelines (a chain of thousands of stages) recurse this deep: grow the stack
        // on the heap instead of overflowing it.
        let (planned, ancestors, inputs) =
            stacker::maybe_grow(STACK_RED_ZONE, STACK_GROWTH, || {
                let mut plan = Plan {
                    planner: &mut *self,
                    stage: info,
                    ancestors: Vec::new(),
                    inputs: Vec::new(),
                };
                let planned = S::inputs(&args, &mut plan);
                (planned, plan.ancestors, plan.inputs)
            });
        self.stack.pop();
        self.on_stack.remove(&identity);
        planned?;
        let (ancestor_ids, ancestors): (Vec<usize>, Vec<_>) = ancestors.into_iter().unzip();
        let ingredients = Ingredients {
            format: FORMAT,
            stage: info.path(),
            code: info.code_hash,
            salt: info.version.map(str::to_owned),
            helpers: tracked_closure(info.uses)
                .into_iter()
                .map(|t| Named {
                    name: t.path(),
                    hash: t.code_hash,
                })
                .collect(),
            codec: codec_id::<S::Output, S::Codec>(),
            shape: <S::Codec as Codec<S::Output>>::shape(),
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
            erased: Box::new(Typed::<S> {
                args: Mutex::new(Some(args)),
            }),
        });
        self.seen.insert(identity, id);
        Ok(id)
    }
}

/// Grow the stack when less than this is left...
pub(crate) const STACK_RED_ZONE: usize = 128 * 1024;
/// ...by this much.
pub(crate) const STACK_GROWTH: usize = 4 * 1024 * 1024;

/// The stat index of a cache root, shared by every call in the process.
fn stat_index(root: &Path) -> Arc<StatIndex> {
    static INDEXES: LazyLock<Mutex<HashMap<PathBuf, Arc<StatIndex>>>> =
        LazyLock::new(Mutex::default);
    let file = root.join("stat-index");
    let Ok(mut indexes) = INDEXES.lock() else {
        return Arc::new(StatIndex::open(file));
    };
    Arc::clone(
        indexes
            .entry(root.to_path_buf())
            .or_insert_with(|| Arc::new(StatIndex::open(file))),
    )
}

/// The store of the current configuration.
pub(crate) fn store_of(scope: &Scope) -> LocalStore {
    LocalStore::new(scope.config.cache_dir())
}

//! Planning a call: every stage it reaches, each (stage, arguments) once, with its key
//! as far as it can be known without computing anything.
//!
//! A cached ancestor enters a key by the digest of its output, so a key is known once
//! every ancestor's output is: from the ancestor's entry (metadata only, never its
//! payload), or from what this process has already seen of that entry. A stage whose
//! ancestor has to be computed first gets its key when that ancestor's output is known.

use std::any::TypeId;
use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use crate::Error;
use crate::config::Config;
use crate::key::{Ancestor, Digest, FORMAT, HashedFile, Ingredients, Input, Named, StatIndex};
use crate::run::info::{StageInfo, tracked_closure};
use crate::run::items::{Elements, Gather};
use crate::run::param::Params;
use crate::run::record;
use crate::run::stage::{Call, CodecInfo, Dep, Plan};
use crate::store::{Entry, Found, Layered};

/// A stage instance of a call: its key, ingredients, ancestors, and how to run it.
pub(crate) struct Node {
    pub(crate) info: &'static StageInfo,
    pub(crate) path: String,
    pub(crate) call: Arc<dyn Call>,
    pub(crate) codec: CodecInfo,
    /// The ingredients; an ancestor whose output is not known yet has a zero output.
    pub(crate) ingredients: Ingredients,
    /// The ancestors' nodes, in the order of `ingredients.ancestors`.
    pub(crate) ancestors: Vec<usize>,
    /// What the body's ancestor parameters receive, in attribute order (not the `each`).
    pub(crate) bindings: Vec<Binding>,
    /// The raw inputs' resolved paths, in attribute order.
    pub(crate) raw: Vec<PathBuf>,
    /// For a per-item stage: what it goes over.
    pub(crate) map: Option<Map>,
    /// Raw inputs that are missing, keyed by the hash a run recorded (allow-missing).
    pub(crate) missing: Vec<PathBuf>,
    /// The key, when every ancestor's output is known.
    pub(crate) key: Option<Digest>,
    /// What this node's descendants' keys take from it, when known: the blake3 of its
    /// payload (cached), or its key (memory-only).
    pub(crate) output: Option<Digest>,
    /// Its entry, when it was looked up while planning and found, and where.
    pub(crate) entry: Option<Box<(Entry, Found)>>,
}

impl Node {
    pub(crate) fn persistent(&self) -> bool {
        self.codec.persistent
    }
}

impl Map {
    /// The ingredients an item's key starts from: the stage's `ingredients` without what it
    /// goes over (an item's key takes its own element instead, never the others').
    pub(crate) fn item_base(&self, ingredients: &Ingredients) -> Ingredients {
        let mut base = ingredients.clone();
        base.inputs.retain(|i| i.param != self.param);
        base.ancestors.retain(|a| a.param != self.param);
        base
    }
}

/// What one ancestor parameter of a body receives.
pub(crate) enum Binding {
    /// The value of one ancestor node.
    One(usize),
    /// A sweep: the values of these nodes, gathered.
    Sweep {
        nodes: Vec<usize>,
        gather: Box<dyn Gather>,
    },
}

/// What a per-item stage goes over.
pub(crate) struct Map {
    /// The parameter bound to `each(...)`.
    pub(crate) param: String,
    pub(crate) source: Source,
}

pub(crate) enum Source {
    /// The files below a folder, in order of their relative paths.
    Files(Arc<Vec<HashedFile>>),
    /// The elements of an ancestor's value.
    Elements {
        node: usize,
        elements: Arc<dyn Elements>,
    },
}

/// What a stage's inputs turn into while it is planned.
#[derive(Default)]
struct Deps {
    ids: Vec<usize>,
    ancestors: Vec<Ancestor>,
    inputs: Vec<Input>,
    raw: Vec<PathBuf>,
    bindings: Vec<Binding>,
    map: Option<Map>,
    missing: Vec<PathBuf>,
}

/// Derives the nodes of a call, ancestors before descendants.
pub(crate) struct Planner<'a> {
    pub(crate) nodes: Vec<Node>,
    seen: HashMap<(TypeId, Digest), usize>,
    stack: Vec<((TypeId, Digest), &'static StageInfo)>,
    on_stack: HashSet<(TypeId, Digest)>,
    index: Arc<StatIndex>,
    outputs: Outputs,
    config: &'a Config,
    store: &'a Layered,
}

impl<'a> Planner<'a> {
    pub(crate) fn new(config: &'a Config, store: &'a Layered) -> Planner<'a> {
        Planner {
            nodes: Vec::new(),
            seen: HashMap::new(),
            stack: Vec::new(),
            on_stack: HashSet::new(),
            index: stat_index(config.cache_dir()),
            outputs: Outputs::of(config.cache_dir()),
            config,
            store,
        }
    }

    /// Remembers the raw inputs' hashes for the next run (best effort).
    pub(crate) fn save_index(&self) {
        if let Err(e) = self.index.save() {
            tracing::debug!(error = %e, "stat index not saved");
        }
    }

    /// Plans `call` and every ancestor it reaches; returns its node.
    pub(crate) fn plan(&mut self, call: Box<dyn Call>) -> Result<usize, Error> {
        let info = call.info();
        let mut params = Params {
            stage: info,
            index: &self.index,
            config: self.config,
            parts: Vec::new(),
        };
        call.params(&mut params)?;
        let params = params.parts;
        let mut identity = blake3::Hasher::new();
        for p in &params {
            identity.update(&p.hash.0);
        }
        let identity = (call.stage_type(), Digest::from(identity.finalize()));
        if let Some(&id) = self.seen.get(&identity) {
            return Ok(id);
        }
        if self.on_stack.contains(&identity) {
            let at = self
                .stack
                .iter()
                .position(|(id, _)| *id == identity)
                .unwrap_or(0);
            let mut stages: Vec<String> = self.stack[at..].iter().map(|(_, i)| i.path()).collect();
            stages.push(info.path());
            return Err(Error::Cycle { stages });
        }
        let mut plan = Plan {
            deps: Vec::new(),
            _planner: PhantomData,
        };
        call.inputs(&mut plan)?;
        self.stack.push((identity, info));
        self.on_stack.insert(identity);
        // Deep pipelines (a chain of thousands of stages) recurse this deep: grow the stack
        // on the heap instead of overflowing it.
        let deps = stacker::maybe_grow(STACK_RED_ZONE, STACK_GROWTH, || {
            self.plan_deps(info, plan.deps)
        });
        self.stack.pop();
        self.on_stack.remove(&identity);
        let deps = deps?;
        let codec = call.codec(self.config);
        let path = info.path();
        let ingredients = Ingredients {
            format: FORMAT,
            stage: path.clone(),
            code: info.code_hash,
            salt: info.version.map(str::to_owned),
            helpers: tracked_closure(info.uses)
                .into_iter()
                .map(|t| Named {
                    name: t.path(),
                    hash: t.code_hash,
                })
                .collect(),
            codec: codec.id.clone(),
            shape: codec.shape,
            params,
            inputs: deps.inputs,
            ancestors: deps.ancestors,
            element: None,
        };
        if deps.map.is_some() && !codec.persistent {
            return Err(Error::Body {
                stage: info.path(),
                source: "a per-item stage keeps each item in the cache: give it a `cache` (`bincode`, `parquet`, `arrow` or a codec of your own)".into(),
            });
        }
        let known = deps.ids.iter().all(|&a| self.nodes[a].output.is_some());
        let key = known.then(|| ingredients.key());
        let mut node = Node {
            info,
            path,
            call: Arc::from(call),
            codec,
            ingredients,
            ancestors: deps.ids,
            bindings: deps.bindings,
            raw: deps.raw,
            map: deps.map,
            missing: deps.missing,
            key,
            output: None,
            entry: None,
        };
        self.predict(&mut node);
        let id = self.nodes.len();
        self.nodes.push(node);
        self.seen.insert(identity, id);
        Ok(id)
    }

    fn plan_deps(&mut self, info: &'static StageInfo, planned: Vec<Dep>) -> Result<Deps, Error> {
        let mut deps = Deps::default();
        for dep in planned {
            match dep {
                Dep::Ancestor { param, call } => {
                    let id = self.ancestor(&mut deps, param.to_owned(), call)?;
                    deps.bindings.push(Binding::One(id));
                }
                Dep::Raw { param, path } => {
                    let resolved = self.config.resolve_input(path.as_ref());
                    let hash = match self.index.hash(&resolved) {
                        Ok(hash) => Digest::from(hash),
                        Err(source) => {
                            match record::missing_input(self.config, self.store, path, &source) {
                                Some(hash) => {
                                    deps.missing.push(resolved.clone());
                                    hash
                                }
                                None => {
                                    return Err(Error::Input {
                                        stage: info.path(),
                                        path: resolved,
                                        source,
                                    });
                                }
                            }
                        }
                    };
                    deps.inputs.push(Input {
                        param: param.to_owned(),
                        path: path.to_owned(),
                        hash,
                    });
                    deps.raw.push(resolved);
                }
                Dep::EachFile { param, path } => {
                    let ((files, hash), _) = self.raw(info, path, StatIndex::files)?;
                    deps.inputs.push(Input {
                        param: param.to_owned(),
                        path: path.to_owned(),
                        hash: Digest::from(hash),
                    });
                    deps.map = Some(Map {
                        param: param.to_owned(),
                        source: Source::Files(Arc::new(files)),
                    });
                }
                Dep::Each {
                    param,
                    call,
                    elements,
                } => {
                    let node = self.ancestor(&mut deps, param.to_owned(), call)?;
                    deps.map = Some(Map {
                        param: param.to_owned(),
                        source: Source::Elements {
                            node,
                            elements: Arc::from(elements),
                        },
                    });
                }
                Dep::Sweep {
                    param,
                    calls,
                    gather,
                } => {
                    let mut nodes = Vec::with_capacity(calls.len());
                    for (i, call) in calls.into_iter().enumerate() {
                        nodes.push(self.ancestor(&mut deps, format!("{param}[{i}]"), call)?);
                    }
                    deps.bindings.push(Binding::Sweep { nodes, gather });
                }
            }
        }
        Ok(deps)
    }

    /// Plans the ancestor `call`, bound to `param`, into `deps`.
    fn ancestor(
        &mut self,
        deps: &mut Deps,
        param: String,
        call: Box<dyn Call>,
    ) -> Result<usize, Error> {
        let id = self.plan(call)?;
        let node = &self.nodes[id];
        deps.ancestors.push(Ancestor {
            param,
            stage: node.path.clone(),
            name: node.info.display.to_owned(),
            key: node.key.unwrap_or_default(),
            output: node.output.unwrap_or_default(),
        });
        deps.ids.push(id);
        Ok(id)
    }

    /// Reads the raw input written `path` of stage `info` with `read`, resolved against the
    /// data folder; the error names the stage and the absolute path tried.
    fn raw<R>(
        &self,
        info: &'static StageInfo,
        path: &str,
        read: impl FnOnce(&StatIndex, &std::path::Path) -> std::io::Result<R>,
    ) -> Result<(R, PathBuf), Error> {
        let resolved = self.config.resolve_input(path.as_ref());
        let read = read(&self.index, &resolved).map_err(|source| Error::Input {
            stage: info.path(),
            path: resolved.clone(),
            source,
        })?;
        Ok((read, resolved))
    }

    /// Fills in what the node's descendants will take from it, where the plan can know it:
    /// the key of a memory-only node, the digest of a cached node's entry.
    fn predict(&self, node: &mut Node) {
        let Some(key) = node.key else {
            return;
        };
        if !node.persistent() {
            node.output = Some(key);
            return;
        }
        if let Some(output) = self.outputs.get(&key) {
            node.output = Some(output);
            return;
        }
        if let Some((entry, found)) = self.store.lookup(&node.path, &key) {
            self.outputs.remember(key, entry.blake3);
            node.output = Some(entry.blake3);
            node.entry = Some(Box::new((entry, found)));
        }
    }
}

/// Grow the stack when less than this is left...
pub(crate) const STACK_RED_ZONE: usize = 128 * 1024;
/// ...by this much.
pub(crate) const STACK_GROWTH: usize = 4 * 1024 * 1024;

/// The stat index of a cache root, shared by every call in the process: raw inputs' hashes,
/// and the payloads checked earlier.
pub(crate) fn stat_index(root: &Path) -> Arc<StatIndex> {
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

/// The output digests of the entries of each cache folder this process has seen, by key.
///
/// A key names a stage, its code and everything its value was made from, so a call that
/// meets a key again derives its descendants' keys without reading its metadata. (Only a
/// stage that is not a function of its key could give another digest, and then the next
/// entry's digest replaces this one.) Kept per cache folder, so that what a call can know
/// depends on its cache only, not on what else the process ran.
static OUTPUTS: LazyLock<Mutex<HashMap<PathBuf, Outputs>>> = LazyLock::new(Mutex::default);

/// Entries remembered at most per folder; beyond, its memory starts again empty.
const REMEMBERED: usize = 1 << 20;

/// The remembered output digests of one cache folder's entries, by key.
#[derive(Clone, Default)]
pub(crate) struct Outputs(Arc<Mutex<HashMap<Digest, Digest>>>);

impl Outputs {
    /// Those of the cache folder `root`: found once per call, not once per stage.
    pub(crate) fn of(root: &Path) -> Outputs {
        let mut all = OUTPUTS.lock().unwrap_or_else(PoisonError::into_inner);
        match all.get(root) {
            Some(outputs) => outputs.clone(),
            None => all.entry(root.to_path_buf()).or_default().clone(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Digest, Digest>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn get(&self, key: &Digest) -> Option<Digest> {
        self.lock().get(key).copied()
    }

    pub(crate) fn remember(&self, key: Digest, output: Digest) {
        let mut outputs = self.lock();
        if outputs.len() >= REMEMBERED {
            outputs.clear();
        }
        outputs.insert(key, output);
    }

    pub(crate) fn forget(&self, key: &Digest) {
        self.lock().remove(key);
    }
}

pub(crate) fn remember_output(root: &Path, key: Digest, output: Digest) {
    Outputs::of(root).remember(key, output);
}

pub(crate) fn forget_output(root: &Path, key: &Digest) {
    Outputs::of(root).forget(key);
}

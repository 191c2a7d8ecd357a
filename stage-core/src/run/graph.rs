//! The pipeline as data: every stage a call would touch, its key and its state, found
//! without running a body or reading a payload; rendered as Graphviz DOT, Mermaid or JSON.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::Error;
use crate::codec::{Payload, Reads};
use crate::key::{Change, Digest, Input, Param, Reason};
use crate::run::log::ItemCount;
use crate::run::map::{cached_items, file_identity, item_key};
use crate::run::plan::{Node as PlanNode, Planner, Source};
use crate::run::scope::Scope;
use crate::run::stage::{Stage, Typed};
use crate::store::{Folder, Found, Layered, LocalStore};

/// The stages reachable from one call, with their keys and states: see [`graph`].
#[derive(Debug, Clone, Serialize)]
pub struct Graph {
    /// The stages, ancestors before descendants; the last is the one called.
    pub nodes: Vec<Node>,
}

/// One stage of a [`Graph`].
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// The stage's path.
    pub stage: String,
    /// Its display name.
    pub name: String,
    /// Its key for this call, when it can be known before running: it depends on its
    /// cached ancestors' outputs.
    pub key: Option<Digest>,
    /// Its code hash.
    pub code: Digest,
    /// Its cache format.
    pub cache: String,
    /// Its output type.
    pub output: String,
    /// Whether its entry is there, or why not.
    pub state: State,
    /// Whether the call would load or compute it (an ancestor of a cached stage is not).
    pub needed: bool,
    /// Its ancestors: the parameter and the ancestor's index in [`Graph::nodes`].
    pub ancestors: Vec<(String, usize)>,
    /// Its raw inputs.
    pub inputs: Vec<Input>,
    /// Its free parameters.
    pub params: Vec<Param>,
    /// For a per-item stage: its items, and how many a call would compute (when the
    /// elements are known without running anything: the files of a folder, a cached list).
    pub items: Option<ItemCount>,
}

/// The state of a stage's entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum State {
    /// Its entry for this key is in the cache, payload included.
    Cached,
    /// It has no entry for this key, for this reason: it would be computed.
    Outdated(Reason),
    /// Its key waits on the output of ancestors that would be recomputed, and an entry
    /// matches the rest of its ingredients: it is computed only if their output changes.
    Pending(Reason),
}

/// The graph of a call of `S` with `args`: keys and states, nothing computed, no payload
/// read (each entry called cached has its payload checked with a `stat`).
///
/// # Errors
/// When a raw input cannot be read or the stages form a cycle.
pub fn graph<S: Stage>(args: S::Args) -> Result<Graph, Error> {
    let scope = Scope::current();
    let store = super::layered(&scope.config)?;
    let mut planner = Planner::new(&scope.config, &store);
    let root = planner.plan(Box::new(Typed::<S>::new(args)));
    planner.save_index();
    let root = root?;
    let plan_nodes = &planner.nodes;
    let mut nodes: Vec<Node> = Vec::with_capacity(plan_nodes.len());
    let mut folders = Folders::new();
    for n in plan_nodes {
        let state = state(&store, &mut folders, n, plan_nodes);
        let items = items(store.local(), n, &state);
        nodes.push(Node {
            stage: n.path.clone(),
            name: n.info.display.to_owned(),
            key: n.key,
            code: n.info.code_hash,
            cache: n.info.cache.to_owned(),
            output: n.info.output.to_owned(),
            state,
            needed: false,
            ancestors: n
                .ingredients
                .ancestors
                .iter()
                .map(|a| a.param.clone())
                .zip(n.ancestors.iter().copied())
                .collect(),
            inputs: n.ingredients.inputs.clone(),
            params: n.ingredients.params.clone(),
            items,
        });
    }
    let mut todo = vec![root];
    while let Some(i) = todo.pop() {
        if std::mem::replace(&mut nodes[i].needed, true) {
            continue;
        }
        match nodes[i].state {
            State::Cached => {}
            State::Outdated(_) => todo.extend(nodes[i].ancestors.iter().map(|(_, a)| *a)),
            State::Pending(_) => todo.extend(
                plan_nodes[i]
                    .ancestors
                    .iter()
                    .filter(|&&a| plan_nodes[a].output.is_none()),
            ),
        }
    }
    Ok(Graph { nodes })
}

/// The state of node `n`, from metadata (and a `stat` of a payload) only.
fn state(store: &Layered, folders: &mut Folders, n: &PlanNode, plan_nodes: &[PlanNode]) -> State {
    if !n.persistent() {
        return State::Outdated(Reason::MemoryOnly);
    }
    if let Some(key) = n.key {
        let entry = n
            .entry
            .as_deref()
            .cloned()
            .or_else(|| store.lookup(&n.path, &key));
        return match entry {
            Some((entry, Found::Local)) if store.local().has_payload(&entry) => State::Cached,
            Some((_, Found::Remote)) => State::Cached,
            Some(_) => State::Outdated(Reason::Removed),
            None => State::Outdated(reason(folders, store.local(), n).0),
        };
    }
    // Unknown outputs are zero digests: they differ from every entry's, so they show as
    // changed ancestors; whether anything else changed says if the stage may be cut off.
    let (reason, _) = reason(folders, store.local(), n);
    let unknown: Vec<&str> = n
        .ancestors
        .iter()
        .filter(|&&a| plan_nodes[a].output.is_none())
        .map(|&a| plan_nodes[a].path.as_str())
        .collect();
    let only_unknown = reason
        .changes()
        .iter()
        .all(|c| matches!(c, Change::Ancestor(stage) if unknown.contains(&stage.as_str())));
    if only_unknown && !reason.changes().is_empty() {
        State::Pending(reason)
    } else {
        State::Outdated(reason)
    }
}

/// Why node `n` has no entry; each stage's folder is read once per graph.
fn reason(folders: &mut Folders, store: &LocalStore, n: &PlanNode) -> (Reason, Option<usize>) {
    folders
        .entry(n.path.clone())
        .or_insert_with(|| store.folder(&n.path))
        .reason(&n.ingredients)
}

/// The folders of the stages a graph has read, by stage path.
type Folders = HashMap<String, Folder>;

/// The items of per-item stage `n`, and how many a call would compute.
fn items(local: &LocalStore, n: &PlanNode, state: &State) -> Option<ItemCount> {
    let map = n.map.as_ref()?;
    if *state == State::Cached {
        let entry = match n.entry.as_deref() {
            Some((entry, _)) => entry.clone(),
            None => local.find(&n.path, &n.key?)?,
        };
        let bytes = local
            .with_payload(&entry, Reads::Whole, Payload::into_bytes)
            .ok()?
            .ok()?;
        let (_, listed) = crate::store::decode_items(&bytes)?;
        return Some(ItemCount {
            run: 0,
            total: listed.len(),
        });
    }
    let Source::Files(files) = &map.source else {
        return None;
    };
    let base = map.item_base(&n.ingredients);
    let elements: Vec<(Digest, String)> = files
        .iter()
        .map(|f| (file_identity(&f.rel, f.hash), f.rel.clone()))
        .collect();
    let keys: Vec<Digest> = elements
        .iter()
        .map(|(identity, label)| item_key(&base, identity, label))
        .collect();
    let cached = cached_items(local, n, &base, &keys, &elements);
    let missing: std::collections::HashSet<&Digest> = keys
        .iter()
        .zip(&cached)
        .filter(|(_, item)| item.is_none())
        .map(|(key, _)| key)
        .collect();
    Some(ItemCount {
        run: missing.len(),
        total: files.len(),
    })
}

/// Which stages a call of `S` with `args` would compute, and why, ancestors first:
/// `graph(args)?.would_run()` as owned values. A stage whose key waits on a recomputed
/// ancestor is listed too, with that ancestor among its reasons: it runs unless the
/// ancestor's output comes out unchanged. Nothing is computed or read but metadata.
///
/// # Errors
/// When a raw input cannot be read or the stages form a cycle.
pub fn explain<S: Stage>(args: S::Args) -> Result<Vec<(String, Reason)>, Error> {
    let graph = graph::<S>(args)?;
    Ok(graph
        .would_run()
        .into_iter()
        .map(|(name, reason)| (name.to_owned(), reason.clone()))
        .collect())
}

impl Graph {
    /// The stages a call would compute, with the reason, ancestors first: those it
    /// certainly computes and those it computes unless a recomputed ancestor's output
    /// comes out unchanged ([`State::Pending`]).
    #[must_use]
    pub fn would_run(&self) -> Vec<(&str, &Reason)> {
        self.nodes
            .iter()
            .filter(|n| n.needed)
            .filter_map(|n| match &n.state {
                State::Outdated(reason) | State::Pending(reason) => Some((n.name.as_str(), reason)),
                State::Cached => None,
            })
            .collect()
    }

    /// The graph in Graphviz DOT, each stage coloured by its state.
    #[must_use]
    pub fn to_dot(&self) -> String {
        let mut out = String::from(
            "digraph stage {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n",
        );
        for (i, n) in self.nodes.iter().enumerate() {
            let (colour, state) = look(n);
            let _ = writeln!(
                out,
                "  n{i} [label=\"{}\\n{} · {}\\n{}\", fillcolor=\"{colour}\"];",
                escape(&n.name),
                n.cache,
                short_key(n),
                escape(&state)
            );
            for (j, input) in n.inputs.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "  n{i}_in{j} [shape=note, style=filled, fillcolor=\"#ffffff\", label=\"{}\"];",
                    escape(&input.path)
                );
                let _ = writeln!(
                    out,
                    "  n{i}_in{j} -> n{i} [label=\"{}\"];",
                    escape(&input.param)
                );
            }
            for (param, a) in &n.ancestors {
                let _ = writeln!(out, "  n{a} -> n{i} [label=\"{}\"];", escape(param));
            }
        }
        out.push_str("}\n");
        out
    }

    /// The graph as a Mermaid flowchart, each stage coloured by its state.
    #[must_use]
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for (i, n) in self.nodes.iter().enumerate() {
            let (_, state) = look(n);
            let class = class(n);
            let _ = writeln!(
                out,
                "  n{i}[\"{}<br/>{} · {}<br/>{}\"]:::{class}",
                mermaid(&n.name),
                n.cache,
                short_key(n),
                mermaid(&state)
            );
            for (j, input) in n.inputs.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "  n{i}_in{j}[/\"{}\"/] -->|{}| n{i}",
                    mermaid(&input.path),
                    mermaid(&input.param)
                );
            }
            for (param, a) in &n.ancestors {
                let _ = writeln!(out, "  n{a} -->|{}| n{i}", mermaid(param));
            }
        }
        for (class, colour) in [
            ("cached", CACHED),
            ("outdated", OUTDATED),
            ("never", NEVER),
            ("memory", MEMORY),
        ] {
            let _ = writeln!(out, "  classDef {class} fill:{colour},stroke:#555;");
        }
        out
    }

    /// A JSON manifest: every stage with its key, code hash, inputs, parameters, ancestors
    /// and state, for tools that want to know what a run would produce.
    ///
    /// # Panics
    /// Never: the graph is plain data.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

const CACHED: &str = "#b7e1cd";
const OUTDATED: &str = "#fce8b2";
const NEVER: &str = "#e0e0e0";
const MEMORY: &str = "#c9daf8";

fn class(n: &Node) -> &'static str {
    match &n.state {
        State::Cached => "cached",
        State::Outdated(Reason::NeverRun) => "never",
        State::Outdated(Reason::MemoryOnly) => "memory",
        State::Outdated(_) | State::Pending(_) => "outdated",
    }
}

fn short_key(n: &Node) -> String {
    n.key
        .map_or_else(|| "key pending".to_owned(), |k| k.short())
}

fn look(n: &Node) -> (&'static str, String) {
    let colour = match class(n) {
        "cached" => CACHED,
        "never" => NEVER,
        "memory" => MEMORY,
        _ => OUTDATED,
    };
    let items = n.items.map_or_else(String::new, |c| format!(" ({c})"));
    let state = match &n.state {
        State::Cached => format!("cached{items}"),
        State::Outdated(reason) => format!("{reason}{items}"),
        State::Pending(reason) => {
            format!("{reason}{items}: recomputed unless that output comes out unchanged")
        }
    };
    (colour, state)
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn mermaid(s: &str) -> String {
    s.replace('"', "#quot;").replace('`', "#96;")
}

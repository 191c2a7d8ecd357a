//! Per-item stages in a call: the list of items is one entry; each item is an entry of its
//! own, keyed by its element, never by its position. A list that is not cached is made
//! from the items already in the cache (the previous list of the same stage and
//! arguments, else each item's own entry) and the items computed now, in parallel.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use super::{Exec, Job};
use crate::codec::{Payload, Reads};
use crate::key::{Digest, Element, Ingredients};
use crate::run::log::{ItemCount, Outcome};
use crate::run::map::{
    cached_items, file_identity, item_key, item_list, item_path, loader, point_to_list,
};
use crate::run::plan::{Node, Source, forget_output, remember_output};
use crate::run::stage::{Element as InputElement, Inputs, Value};
use crate::store::{
    Entry, Found, INLINE_MAX, KeyLock, ListedItem, decode_items, encode_items, now_ms, payload_name,
};
use crate::{BoxError, Error};

/// A per-item stage being computed.
pub(super) struct MapRun {
    /// The ingredients every item's key starts from.
    base: Ingredients,
    /// Each element's identity and label, in order.
    elements: Vec<(Digest, String)>,
    /// Each element's item key.
    keys: Vec<Digest>,
    /// Each element's item, once it is known.
    items: Vec<Option<ListedItem>>,
    /// How many items are computed.
    computed: usize,
    /// How many items are left to other shards (`STAGE_SHARD`).
    left_to_others: usize,
    /// The elements waiting for the item of each key being computed (duplicates share).
    computing: HashMap<Digest, Vec<usize>>,
    /// The values its body's ancestor parameters receive.
    values: Arc<Vec<Value>>,
    /// The value `each(ancestor)` goes over.
    upstream: Option<Value>,
    lock: Option<KeyLock>,
}

impl Exec<'_> {
    /// Computes the list of per-item stage `i`: finds the items already cached, queues the
    /// others.
    pub(super) fn expand(&self, i: usize, lock: Option<KeyLock>) {
        let node = &self.nodes[i];
        let prepared = self.prepare(i);
        let mut st = self.lock();
        let (base, elements, values, upstream) = match prepared {
            Ok(prepared) => prepared,
            Err(error) => {
                st.fail(error);
                return;
            }
        };
        let keys: Vec<Digest> = elements
            .iter()
            .map(|(identity, label)| item_key(&base, identity, label))
            .collect();
        drop(st);
        let known = cached_items(self.store.local(), node, &base, &keys, &elements);
        let mut run = MapRun {
            base,
            items: known,
            computed: 0,
            left_to_others: 0,
            keys,
            elements,
            computing: HashMap::new(),
            values: Arc::new(values),
            upstream,
            lock,
        };
        let shard = self.scope.config.items_shard();
        let mut others = std::collections::HashSet::new();
        let mut st = self.lock();
        for j in 0..run.elements.len() {
            if run.items[j].is_some() {
                continue;
            }
            if shard.is_some_and(|shard| !shard.owns(&run.keys[j])) {
                others.insert(run.keys[j]);
                continue;
            }
            let waiting = run.computing.entry(run.keys[j]).or_default();
            if waiting.is_empty() {
                st.queue.push_back(Job::Item(i, j));
            }
            waiting.push(j);
        }
        run.left_to_others = others.len();
        let todo = run.computing.len();
        run.computed = todo;
        self.progress.add(todo);
        let done = todo == 0;
        st.maps[i] = Some(run);
        if done {
            drop(st);
            self.finish_map(i);
        }
    }

    /// The item base, the elements, the binding values and the upstream value of node `i`.
    #[allow(clippy::type_complexity, reason = "a private step's results")]
    fn prepare(
        &self,
        i: usize,
    ) -> Result<
        (
            Ingredients,
            Vec<(Digest, String)>,
            Vec<Value>,
            Option<Value>,
        ),
        Error,
    > {
        let node = &self.nodes[i];
        let st = self.lock();
        let values = self.binding_values(&st, i).map_err(|source| Error::Body {
            stage: node.path.clone(),
            source,
        })?;
        let map = node
            .map
            .as_ref()
            .ok_or_else(|| internal(node, "not a per-item stage"))?;
        let base = map.item_base(st.ingredients[i].as_ref().unwrap_or(&node.ingredients));
        let (elements, upstream) = match &map.source {
            Source::Files(files) => (
                files
                    .iter()
                    .map(|f| (file_identity(&f.rel, f.hash), f.rel.clone()))
                    .collect(),
                None,
            ),
            Source::Elements { node: up, elements } => {
                let value = st.values[*up]
                    .clone()
                    .ok_or_else(|| internal(node, "the elements have no value"))?;
                drop(st);
                let all = (0..elements.count(&value))
                    .map(|j| elements.identity(&value, j))
                    .collect::<Result<Vec<_>, BoxError>>()
                    .map_err(|source| Error::Body {
                        stage: node.path.clone(),
                        source,
                    })?;
                (all, Some(value))
            }
        };
        Ok((base, elements, values, upstream))
    }

    /// Computes and writes item `j` of per-item stage `i`.
    pub(super) fn compute_item(&self, i: usize, j: usize) {
        let node = &self.nodes[i];
        let (base, identity, label, key, values, upstream) = {
            let st = self.lock();
            let Some(run) = st.maps[i].as_ref() else {
                return;
            };
            let (identity, label) = run.elements[j].clone();
            (
                run.base.clone(),
                identity,
                label,
                run.keys[j],
                Arc::clone(&run.values),
                run.upstream.clone(),
            )
        };
        self.progress
            .running(node.info.display, &format!("computing {label}"));
        let computed = catch_unwind(AssertUnwindSafe(|| {
            compute_element(node, j, &values, upstream.as_ref())
        }));
        let value = match computed {
            Ok(Ok(value)) => value,
            Ok(Err(source)) => return self.item_failed(i, &label, &source.to_string(), source),
            Err(panic) => {
                let message = format!("panicked: {}", super::jobs::panic_message(panic.as_ref()));
                return self.item_failed(i, &label, &message, message.clone().into());
            }
        };
        let mut ingredients = base;
        ingredients.element = Some(Element {
            label: label.clone(),
            identity,
        });
        let entry = new_entry(node, key, ingredients);
        let settings = &node.codec.settings;
        let written = self
            .store
            .local()
            .write_item(entry, |out| node.call.encode(&value, out, settings));
        let (entry, payload, saved) = match written {
            Ok((entry, payload, Ok(()))) => (entry, payload, true),
            Ok((entry, payload, Err(error))) => {
                let message = format!(
                    "stage `{}`: item `{label}` not saved in `{}`: {error}",
                    node.path,
                    self.store.local().item_dir(&node.path).display()
                );
                self.not_saved(&mut self.lock(), i, &message);
                (entry, payload, false)
            }
            Err(source) => return self.item_failed(i, &label, &source.to_string(), source),
        };
        if saved {
            remember_output(self.root(), key, entry.blake3);
            self.store.share(&entry);
        }
        // Small items, and items that could not be saved, travel in the list itself.
        let inline = (!saved || entry.bytes <= INLINE_MAX).then(|| bytes::Bytes::from(payload));
        let item = ListedItem {
            label: label.clone(),
            identity,
            output: entry.blake3,
            bytes: entry.bytes,
            inline,
        };
        self.progress.done();
        let mut st = self.lock();
        let Some(run) = st.maps[i].as_mut() else {
            return;
        };
        for waiting in run.computing.remove(&key).unwrap_or_default() {
            run.items[waiting] = Some(ListedItem {
                label: run.elements[waiting].1.clone(),
                ..item.clone()
            });
        }
        let done = run.computing.is_empty();
        drop(st);
        if done {
            self.finish_map(i);
        }
    }

    fn item_failed(&self, i: usize, label: &str, message: &str, source: BoxError) {
        let node = &self.nodes[i];
        let mut st = self.lock();
        let key = st.keys[i];
        self.record(
            node,
            key,
            Outcome::Failed(format!("item `{label}`: {message}")),
        );
        st.fail(Error::Item {
            stage: node.path.clone(),
            item: label.to_owned(),
            source,
        });
    }

    /// Every item of per-item stage `i` is known: writes its list and completes it.
    fn finish_map(&self, i: usize) {
        let node = &self.nodes[i];
        let (run, key) = {
            let mut st = self.lock();
            (st.maps[i].take(), st.keys[i])
        };
        let (Some(run), Some(key)) = (run, key) else {
            return;
        };
        if let Some(shard) = self.scope.config.items_shard()
            && run.left_to_others > 0
        {
            self.lock().fail(Error::Sharded {
                stage: node.path.clone(),
                shard: shard.to_string(),
                computed: run.computed,
                left: run.computed + run.left_to_others,
            });
            return;
        }
        let files = matches!(node.map.as_ref().map(|m| &m.source), Some(Source::Files(_)));
        let items: Vec<ListedItem> = run.items.into_iter().flatten().collect();
        let list = encode_items(files, &items);
        let ingredients = self.lock().ingredients[i]
            .clone()
            .unwrap_or_else(|| node.ingredients.clone());
        let entry = new_entry(node, key, ingredients);
        let written = self.store.local().write(entry, |out| {
            std::io::Write::write_all(out, &list)?;
            Ok(())
        });
        drop(run.lock);
        let reason = self.lock().reasons[i]
            .clone()
            .unwrap_or(crate::Reason::NeverRun);
        let count = ItemCount {
            run: run.computed,
            total: run.keys.len(),
        };
        self.record_items(node, Some(key), Outcome::Computed(reason), Some(count));
        let digest = match written {
            Ok(entry) => {
                self.store.share(&entry);
                point_to_list(self.store.local(), node, &run.base, &entry.key);
                Some(entry.blake3)
            }
            Err(e) => {
                let mut st = self.lock();
                self.save_failed(&mut st, i, &e.error);
                e.entry.map(|e| e.blake3)
            }
        };
        let value = node.call.items(
            Arc::new(item_list(node, &run.base, files, items)),
            loader(self.store, node),
        );
        let mut st = self.lock();
        st.outputs[i] = digest;
        if let Some(digest) = digest {
            remember_output(self.root(), key, digest);
            if st.nearest[i] == Some(digest) {
                self.unchanged(node, key);
            }
        }
        self.notify_output(&mut st, i);
        Self::complete(&mut st, i, value);
        self.release_inputs(&mut st, i);
        self.free_values(&mut st);
    }

    /// The value of a cached list: its items, when the ones kept apart are all there.
    pub(super) fn read_items(
        &self,
        i: usize,
        entry: &Entry,
        found: Found,
    ) -> Result<Value, BoxError> {
        let node = &self.nodes[i];
        let bytes = self
            .store
            .with_payload(entry, found, Reads::Whole, Payload::into_bytes)??;
        let (files, items) = decode_items(&bytes).ok_or("the list of items is damaged")?;
        let map = node
            .map
            .as_ref()
            .ok_or("internal error: not a per-item stage")?;
        let list = item_list(node, &map.item_base(&entry.ingredients), files, items);
        if self.store.remote().is_none() {
            let local = self.store.local();
            let missing = list.items.iter().find(|item| {
                item.inline.is_none()
                    && std::fs::metadata(item_path(local, node, &item.key))
                        .map_or(true, |m| m.len() != item.bytes)
            });
            if let Some(item) = missing {
                forget_output(self.root(), &entry.key);
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("item `{}` is missing", item.label),
                )
                .into());
            }
        }
        Ok(node.call.items(Arc::new(list), loader(self.store, node)))
    }
}

/// Runs the body of per-item stage `node` for element `j`.
fn compute_element(
    node: &Node,
    j: usize,
    values: &[Value],
    upstream: Option<&Value>,
) -> Result<Value, BoxError> {
    let map = node
        .map
        .as_ref()
        .ok_or("internal error: not a per-item stage")?;
    let compute = |element: InputElement<'_>| {
        node.call.compute_item(&Inputs {
            values,
            raw: &node.raw,
            element: Some(element),
        })
    };
    match &map.source {
        Source::Files(files) => compute(InputElement::File(&files[j].abs)),
        Source::Elements { elements, .. } => {
            let upstream = upstream.ok_or("internal error: the elements have no value")?;
            let mut result = None;
            elements.with_element(upstream, j, &mut |element| {
                result = Some(compute(InputElement::Value(element)));
            })?;
            result.ok_or("internal error: no element")?
        }
    }
}

/// The metadata of an entry about to be written: everything but what writing it tells.
pub(super) fn new_entry(node: &Node, key: Digest, ingredients: Ingredients) -> Entry {
    Entry {
        key,
        ingredients,
        output: node.info.output.to_owned(),
        payload: payload_name(&key, node.codec.extension),
        bytes: 0,
        blake3: Digest::default(),
        segments: Vec::new(),
        created_ms: now_ms(),
        compute_ms: 0,
    }
}

fn internal(node: &Node, what: &str) -> Error {
    Error::Body {
        stage: node.path.clone(),
        source: format!("internal error: {what}").into(),
    }
}

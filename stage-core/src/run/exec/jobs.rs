//! The jobs of a call: load an entry, compute a stage, write an entry.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use super::map::new_entry;
use super::{Exec, Job, LOCK_POLL, State};
use crate::error::warn;
use crate::key::{Digest, Reason};
use crate::run::log::{Event, ItemCount, Outcome};
use crate::run::plan::{Binding, Node, forget_output, remember_output};
use crate::run::stage::{Inputs, Value};
use crate::store::{Entry, Found, KeyLock, LockAttempt};
use crate::{BoxError, Error};

impl Exec<'_> {
    pub(super) fn load(&self, i: usize) {
        let node = &self.nodes[i];
        let found = self.lock().found[i].clone();
        let loaded = found
            .ok_or_else(|| "entry vanished".into())
            .and_then(|(entry, found)| self.read(i, &entry, found));
        let mut st = self.lock();
        st.undecided -= 1;
        match loaded {
            Ok(value) => {
                self.record(node, st.keys[i], Outcome::Loaded);
                Self::complete(&mut st, i, value);
            }
            Err(e) => {
                let missing = e
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound);
                if let Some(key) = st.keys[i] {
                    forget_output(self.root(), &key);
                }
                let reason = if missing {
                    Reason::Removed
                } else {
                    warn(&format!(
                        "stage `{}`: cache entry {} is damaged ({e}); recomputing",
                        node.path,
                        st.keys[i].map_or_else(String::new, |k| k.short())
                    ));
                    Reason::Damaged
                };
                // Stages keyed by the output it had must learn it again.
                for d in st.value_waiters[i].clone() {
                    if st.keys[d].is_some() && !st.output_waiters[i].contains(&d) {
                        st.output_waiters[i].push(d);
                        st.unknown[d] += 1;
                        st.keys[d] = None;
                    }
                }
                self.compute_path(&mut st, i, reason);
            }
        }
        self.free_values(&mut st);
    }

    /// The values a body's ancestor parameters receive, a sweep's gathered.
    pub(super) fn binding_values(&self, st: &State, i: usize) -> Result<Vec<Value>, BoxError> {
        let value = |a: usize| {
            st.values[a]
                .clone()
                .ok_or_else(|| BoxError::from("internal error: an ancestor has no value"))
        };
        self.nodes[i]
            .bindings
            .iter()
            .map(|binding| match binding {
                Binding::One(a) => value(*a),
                Binding::Sweep { nodes, gather } => {
                    let values = nodes
                        .iter()
                        .map(|&a| value(a))
                        .collect::<Result<Vec<_>, _>>()?;
                    gather.gather(&values)
                }
            })
            .collect()
    }

    pub(super) fn read(&self, i: usize, entry: &Entry, found: Found) -> Result<Value, BoxError> {
        let node = &self.nodes[i];
        tracing::Span::current().record("bytes", entry.bytes);
        if node.map.is_some() {
            return self.read_items(i, entry, found);
        }
        self.store
            .with_payload(entry, found, node.codec.reads, |payload| {
                guarded(|| node.call.decode(payload))
            })?
    }

    /// Takes the lock of node `i`'s key, so that no other thread or process computes it
    /// too; one that got there first may have written its entry meanwhile.
    fn claim(&self, i: usize) -> Claim {
        let node = &self.nodes[i];
        let key = self.lock().keys[i];
        let (true, Some(key)) = (node.persistent(), key) else {
            return Claim::Ours(None);
        };
        let lock = match self.store.local().try_lock(&node.path, &key) {
            LockAttempt::Busy => {
                self.lock()
                    .delayed
                    .push((Instant::now() + LOCK_POLL, Job::Compute(i)));
                return Claim::Later;
            }
            LockAttempt::Held(held) => Some(held),
            LockAttempt::Unavailable => None,
        };
        if let Some((entry, found)) = self.store.lookup(&node.path, &key)
            && let Ok(value) = self.read(i, &entry, found)
        {
            let mut st = self.lock();
            self.release_inputs(&mut st, i);
            st.outputs[i] = Some(entry.blake3);
            self.notify_output(&mut st, i);
            self.record(node, Some(key), Outcome::Loaded);
            Self::complete(&mut st, i, value);
            return Claim::Done;
        }
        Claim::Ours(lock)
    }

    pub(super) fn compute(&self, i: usize) {
        let node = &self.nodes[i];
        let lock = match self.claim(i) {
            Claim::Ours(lock) => lock,
            Claim::Later | Claim::Done => return,
        };
        if let Some(path) = node.missing.first() {
            let mut st = self.lock();
            self.release_inputs(&mut st, i);
            st.fail(missing_input(node, path));
            return;
        }
        if node.map.is_some() {
            self.expand(i, lock);
            return;
        }
        let inputs = {
            let st = self.lock();
            self.binding_values(&st, i)
        };
        let inputs = match inputs {
            Ok(inputs) => inputs,
            Err(source) => {
                self.lock().fail(Error::Body {
                    stage: node.path.clone(),
                    source,
                });
                return;
            }
        };
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| {
            node.call.compute(&Inputs {
                values: &inputs,
                raw: &node.raw,
                element: None,
            })
        }));
        let compute_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        drop(inputs);
        let mut st = self.lock();
        self.release_inputs(&mut st, i);
        match result {
            Ok(Ok(value)) => {
                let reason = st.reasons[i].clone().unwrap_or(Reason::NeverRun);
                let span = tracing::Span::current();
                span.record("outcome", "miss");
                span.record("reason", tracing::field::display(&reason));
                tracing::info!(reason = %reason, seconds = started.elapsed().as_secs_f64(), "computed");
                self.record(node, st.keys[i], Outcome::Computed(reason));
                if node.persistent() {
                    if st.keys[i].is_some() {
                        Self::queue_write(&mut st, i, Value::clone(&value), lock, compute_ms);
                    } else if st.orphaned[i] {
                        self.not_saved(&mut st, i, "an ancestor's output could not be encoded");
                    } else {
                        st.unwritten[i] = Some((Value::clone(&value), lock, compute_ms));
                    }
                }
                Self::complete(&mut st, i, value);
            }
            Ok(Err(source)) => {
                self.record(node, st.keys[i], Outcome::Failed(source.to_string()));
                st.fail(Error::Body {
                    stage: node.path.clone(),
                    source,
                });
            }
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                self.record(
                    node,
                    st.keys[i],
                    Outcome::Failed(format!("panicked: {message}")),
                );
                st.fail(Error::Panic {
                    stage: node.path.clone(),
                    message,
                });
            }
        }
        self.free_values(&mut st);
    }

    pub(super) fn queue_write(
        st: &mut State,
        i: usize,
        value: Value,
        lock: Option<KeyLock>,
        compute_ms: u64,
    ) {
        st.queue.push_front(Job::Write {
            node: i,
            value,
            lock,
            compute_ms,
        });
    }

    /// The ancestors' values are needed by one stage fewer.
    pub(super) fn release_inputs(&self, st: &mut State, i: usize) {
        for &a in &self.nodes[i].ancestors {
            st.holds[a] = st.holds[a].saturating_sub(1);
        }
    }

    pub(super) fn write(&self, i: usize, value: &Value, compute_ms: u64, lock: Option<KeyLock>) {
        let node = &self.nodes[i];
        let (key, ingredients) = {
            let st = self.lock();
            let ingredients = st.ingredients[i]
                .clone()
                .unwrap_or_else(|| node.ingredients.clone());
            (st.keys[i].unwrap_or_default(), ingredients)
        };
        let entry = Entry {
            compute_ms,
            ..new_entry(node, key, ingredients)
        };
        let settings = &node.codec.settings;
        let written = self
            .store
            .local()
            .write(entry, |out| node.call.encode(value, out, settings));
        drop(lock);
        if let Ok(entry) = &written {
            self.store.share(entry);
        }
        let mut st = self.lock();
        let (digest, failure) = match written {
            Ok(entry) => {
                let span = tracing::Span::current();
                span.record("outcome", "written");
                span.record("bytes", entry.bytes);
                let digest = entry.blake3;
                st.found[i] = Some((entry, Found::Local));
                (Some(digest), None)
            }
            Err(e) => (e.entry.map(|e| e.blake3), Some(e.error)),
        };
        st.outputs[i] = digest;
        if let Some(digest) = digest {
            remember_output(self.root(), key, digest);
            if st.nearest[i] == Some(digest) {
                tracing::info!("recomputed, output unchanged");
                self.unchanged(node, key);
            }
        }
        self.notify_output(&mut st, i);
        if let Some(source) = failure {
            self.save_failed(&mut st, i, &source);
        }
    }

    pub(super) fn save_failed(&self, st: &mut State, i: usize, source: &BoxError) {
        let node = &self.nodes[i];
        let dir = self.store.local().stage_dir(&node.path);
        if self.scope.config.is_strict() {
            st.fail(Error::Save {
                stage: node.path.clone(),
                path: dir,
                source: source.to_string().into(),
            });
        } else {
            let message = format!(
                "stage `{}`: entry not saved in `{}`: {source}",
                node.path,
                dir.display()
            );
            self.not_saved(st, i, &message);
        }
    }

    /// An entry could not be saved: the first of a call is a warning, the others are
    /// counted in one more at the end (a full disk fails every write after the first);
    /// the run log has each.
    pub(super) fn not_saved(&self, st: &mut State, i: usize, message: &str) {
        let node = &self.nodes[i];
        st.not_saved += 1;
        if st.not_saved == 1 {
            warn(message);
        } else {
            tracing::debug!("{message}");
        }
        self.record(node, st.keys[i], Outcome::NotSaved(message.to_owned()));
    }

    pub(super) fn record(&self, node: &Node, key: Option<Digest>, outcome: Outcome) {
        self.record_items(node, key, outcome, None);
    }

    /// Records what happened to `node`, with its items for a per-item stage.
    pub(super) fn record_items(
        &self,
        node: &Node,
        key: Option<Digest>,
        outcome: Outcome,
        items: Option<ItemCount>,
    ) {
        if !matches!(outcome, Outcome::NotSaved(_) | Outcome::Failed(_)) {
            self.progress.done();
        }
        if matches!(outcome, Outcome::Loaded) {
            tracing::Span::current().record("outcome", "hit");
            tracing::info!("loaded");
        }
        self.scope.record(Event {
            stage: node.path.clone(),
            name: node.info.display.to_owned(),
            key: key.unwrap_or_default(),
            outcome,
            items,
        });
    }

    /// Marks the computation of `node` under `key` as one whose output did not change.
    pub(super) fn unchanged(&self, node: &Node, key: Digest) {
        self.scope.update(|events| {
            let event = events.iter_mut().rev().find(|e| {
                e.stage == node.path
                    && matches!(e.outcome, Outcome::Computed(_))
                    && (e.key == key || e.key == Digest::default())
            });
            if let Some(event) = event
                && let Outcome::Computed(reason) = &event.outcome
            {
                event.outcome = Outcome::Unchanged(reason.clone());
                event.key = key;
            }
        });
    }
}

/// What [`Exec::claim`] found.
enum Claim {
    /// Compute it, holding this lock (when locks can be taken).
    Ours(Option<KeyLock>),
    /// Another holds the lock: try again later.
    Later,
    /// Another computed it meanwhile: it was read.
    Done,
}

/// A stage that has to run while one of its raw inputs is missing (allow-missing).
fn missing_input(node: &Node, path: &std::path::Path) -> Error {
    Error::Input {
        stage: node.path.clone(),
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the input is missing, and no cache has the result of this stage for the content \
             the latest run recorded for it (STAGE_ALLOW_MISSING)",
        ),
    }
}

/// Runs a decoder, its panic an error. Only checked bytes ever reach a decoder: a damaged
/// length field in an unchecked payload can make a decoder allocate exabytes, which aborts
/// the process (no unwinding, so `catch_unwind` cannot turn it into a recompute).
fn guarded(decode: impl FnOnce() -> Result<Value, BoxError>) -> Result<Value, BoxError> {
    catch_unwind(AssertUnwindSafe(decode))
        .unwrap_or_else(|p| Err(format!("decoder panicked: {}", panic_message(p.as_ref())).into()))
}

pub(super) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned())
}

//! Runs a planned call: loads what is cached, computes what is not, ancestors before
//! descendants, on up to `jobs` threads, writing entries behind the computation.
//!
//! A stage whose key waits on an ancestor's output (because that ancestor is computed in
//! this call) learns its key when the ancestor's payload is encoded; if an entry of that
//! key exists, the stage is cut off: read (or, when nothing needs its value, not even
//! read), never computed.

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::warn;
use crate::key::{Digest, Ingredients, Reason};
use crate::run::log::{Event, Outcome};
use crate::run::plan::{Node, forget_output, remember_output};
use crate::run::progress::Progress;
use crate::run::scope::{Scope, with_scope};
use crate::run::stage::{Inputs, Value};
use crate::store::{Entry, Found, KeyLock, Layered, LockAttempt, now_ms, payload_name};
use crate::{BoxError, Error};

/// How long a stage whose key another thread or process is computing waits before it
/// looks again.
const LOCK_POLL: Duration = Duration::from_millis(15);

/// Runs the plan `nodes` and returns the value of node `root`, with the key each node
/// ended up with (none for those whose key was never learnt).
pub(crate) fn execute(
    scope: &Scope,
    store: &Layered,
    nodes: &[Node],
    root: usize,
) -> (Result<Value, Error>, Vec<Option<Digest>>) {
    let exec = Exec {
        nodes,
        store,
        scope,
        state: Mutex::new(State::new(nodes)),
        wake: Condvar::new(),
        progress: Progress::new(&scope.config),
        entries: Mutex::new(HashMap::new()),
    };
    {
        let mut st = exec.lock();
        st.root = root;
        exec.want(&mut st, root, true);
    }
    let touched = exec
        .lock()
        .status
        .iter()
        .filter(|s| **s != Status::Untouched)
        .count();
    exec.progress.start(touched);
    let workers = scope.config.max_jobs().min(nodes.len()).max(1);
    std::thread::scope(|s| {
        for _ in 1..workers {
            s.spawn(|| with_scope(scope.clone(), || exec.work()));
        }
        exec.work();
    });
    exec.progress.finish();
    let mut st = exec
        .state
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let keys = std::mem::take(&mut st.keys);
    if let Some(error) = st.error.take() {
        return (Err(error), keys);
    }
    let value = st.values[root].take().ok_or_else(|| Error::Body {
        stage: nodes[root].path.clone(),
        source: "internal error: the call ended without a value".into(),
    });
    (value, keys)
}

enum Job {
    Load(usize),
    Compute(usize),
    Write {
        node: usize,
        value: Value,
        lock: Option<KeyLock>,
        compute_ms: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Untouched,
    /// Waiting for ancestors' outputs, to learn its key.
    Resolving,
    /// Its key and output are known and its value is not (yet) needed.
    Known,
    /// Computed once these many ancestors' values are there.
    Waiting(usize),
    /// A load or a computation is queued or running.
    Queued,
    Done,
}

struct State {
    root: usize,
    status: Vec<Status>,
    queue: VecDeque<Job>,
    delayed: Vec<(Instant, Job)>,
    running: usize,
    values: Vec<Option<Value>>,
    /// Whether some stage needs the node's value (not only its output).
    wanted: Vec<bool>,
    /// Stages computing with this node's value that have not finished.
    holds: Vec<usize>,
    /// Stages waiting for this node's value.
    value_waiters: Vec<Vec<usize>>,
    /// Stages waiting for this node's output, to learn their key.
    output_waiters: Vec<Vec<usize>>,
    /// How many ancestors' outputs a stage still waits for.
    unknown: Vec<usize>,
    /// A stage whose ancestor's output will never be known (it could not be encoded).
    orphaned: Vec<bool>,
    keys: Vec<Option<Digest>>,
    outputs: Vec<Option<Digest>>,
    /// The ingredients a stage's key was made of, with its ancestors' outputs filled in.
    ingredients: Vec<Option<Ingredients>>,
    found: Vec<Option<(Entry, Found)>>,
    reasons: Vec<Option<Reason>>,
    /// The payload digest of the entry a recomputed stage's reason compared with.
    nearest: Vec<Option<Digest>>,
    /// A computed value waiting for its key before it can be written.
    unwritten: Vec<Option<(Value, Option<KeyLock>, u64)>>,
    /// Stages resolving their key, and loads in flight: while there are any, a later
    /// decision may still need any value, so none is freed.
    undecided: usize,
    error: Option<Error>,
}

impl State {
    fn new(nodes: &[Node]) -> State {
        let n = nodes.len();
        State {
            root: 0,
            status: vec![Status::Untouched; n],
            queue: VecDeque::new(),
            delayed: Vec::new(),
            running: 0,
            values: vec![None; n],
            wanted: vec![false; n],
            holds: vec![0; n],
            value_waiters: vec![Vec::new(); n],
            output_waiters: vec![Vec::new(); n],
            unknown: vec![0; n],
            orphaned: vec![false; n],
            keys: nodes.iter().map(|n| n.key).collect(),
            outputs: nodes.iter().map(|n| n.output).collect(),
            ingredients: nodes
                .iter()
                .map(|n| n.key.map(|_| n.ingredients.clone()))
                .collect(),
            found: nodes.iter().map(|n| n.entry.clone()).collect(),
            reasons: vec![None; n],
            nearest: vec![None; n],
            unwritten: (0..n).map(|_| None).collect(),
            undecided: 0,
            error: None,
        }
    }

    /// The next job to run: writes first, so entries are committed as early as possible;
    /// after an error, only writes (nothing computed is lost).
    fn next_job(&mut self) -> Option<Job> {
        let now = Instant::now();
        let mut i = 0;
        while i < self.delayed.len() {
            if self.delayed[i].0 <= now {
                let (_, job) = self.delayed.swap_remove(i);
                self.queue.push_back(job);
            } else {
                i += 1;
            }
        }
        if let Some(at) = self
            .queue
            .iter()
            .position(|j| matches!(j, Job::Write { .. }))
        {
            return self.queue.remove(at);
        }
        if self.error.is_some() {
            self.queue.clear();
            self.delayed.clear();
            return None;
        }
        self.queue.pop_front()
    }

    fn fail(&mut self, error: Error) {
        self.error.get_or_insert(error);
    }
}

struct Exec<'a> {
    nodes: &'a [Node],
    store: &'a Layered,
    scope: &'a Scope,
    state: Mutex<State>,
    wake: Condvar,
    progress: Progress,
    /// The entries of each stage met by a miss, read once per call: what a reason is
    /// computed against.
    entries: Mutex<HashMap<String, Arc<Vec<Entry>>>>,
}

/// What the cache holds for a stage whose key is known.
enum Lookup {
    Hit(Box<(Entry, Found)>),
    Miss(Reason, Option<Digest>),
}

impl Exec<'_> {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Node `i` is needed: its value (`value`), or only its output, for a descendant's key.
    fn want(&self, st: &mut State, i: usize, value: bool) {
        if value && !st.wanted[i] {
            st.wanted[i] = true;
            if st.status[i] == Status::Known {
                self.value_of_known(st, i);
                return;
            }
        }
        if value && st.status[i] == Status::Done && st.values[i].is_none() {
            // Freed, and wanted again by a later decision: read it back.
            if self.nodes[i].persistent() && st.found[i].is_some() {
                Self::fetch(st, i);
            }
            return;
        }
        if st.status[i] == Status::Untouched {
            stacker::maybe_grow(
                crate::run::plan::STACK_RED_ZONE,
                crate::run::plan::STACK_GROWTH,
                || {
                    self.start(st, i);
                },
            );
        }
    }

    /// Starts on node `i`: with its key, decides; without, waits for the outputs it lacks.
    fn start(&self, st: &mut State, i: usize) {
        if st.keys[i].is_some() {
            self.decide(st, i);
            return;
        }
        st.status[i] = Status::Resolving;
        st.undecided += 1;
        for &a in &self.nodes[i].ancestors {
            if st.outputs[a].is_none() && !st.orphaned[a] {
                self.want(st, a, false);
            }
            if st.outputs[a].is_none() {
                if st.orphaned[a] {
                    st.orphaned[i] = true;
                } else {
                    st.output_waiters[a].push(i);
                    st.unknown[i] += 1;
                }
            }
        }
        if st.unknown[i] == 0 && st.status[i] == Status::Resolving {
            self.resolved(st, i);
        }
    }

    /// Every ancestor's output of node `i` is known (or lost): its key follows.
    fn resolved(&self, st: &mut State, i: usize) {
        let key = self.settle_key(st, i);
        if st.status[i] != Status::Resolving {
            // Computed already (its key was lost track of by a failed load): write it.
            if let Some((value, lock, ms)) = st.unwritten[i].take() {
                if key.is_some() {
                    Self::queue_write(st, i, value, lock, ms);
                } else {
                    self.not_saved(st, i, "an ancestor's output could not be encoded");
                }
            }
            return;
        }
        st.undecided -= 1;
        st.status[i] = Status::Untouched;
        if key.is_some() {
            self.decide(st, i);
        } else {
            self.compute_path(
                st,
                i,
                Reason::changed(crate::key::Change::Ancestor(self.orphan_ancestor(st, i))),
            );
        }
        self.free_values(st);
    }

    /// The key of node `i` from its ancestors' outputs as known now; `None` when one is lost.
    fn settle_key(&self, st: &mut State, i: usize) -> Option<Digest> {
        if st.orphaned[i] {
            st.keys[i] = None;
            return None;
        }
        let node = &self.nodes[i];
        let mut ingredients = node.ingredients.clone();
        for (slot, &a) in ingredients.ancestors.iter_mut().zip(&node.ancestors) {
            slot.key = st.keys[a].unwrap_or_default();
            slot.output = st.outputs[a].unwrap_or_default();
        }
        let key = ingredients.key();
        st.keys[i] = Some(key);
        st.ingredients[i] = Some(ingredients);
        if !node.persistent() {
            st.outputs[i] = Some(key);
            self.notify_output(st, i);
        }
        Some(key)
    }

    fn orphan_ancestor(&self, st: &State, i: usize) -> String {
        self.nodes[i]
            .ancestors
            .iter()
            .find(|&&a| st.orphaned[a] || st.outputs[a].is_none())
            .map_or_else(String::new, |&a| self.nodes[a].path.clone())
    }

    /// Node `i`'s key is known: a hit gives its output (and its value, when wanted); a
    /// miss computes it.
    fn decide(&self, st: &mut State, i: usize) {
        match self.find(st, i) {
            Lookup::Hit(hit) => {
                st.outputs[i] = Some(hit.0.blake3);
                st.found[i] = Some(*hit);
                st.status[i] = Status::Known;
                self.notify_output(st, i);
                if st.wanted[i] {
                    self.value_of_known(st, i);
                }
            }
            Lookup::Miss(reason, nearest) => {
                st.nearest[i] = nearest;
                if self.nodes[i].persistent() || st.wanted[i] {
                    self.compute_path(st, i, reason);
                } else {
                    st.reasons[i] = Some(reason);
                    st.status[i] = Status::Known;
                }
            }
        }
    }

    /// The entry of node `i`'s key, or why there is none.
    fn find(&self, st: &State, i: usize) -> Lookup {
        let node = &self.nodes[i];
        if !node.persistent() {
            return Lookup::Miss(Reason::MemoryOnly, None);
        }
        let Some(key) = st.keys[i] else {
            return Lookup::Miss(Reason::NeverRun, None);
        };
        if let Some(found) = st.found[i].as_ref().filter(|(e, _)| e.key == key) {
            return Lookup::Hit(Box::new(found.clone()));
        }
        if let Some(found) = self.store.lookup(&node.path, &key) {
            return Lookup::Hit(Box::new(found));
        }
        let ingredients = st.ingredients[i].as_ref().unwrap_or(&node.ingredients);
        let (reason, nearest) = self.reason(&node.path, ingredients);
        Lookup::Miss(reason, nearest)
    }

    /// Why a stage with `ingredients` recomputes, compared with its nearest entry, and
    /// that entry's payload digest.
    fn reason(&self, stage: &str, ingredients: &Ingredients) -> (Reason, Option<Digest>) {
        let entries = {
            let mut all = self
                .entries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(
                all.entry(stage.to_owned())
                    .or_insert_with(|| Arc::new(self.store.local().entries(stage))),
            )
        };
        let (reason, nearest) = ingredients.reason(entries.iter().map(|e| &e.ingredients));
        if matches!(reason, Reason::NeverRun) && self.store.local().holds_other_format(stage) {
            return (Reason::Format, None);
        }
        (reason, nearest.map(|n| entries[n].blake3))
    }

    /// The value of node `i`, whose key and output are known: read, or (kept in memory
    /// only) computed.
    fn value_of_known(&self, st: &mut State, i: usize) {
        if self.nodes[i].persistent() && st.found[i].is_some() {
            Self::fetch(st, i);
        } else {
            let reason = st.reasons[i].take().unwrap_or(Reason::MemoryOnly);
            self.compute_path(st, i, reason);
        }
    }

    /// Queues the load of node `i`, whose entry was found.
    fn fetch(st: &mut State, i: usize) {
        st.status[i] = Status::Queued;
        st.undecided += 1;
        st.queue.push_back(Job::Load(i));
    }

    /// Node `i` is computed once its ancestors' values are there.
    fn compute_path(&self, st: &mut State, i: usize, reason: Reason) {
        st.reasons[i] = Some(reason);
        if self.nodes[i].persistent() {
            // Its output is known when it is encoded, whatever an old entry said.
            st.outputs[i] = None;
        }
        let mut left = 0;
        for &a in &self.nodes[i].ancestors {
            self.want(st, a, true);
            st.holds[a] += 1;
            if st.status[a] != Status::Done {
                left += 1;
                st.value_waiters[a].push(i);
            }
        }
        self.track_outputs(st, i);
        if left == 0 {
            st.status[i] = Status::Queued;
            st.queue.push_back(Job::Compute(i));
        } else {
            st.status[i] = Status::Waiting(left);
        }
    }

    /// A stage computed with ancestors that are computed in this call too gets its final
    /// key from their outputs, once they are encoded.
    fn track_outputs(&self, st: &mut State, i: usize) {
        if st.keys[i].is_none() {
            return;
        }
        for &a in &self.nodes[i].ancestors {
            if st.outputs[a].is_none() && !st.output_waiters[a].contains(&i) {
                st.output_waiters[a].push(i);
                st.unknown[i] += 1;
            }
        }
        if st.unknown[i] > 0 {
            st.keys[i] = None;
        }
    }

    /// Node `i`'s output is known (or lost): the stages waiting for it learn their key.
    fn notify_output(&self, st: &mut State, i: usize) {
        for d in std::mem::take(&mut st.output_waiters[i]) {
            if st.outputs[i].is_none() {
                st.orphaned[d] = true;
            }
            st.unknown[d] -= 1;
            if st.unknown[d] == 0 {
                self.resolved(st, d);
            }
        }
    }

    fn complete(st: &mut State, i: usize, value: Value) {
        st.values[i] = Some(value);
        st.status[i] = Status::Done;
        for d in std::mem::take(&mut st.value_waiters[i]) {
            if let Status::Waiting(n) = st.status[d] {
                if n == 1 {
                    st.status[d] = Status::Queued;
                    st.queue.push_back(Job::Compute(d));
                } else {
                    st.status[d] = Status::Waiting(n - 1);
                }
            }
        }
    }

    /// Frees the values nobody needs any more, once no decision is pending.
    fn free_values(&self, st: &mut State) {
        if st.undecided > 0 {
            return;
        }
        for a in 0..self.nodes.len() {
            if st.holds[a] == 0 && a != st.root && st.status[a] == Status::Done {
                st.values[a] = None;
            }
        }
    }

    /// A worker: runs jobs until none is queued, delayed or running.
    fn work(&self) {
        loop {
            let job = {
                let mut st = self.lock();
                loop {
                    if let Some(job) = st.next_job() {
                        st.running += 1;
                        break job;
                    }
                    if st.running == 0 && st.queue.is_empty() && st.delayed.is_empty() {
                        self.wake.notify_all();
                        return;
                    }
                    let timeout = st
                        .delayed
                        .iter()
                        .map(|(at, _)| at.saturating_duration_since(Instant::now()))
                        .min();
                    st = match timeout {
                        Some(t) => self
                            .wake
                            .wait_timeout(st, t)
                            .map_or_else(|e| e.into_inner().0, |r| r.0),
                        None => self
                            .wake
                            .wait(st)
                            .unwrap_or_else(std::sync::PoisonError::into_inner),
                    };
                }
            };
            self.run(job);
            self.lock().running -= 1;
            self.wake.notify_all();
        }
    }

    fn run(&self, job: Job) {
        let i = match &job {
            Job::Load(i) | Job::Compute(i) | Job::Write { node: i, .. } => *i,
        };
        let node = &self.nodes[i];
        let key = self.lock().keys[i];
        let span = tracing::info_span!(
            "stage",
            stage = %node.path,
            key = %key.map_or_else(|| "pending".to_owned(), |k| k.short()),
            outcome = tracing::field::Empty,
            reason = tracing::field::Empty,
            bytes = tracing::field::Empty,
            seconds = tracing::field::Empty,
        );
        let _entered = span.enter();
        let started = Instant::now();
        match job {
            Job::Load(i) => {
                self.progress.running(node.info.display, "loading");
                self.load(i);
            }
            Job::Compute(i) => {
                self.progress.running(node.info.display, "computing");
                self.compute(i);
            }
            Job::Write {
                node: i,
                value,
                lock,
                compute_ms,
            } => {
                self.progress.running(node.info.display, "writing");
                self.write(i, &value, compute_ms, lock);
            }
        }
        span.record("seconds", started.elapsed().as_secs_f64());
    }

    fn load(&self, i: usize) {
        let node = &self.nodes[i];
        let found = self.lock().found[i].clone();
        let loaded = found
            .ok_or_else(|| "entry vanished".into())
            .and_then(|(entry, found)| self.read(node, &entry, found));
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
                    forget_output(&key);
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

    fn read(&self, node: &Node, entry: &Entry, found: Found) -> Result<Value, BoxError> {
        tracing::Span::current().record("bytes", entry.bytes);
        self.store
            .with_payload(entry, found, node.codec.reads, |payload| {
                guarded(|| node.call.decode(payload))
            })?
    }

    fn compute(&self, i: usize) {
        let node = &self.nodes[i];
        let mut lock = None;
        let key = self.lock().keys[i];
        if node.persistent()
            && let Some(key) = key
        {
            match self.store.local().try_lock(&node.path, &key) {
                LockAttempt::Busy => {
                    self.lock()
                        .delayed
                        .push((Instant::now() + LOCK_POLL, Job::Compute(i)));
                    return;
                }
                LockAttempt::Held(held) => lock = Some(held),
                LockAttempt::Unavailable => {}
            }
            if let Some((entry, found)) = self.store.lookup(&node.path, &key)
                && let Ok(value) = self.read(node, &entry, found)
            {
                let mut st = self.lock();
                self.release_inputs(&mut st, i);
                st.outputs[i] = Some(entry.blake3);
                self.notify_output(&mut st, i);
                self.record(node, Some(key), Outcome::Loaded);
                Self::complete(&mut st, i, value);
                return;
            }
        }
        if let Some(path) = node.missing.first() {
            let mut st = self.lock();
            self.release_inputs(&mut st, i);
            st.fail(missing_input(node, path));
            return;
        }
        let inputs: Option<Vec<Value>> = {
            let st = self.lock();
            node.ancestors
                .iter()
                .map(|&a| st.values[a].clone())
                .collect()
        };
        let Some(inputs) = inputs else {
            self.lock().fail(Error::Body {
                stage: node.path.clone(),
                source: "internal error: an ancestor has no value".into(),
            });
            return;
        };
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| {
            node.call.compute(&Inputs {
                values: &inputs,
                raw: &node.raw,
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
                tracing::info!(reason = %reason, ms = compute_ms, "computed");
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

    fn queue_write(st: &mut State, i: usize, value: Value, lock: Option<KeyLock>, compute_ms: u64) {
        st.queue.push_front(Job::Write {
            node: i,
            value,
            lock,
            compute_ms,
        });
    }

    /// The ancestors' values are needed by one stage fewer.
    fn release_inputs(&self, st: &mut State, i: usize) {
        for &a in &self.nodes[i].ancestors {
            st.holds[a] = st.holds[a].saturating_sub(1);
        }
    }

    fn write(&self, i: usize, value: &Value, compute_ms: u64, lock: Option<KeyLock>) {
        let node = &self.nodes[i];
        let (key, ingredients) = {
            let st = self.lock();
            let ingredients = st.ingredients[i]
                .clone()
                .unwrap_or_else(|| node.ingredients.clone());
            (st.keys[i].unwrap_or_default(), ingredients)
        };
        let entry = Entry {
            key,
            ingredients,
            output: node.info.output.to_owned(),
            payload: payload_name(&key, node.codec.extension),
            bytes: 0,
            blake3: Digest::default(),
            segments: Vec::new(),
            created_ms: now_ms(),
            compute_ms,
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
            remember_output(key, digest);
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

    fn save_failed(&self, st: &mut State, i: usize, source: &BoxError) {
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

    fn not_saved(&self, st: &mut State, i: usize, message: &str) {
        let node = &self.nodes[i];
        warn(message);
        self.record(node, st.keys[i], Outcome::NotSaved(message.to_owned()));
    }

    fn record(&self, node: &Node, key: Option<Digest>, outcome: Outcome) {
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
        });
    }

    /// Marks the computation of `node` under `key` as one whose output did not change.
    fn unchanged(&self, node: &Node, key: Digest) {
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

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned())
}

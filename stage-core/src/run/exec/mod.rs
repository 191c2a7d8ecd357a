//! Runs a planned call: loads what is cached, computes what is not, ancestors before
//! descendants, on up to `jobs` threads, writing entries behind the computation.
//!
//! A stage whose key waits on an ancestor's output (because that ancestor is computed in
//! this call) learns its key when the ancestor's payload is encoded; if an entry of that
//! key exists, the stage is cut off: read (or, when nothing needs its value, not even
//! read), never computed.

mod decide;
mod jobs;
mod map;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::Error;
use crate::key::{Digest, Ingredients, Reason};
use crate::run::plan::Node;
use crate::run::progress::Progress;
use crate::run::scope::{Scope, with_scope};
use crate::run::stage::Value;
use crate::store::{Entry, Folder, Found, KeyLock, Layered};

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
        folders: Mutex::new(HashMap::new()),
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
    let more = exec.lock().not_saved.saturating_sub(1);
    if more > 0 {
        crate::error::warn(&format!(
            "{more} more entries of this call were not saved in `{}`",
            scope.config.cache_dir().display()
        ));
    }
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
    /// Item `.1` of per-item stage `.0`.
    Item(usize, usize),
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
    /// Per-item stages being computed.
    maps: Vec<Option<map::MapRun>>,
    /// Entries that could not be saved.
    not_saved: usize,
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
            found: nodes.iter().map(|n| n.entry.as_deref().cloned()).collect(),
            reasons: vec![None; n],
            nearest: vec![None; n],
            unwritten: (0..n).map(|_| None).collect(),
            maps: (0..n).map(|_| None).collect(),
            undecided: 0,
            not_saved: 0,
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
    folders: Mutex<HashMap<String, Arc<Folder>>>,
}

/// What the cache holds for a stage whose key is known.
enum Lookup {
    Hit(Box<(Entry, Found)>),
    Miss(Reason, Option<Digest>),
}

impl Exec<'_> {
    /// The cache folder of this call.
    fn root(&self) -> &std::path::Path {
        self.scope.config.cache_dir()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
            Job::Load(i) | Job::Compute(i) | Job::Item(i, _) | Job::Write { node: i, .. } => *i,
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
            Job::Item(i, j) => self.compute_item(i, j),
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
}

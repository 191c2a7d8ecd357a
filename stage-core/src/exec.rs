//! Runs a planned call: loads what is cached, computes what is not, ancestors before
//! descendants, on up to `jobs` threads, writing entries behind the computation.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::checksum::check_segments;
use crate::config::{Event, Outcome, Scope, with_scope};
use crate::ingredients::Reason;
use crate::run::{Node, store_of};
use crate::stage::{Inputs, Value};
use crate::store::{Entry, KeyLock, LocalStore, LockAttempt, now_ms, payload_name};
use crate::{BoxError, Digest, Error};

/// How long a stage whose key another thread or process is computing waits before it
/// looks again.
const LOCK_POLL: Duration = Duration::from_millis(15);

/// Runs the plan `nodes` and returns the value of node `root`.
pub(crate) fn execute(scope: &Scope, nodes: &[Node], root: usize) -> Result<Value, Error> {
    let exec = Exec {
        nodes,
        store: store_of(scope),
        scope,
        state: Mutex::new(State::new(nodes.len())),
        wake: Condvar::new(),
        progress: Progress::new(scope),
    };
    {
        let mut st = exec.lock();
        st.consumers[root] += 1;
        exec.decide(&mut st, root);
    }
    let needed = exec
        .lock()
        .status
        .iter()
        .filter(|s| **s != Status::Untouched)
        .count();
    exec.progress.start(needed);
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
    if let Some(error) = st.error.take() {
        return Err(error);
    }
    st.values[root].take().ok_or_else(|| Error::Body {
        stage: nodes[root].path.clone(),
        source: "internal error: the call ended without a value".into(),
    })
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Untouched,
    Waiting(usize),
    Queued,
    Done,
}

struct State {
    status: Vec<Status>,
    queue: VecDeque<Job>,
    delayed: Vec<(Instant, Job)>,
    running: usize,
    values: Vec<Option<Value>>,
    consumers: Vec<usize>,
    dependents: Vec<Vec<usize>>,
    found: Vec<Option<Entry>>,
    reasons: Vec<Option<Reason>>,
    error: Option<Error>,
}

impl State {
    fn new(n: usize) -> State {
        State {
            status: vec![Status::Untouched; n],
            queue: VecDeque::new(),
            delayed: Vec::new(),
            running: 0,
            values: vec![None; n],
            consumers: vec![0; n],
            dependents: vec![Vec::new(); n],
            found: vec![None; n],
            reasons: vec![None; n],
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
    store: LocalStore,
    scope: &'a Scope,
    state: Mutex<State>,
    wake: Condvar,
    progress: Progress,
}

impl Exec<'_> {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Marks node `i` as needed: a load when its entry exists, else a computation (and
    /// then its ancestors are needed too).
    fn decide(&self, st: &mut State, i: usize) {
        if st.status[i] != Status::Untouched {
            return;
        }
        match classify(&self.store, &self.nodes[i]) {
            Ok(entry) => {
                st.found[i] = Some(entry);
                st.status[i] = Status::Queued;
                st.queue.push_back(Job::Load(i));
            }
            Err(reason) => self.schedule_compute(st, i, reason),
        }
    }

    fn schedule_compute(&self, st: &mut State, i: usize, reason: Reason) {
        st.reasons[i] = Some(reason);
        let mut left = 0;
        for &a in &self.nodes[i].ancestors {
            stacker::maybe_grow(crate::run::STACK_RED_ZONE, crate::run::STACK_GROWTH, || {
                self.decide(st, a);
            });
            st.consumers[a] += 1;
            if st.status[a] != Status::Done {
                left += 1;
                st.dependents[a].push(i);
            }
        }
        if left == 0 {
            st.status[i] = Status::Queued;
            st.queue.push_back(Job::Compute(i));
        } else {
            st.status[i] = Status::Waiting(left);
        }
    }

    fn complete(st: &mut State, i: usize, value: Value) {
        st.values[i] = Some(value);
        st.status[i] = Status::Done;
        for d in std::mem::take(&mut st.dependents[i]) {
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
        let node = match &job {
            Job::Load(i) | Job::Compute(i) | Job::Write { node: i, .. } => &self.nodes[*i],
        };
        let span = tracing::info_span!(
            "stage",
            stage = %node.path,
            key = %node.key.short(),
            outcome = tracing::field::Empty,
            reason = tracing::field::Empty,
            bytes = tracing::field::Empty,
            seconds = tracing::field::Empty,
        );
        let _entered = span.enter();
        let started = Instant::now();
        match job {
            Job::Load(i) => {
                self.progress.running(&self.nodes[i], "loading");
                self.load(i);
            }
            Job::Compute(i) => {
                self.progress.running(&self.nodes[i], "computing");
                self.compute(i);
            }
            Job::Write {
                node,
                value,
                lock,
                compute_ms,
            } => {
                self.progress.running(&self.nodes[node], "writing");
                self.write(node, &value, compute_ms, lock);
            }
        }
        span.record("seconds", started.elapsed().as_secs_f64());
    }

    fn load(&self, i: usize) {
        let node = &self.nodes[i];
        let entry = self.lock().found[i].take();
        let loaded = entry
            .ok_or_else(|| "entry vanished".into())
            .and_then(|e| self.read(node, &e));
        let mut st = self.lock();
        match loaded {
            Ok(value) => {
                self.record(node, Outcome::Loaded);
                Self::complete(&mut st, i, value);
            }
            Err(e) => {
                warn(&format!(
                    "stage `{}`: cache entry {} is damaged ({e}); recomputing",
                    node.path,
                    node.key.short()
                ));
                self.schedule_compute(&mut st, i, Reason::Damaged);
            }
        }
    }

    fn read(&self, node: &Node, entry: &Entry) -> Result<Value, BoxError> {
        tracing::Span::current().record("bytes", entry.bytes);
        if !(node.erased.streams() && entry.segments.len() > 1) {
            let bytes = self.store.read_payload(&node.path, entry)?;
            return guarded(|| node.erased.decode(bytes));
        }
        // The payload is read and checked a segment at a time on a thread of its own,
        // a few segments ahead of the decoder.
        let file = self.store.open_payload(&node.path, entry)?;
        std::thread::scope(|s| {
            let segments = check_segments(s, file, entry.bytes, entry.blake3, &entry.segments)
                .ok_or("payload segments differ from its metadata")?;
            guarded(|| node.erased.decode_segments(segments))
        })
    }

    fn compute(&self, i: usize) {
        let node = &self.nodes[i];
        let mut lock = None;
        if node.persistent {
            match self.store.try_lock(&node.path, &node.key) {
                LockAttempt::Busy => {
                    self.lock()
                        .delayed
                        .push((Instant::now() + LOCK_POLL, Job::Compute(i)));
                    return;
                }
                LockAttempt::Held(held) => lock = Some(held),
                LockAttempt::Unavailable => {}
            }
            if let Some(entry) = self.store.lookup(&node.path, &node.key)
                && let Ok(value) = self.read(node, &entry)
            {
                let mut st = self.lock();
                self.release_inputs(&mut st, i);
                self.record(node, Outcome::Loaded);
                Self::complete(&mut st, i, value);
                return;
            }
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
            node.erased.compute(&Inputs { values: &inputs })
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
                self.record(node, Outcome::Computed(reason));
                if node.persistent {
                    st.queue.push_front(Job::Write {
                        node: i,
                        value: Value::clone(&value),
                        lock,
                        compute_ms,
                    });
                }
                Self::complete(&mut st, i, value);
            }
            Ok(Err(source)) => st.fail(Error::Body {
                stage: node.path.clone(),
                source,
            }),
            Err(panic) => st.fail(Error::Panic {
                stage: node.path.clone(),
                message: panic_message(panic.as_ref()),
            }),
        }
    }

    /// The ancestors' values are needed by one stage fewer; free those nobody needs.
    fn release_inputs(&self, st: &mut State, i: usize) {
        for &a in &self.nodes[i].ancestors {
            st.consumers[a] = st.consumers[a].saturating_sub(1);
            if st.consumers[a] == 0 {
                st.values[a] = None;
            }
        }
    }

    fn write(&self, i: usize, value: &Value, compute_ms: u64, lock: Option<KeyLock>) {
        let node = &self.nodes[i];
        let entry = Entry {
            key: node.key,
            ingredients: node.ingredients.clone(),
            output: node.info.output.to_owned(),
            payload: payload_name(&node.key, node.extension),
            bytes: 0,
            blake3: Digest::default(),
            segments: Vec::new(),
            created_ms: now_ms(),
            compute_ms,
        };
        let written = self
            .store
            .write(&node.path, entry, |out| node.erased.encode(value, out));
        drop(lock);
        if let Ok(entry) = &written {
            let span = tracing::Span::current();
            span.record("outcome", "written");
            span.record("bytes", entry.bytes);
        }
        if let Err(source) = written {
            let dir = self.store.stage_dir(&node.path);
            if self.scope.config.is_strict() {
                self.lock().fail(Error::Save {
                    stage: node.path.clone(),
                    path: dir,
                    source,
                });
            } else {
                let message = format!(
                    "stage `{}`: entry not saved in `{}`: {source}",
                    node.path,
                    dir.display()
                );
                warn(&message);
                self.record(node, Outcome::NotSaved(message));
            }
        }
    }

    fn record(&self, node: &Node, outcome: Outcome) {
        if !matches!(outcome, Outcome::NotSaved(_)) {
            self.progress.done();
        }
        if matches!(outcome, Outcome::Loaded) {
            tracing::Span::current().record("outcome", "hit");
            tracing::info!("loaded");
        }
        self.scope.record(Event {
            stage: node.path.clone(),
            key: node.key,
            outcome,
        });
    }
}

/// The progress display: stages done out of those the call needs, the one running, the
/// time elapsed. Shown only on a terminal, and only when the configuration allows it.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(scope: &Scope) -> Progress {
        use std::io::IsTerminal;
        let show = scope.config.shows_progress() && std::io::stderr().is_terminal();
        Progress(show.then(|| {
            let bar = indicatif::ProgressBar::hidden();
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {pos}/{len} stages · {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        }))
    }

    fn start(&self, needed: usize) {
        if let Some(bar) = &self.0 {
            bar.set_length(needed as u64);
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.enable_steady_tick(Duration::from_millis(120));
        }
    }

    fn running(&self, node: &Node, what: &str) {
        if let Some(bar) = &self.0 {
            if bar.position() >= bar.length().unwrap_or(0) {
                bar.inc_length(1);
            }
            bar.set_message(format!("{what} {}", node.info.display));
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// The intact entry of `node`, or why a call has to compute it: the first ingredient
/// that differs from its stage's latest entry. Reads metadata only, never a payload.
pub(crate) fn classify(store: &LocalStore, node: &Node) -> Result<Entry, Reason> {
    if !node.persistent {
        return Err(Reason::MemoryOnly);
    }
    if let Some(entry) = store.lookup(&node.path, &node.key) {
        return Ok(entry);
    }
    Err(match store.latest(&node.path).as_ref() {
        None if store.holds_other_format(&node.path) => Reason::Format,
        None => Reason::NeverRun,
        Some(latest) if latest.key == node.key => Reason::Damaged,
        Some(latest) => node
            .ingredients
            .first_difference(&latest.ingredients)
            .unwrap_or(Reason::Removed),
    })
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

/// A warning: to `tracing` when a subscriber is installed, else to stderr.
pub(crate) fn warn(message: &str) {
    tracing::warn!("{message}");
    if !tracing::dispatcher::has_been_set() {
        eprintln!("warning: {message}");
    }
}

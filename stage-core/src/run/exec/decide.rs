//! Deciding what a call does with each stage: wait for the outputs its key needs, then
//! read it, cut it off, or compute it once its ancestors' values are there.

use std::sync::Arc;

use super::{Exec, Job, Lookup, State, Status};
use crate::key::{Digest, Ingredients, Reason};
use crate::run::stage::Value;

impl Exec<'_> {
    /// Node `i` is needed: its value (`value`), or only its output, for a descendant's key.
    pub(super) fn want(&self, st: &mut State, i: usize, value: bool) {
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
    pub(super) fn start(&self, st: &mut State, i: usize) {
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
    pub(super) fn resolved(&self, st: &mut State, i: usize) {
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
    pub(super) fn settle_key(&self, st: &mut State, i: usize) -> Option<Digest> {
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

    pub(super) fn orphan_ancestor(&self, st: &State, i: usize) -> String {
        self.nodes[i]
            .ancestors
            .iter()
            .find(|&&a| st.orphaned[a] || st.outputs[a].is_none())
            .map_or_else(String::new, |&a| self.nodes[a].path.clone())
    }

    /// Node `i`'s key is known: a hit gives its output (and its value, when wanted); a
    /// miss computes it.
    pub(super) fn decide(&self, st: &mut State, i: usize) {
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
    pub(super) fn find(&self, st: &State, i: usize) -> Lookup {
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
    pub(super) fn reason(
        &self,
        stage: &str,
        ingredients: &Ingredients,
    ) -> (Reason, Option<Digest>) {
        // Read once per call: a call that misses 10,000 keys of one stage reads its folder
        // once, not once per key.
        let folder = {
            let mut all = self
                .folders
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(
                all.entry(stage.to_owned())
                    .or_insert_with(|| Arc::new(self.store.local().folder(stage))),
            )
        };
        let (reason, nearest) = folder.reason(ingredients);
        (reason, nearest.map(|n| folder.entries[n].blake3))
    }

    /// The value of node `i`, whose key and output are known: read, or (kept in memory
    /// only) computed.
    pub(super) fn value_of_known(&self, st: &mut State, i: usize) {
        if self.nodes[i].persistent() && st.found[i].is_some() {
            Self::fetch(st, i);
        } else {
            let reason = st.reasons[i].take().unwrap_or(Reason::MemoryOnly);
            self.compute_path(st, i, reason);
        }
    }

    /// Queues the load of node `i`, whose entry was found.
    pub(super) fn fetch(st: &mut State, i: usize) {
        st.status[i] = Status::Queued;
        st.undecided += 1;
        st.queue.push_back(Job::Load(i));
    }

    /// Node `i` is computed once its ancestors' values are there.
    pub(super) fn compute_path(&self, st: &mut State, i: usize, reason: Reason) {
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
    pub(super) fn track_outputs(&self, st: &mut State, i: usize) {
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
    pub(super) fn notify_output(&self, st: &mut State, i: usize) {
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

    pub(super) fn complete(st: &mut State, i: usize, value: Value) {
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
    pub(super) fn free_values(&self, st: &mut State) {
        if st.undecided > 0 {
            return;
        }
        for a in 0..self.nodes.len() {
            if st.holds[a] == 0 && a != st.root && st.status[a] == Status::Done {
                st.values[a] = None;
            }
        }
    }
}

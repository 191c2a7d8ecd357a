//! What a call did: one event per stage, computed (and why), loaded, or not saved.

/// What a run did for one stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The stage's path.
    pub stage: String,
    /// Its name: `name = "..."` when the attribute gives one, else the function's name.
    pub name: String,
    /// The key it ran or loaded under.
    pub key: crate::Digest,
    /// What happened.
    pub outcome: Outcome,
    /// For a per-item stage: how many of its items ran, of how many.
    pub items: Option<ItemCount>,
}

/// The items of a per-item stage: how many there are, and how many run (or ran).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ItemCount {
    /// Items computed (in a run log), or that a call would compute (in a graph).
    pub run: usize,
    /// Items in all.
    pub total: usize,
}

impl std::fmt::Display for ItemCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of {} items", self.run, self.total)
    }
}

/// What happened to a stage in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Its body ran, for this reason.
    Computed(crate::Reason),
    /// Its body ran, for this reason, and gave the same bytes as the entry it replaces:
    /// the stages that read it were cut off (not recomputed).
    Unchanged(crate::Reason),
    /// Its value was read back from the cache.
    Loaded,
    /// Its value was computed but could not be saved (the warning's text).
    NotSaved(String),
    /// Its body returned an error or panicked (the message); the call failed.
    Failed(String),
}

/// The stages that calls made inside [`observe`](crate::observe) computed and loaded, in order of completion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunLog {
    /// Every event, in the order they happened.
    pub events: Vec<Event>,
}

impl RunLog {
    /// Names of the stages whose body ran, in order (the `name = "..."` of the attribute,
    /// else the function's name).
    #[must_use]
    pub fn computed(&self) -> Vec<&str> {
        self.names(|o| matches!(o, Outcome::Computed(_) | Outcome::Unchanged(_)))
    }

    /// Names of the stages whose body ran and gave the same output as before, so that the
    /// stages reading them were not recomputed.
    #[must_use]
    pub fn unchanged(&self) -> Vec<&str> {
        self.names(|o| matches!(o, Outcome::Unchanged(_)))
    }

    /// Names of the stages read back from the cache, in order.
    #[must_use]
    pub fn loaded(&self) -> Vec<&str> {
        self.names(|o| matches!(o, Outcome::Loaded))
    }

    /// Why the stage named `name` was computed, if it was.
    #[must_use]
    pub fn reason(&self, name: &str) -> Option<&crate::Reason> {
        self.events.iter().find_map(|e| match &e.outcome {
            Outcome::Computed(reason) | Outcome::Unchanged(reason) if e.name == name => {
                Some(reason)
            }
            _ => None,
        })
    }

    /// Names of the stages whose body failed: the call returned that error.
    #[must_use]
    pub fn failed(&self) -> Vec<&str> {
        self.names(|o| matches!(o, Outcome::Failed(_)))
    }

    /// Warnings of entries that could not be saved.
    #[must_use]
    pub fn warnings(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|e| match &e.outcome {
                Outcome::NotSaved(w) => Some(w.as_str()),
                _ => None,
            })
            .collect()
    }

    fn names(&self, keep: impl Fn(&Outcome) -> bool) -> Vec<&str> {
        self.events
            .iter()
            .filter(|e| keep(&e.outcome))
            .map(|e| e.name.as_str())
            .collect()
    }
}

/// One line per stage, in order: `computed  <name>  (<reason>)` (with `; output unchanged`
/// when its descendants were cut off), `loaded    <name>`, `not saved <name>
/// (<warning>)`, or `failed    <name>  (<error>)`; nothing when no stage was called.
///
/// ```
/// let ((), log) = stage_core::observe(|| ());
/// assert_eq!(log.to_string(), "");
/// ```
impl std::fmt::Display for RunLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let width = self.events.iter().map(|e| e.name.len()).max().unwrap_or(0);
        for e in &self.events {
            let name = &e.name;
            let items = e.items.map_or_else(String::new, |n| format!("; {n}"));
            match &e.outcome {
                Outcome::Computed(reason) => {
                    writeln!(f, "computed  {name:<width$}  ({reason}{items})")?;
                }
                Outcome::Unchanged(reason) => {
                    writeln!(
                        f,
                        "computed  {name:<width$}  ({reason}{items}; output unchanged)"
                    )?;
                }
                Outcome::Loaded => writeln!(f, "loaded    {name}")?,
                Outcome::NotSaved(warning) => {
                    writeln!(f, "not saved {name:<width$}  ({warning})")?;
                }
                Outcome::Failed(message) => writeln!(f, "failed    {name:<width$}  ({message})")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_log_prints_one_line_per_stage() {
        let event = |stage: &str, outcome| Event {
            stage: stage.to_owned(),
            name: stage.rsplit("::").next().unwrap().to_owned(),
            key: crate::Digest::of(stage.as_bytes()),
            outcome,
            items: None,
        };
        let log = RunLog {
            events: vec![
                event("app::load", Outcome::Loaded),
                event(
                    "app::clean",
                    Outcome::Computed(crate::Reason::changed(crate::key::Change::Code)),
                ),
                event("app::trim", Outcome::Unchanged(crate::Reason::NeverRun)),
                event("app::report", Outcome::NotSaved("disk full".to_owned())),
            ],
        };
        assert_eq!(
            log.to_string(),
            "loaded    load\n\
             computed  clean   (code changed)\n\
             computed  trim    (never run; output unchanged)\n\
             not saved report  (disk full)\n"
        );
    }
}

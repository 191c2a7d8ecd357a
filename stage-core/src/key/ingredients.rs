//! What a key is made of, kept apart so that a miss can say which part changed.

use serde::{Deserialize, Serialize};

use crate::Digest;

/// Version of the key and entry format. Entries of another format are never read.
///
/// 2: an ancestor enters a key by its output's digest (early cutoff); tracked items of
/// any kind.
pub const FORMAT: u32 = 2;

/// Everything that makes a cached result valid. The key is the hash of these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ingredients {
    /// Key and entry format version.
    pub format: u32,
    /// The stage's path, `module::function`.
    pub stage: String,
    /// Hash of the attribute and the function's tokens.
    pub code: Digest,
    /// The `version = "..."` salt.
    pub salt: Option<String>,
    /// Tracked items (transitively), with their code hashes.
    pub helpers: Vec<Named>,
    /// Codec id and version, e.g. `parquet/1`.
    pub codec: String,
    /// The shape of the output type as the codec writes it, when it has one.
    pub shape: Option<Digest>,
    /// Free parameters: hash of each one's canonical bytes, with a readable form.
    pub params: Vec<Param>,
    /// Raw inputs: content hash of each file or folder.
    pub inputs: Vec<Input>,
    /// Ancestors: the output of each.
    pub ancestors: Vec<Ancestor>,
    /// For one item of a per-item stage: the element it is computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub element: Option<Element>,
}

/// The element one item of a per-item stage is computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Element {
    /// What a person reads: the file's relative path, or the element's index.
    pub label: String,
    /// What the key takes: the file's relative path and content, the element's canonical
    /// bytes, or the upstream item's output, hashed.
    pub identity: Digest,
}

/// A name with a digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Named {
    /// Path of the helper.
    pub name: String,
    /// Its code hash.
    pub hash: Digest,
}

/// One free parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    /// The parameter's name.
    pub name: String,
    /// Hash of its canonical bytes (or, for a file, of its content).
    pub hash: Digest,
    /// A readable form of the value (JSON when it has one).
    pub value: String,
}

/// One raw input file or folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// The parameter it is bound to.
    pub param: String,
    /// Its path as given.
    pub path: String,
    /// Its content hash.
    pub hash: Digest,
}

/// One ancestor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ancestor {
    /// The parameter it is bound to.
    pub param: String,
    /// The ancestor's path.
    pub stage: String,
    /// The ancestor's name (`name = "..."`, else its function's name), as reasons show it.
    #[serde(default)]
    pub name: String,
    /// The ancestor's key: where its value came from.
    pub key: Digest,
    /// What the key depends on: the blake3 of the ancestor's payload when it is cached (so
    /// an ancestor recomputed to the same bytes changes no descendant's key), its key when
    /// it is kept in memory only.
    pub output: Digest,
}

impl Ingredients {
    /// The key: blake3 over an unambiguous encoding of every ingredient.
    ///
    /// Readable forms (`value`, `path`) are left out: a file's key depends on its content,
    /// not its name, and a parameter on its canonical bytes.
    #[must_use]
    pub fn key(&self) -> Digest {
        let mut h = KeyHasher(blake3::Hasher::new());
        h.u64(u64::from(self.format));
        h.str(&self.stage);
        h.digest(&self.code);
        match &self.salt {
            Some(salt) => {
                h.u64(1);
                h.str(salt);
            }
            None => h.u64(0),
        }
        h.str(&self.codec);
        match &self.shape {
            Some(shape) => {
                h.u64(1);
                h.digest(shape);
            }
            None => h.u64(0),
        }
        h.u64(self.helpers.len() as u64);
        for helper in &self.helpers {
            h.str(&helper.name);
            h.digest(&helper.hash);
        }
        h.u64(self.params.len() as u64);
        for param in &self.params {
            h.str(&param.name);
            h.digest(&param.hash);
        }
        h.u64(self.inputs.len() as u64);
        for input in &self.inputs {
            h.str(&input.param);
            h.digest(&input.hash);
        }
        h.u64(self.ancestors.len() as u64);
        for ancestor in &self.ancestors {
            h.str(&ancestor.param);
            h.str(&ancestor.stage);
            h.digest(&ancestor.output);
        }
        match &self.element {
            Some(element) => {
                h.u64(1);
                h.digest(&element.identity);
            }
            None => h.u64(0),
        }
        Digest::from(h.0.finalize())
    }

    /// Every ingredient in which `self` (now) differs from `before` (an earlier entry), in
    /// the order of the key; empty when they make the same key.
    #[must_use]
    pub fn changes(&self, before: &Ingredients) -> Vec<Change> {
        let mut changes = Vec::new();
        if self.code != before.code {
            changes.push(Change::Code);
        }
        if self.salt != before.salt {
            changes.push(Change::Version);
        }
        if self.codec != before.codec {
            changes.push(Change::Codec);
        }
        if self.shape != before.shape {
            changes.push(Change::OutputType);
        }
        let helpers = differing(&self.helpers, &before.helpers, |h| &h.name, |h| h.hash);
        changes.extend(helpers.into_iter().map(Change::Tracked));
        let params = differing(&self.params, &before.params, |p| &p.name, |p| p.hash);
        changes.extend(params.into_iter().map(Change::Param));
        for param in differing(&self.inputs, &before.inputs, |i| &i.param, |i| i.hash) {
            let path = self
                .inputs
                .iter()
                .chain(&before.inputs)
                .find(|i| i.param == param)
                .map_or(param, |i| i.path.clone());
            changes.push(Change::Input(path));
        }
        for param in differing(
            &self.ancestors,
            &before.ancestors,
            |a| &a.param,
            |a| a.output,
        ) {
            let name = self
                .ancestors
                .iter()
                .chain(&before.ancestors)
                .find(|a| a.param == param)
                .map_or(param, |a| a.name.clone());
            changes.push(Change::Ancestor(name));
        }
        // The points of a sweep share their stage's name: name it once.
        let mut seen = Vec::new();
        changes.retain(|change| {
            let new = !seen.contains(change);
            if new {
                seen.push(change.clone());
            }
            new
        });
        changes
    }

    /// Why a stage with these ingredients recomputes, given the `earlier` ingredients of
    /// that stage's entries: compared with the one that differs least (the first among
    /// equals), listing every difference. With it, the index of that nearest one.
    #[must_use]
    pub fn reason<'a>(
        &self,
        earlier: impl IntoIterator<Item = &'a Ingredients>,
    ) -> (Reason, Option<usize>) {
        let mut nearest: Option<(usize, Vec<Change>)> = None;
        let mut other_format = false;
        for (i, before) in earlier.into_iter().enumerate() {
            if before.format != self.format {
                other_format = true;
                continue;
            }
            let changes = self.changes(before);
            if nearest
                .as_ref()
                .is_none_or(|(_, n)| changes.len() < n.len())
            {
                nearest = Some((i, changes));
            }
        }
        match nearest {
            Some((i, changes)) if changes.is_empty() => (Reason::Removed, Some(i)),
            Some((i, changes)) => (Reason::Changed(changes), Some(i)),
            None if other_format => (Reason::Format, None),
            None => (Reason::NeverRun, None),
        }
    }
}

/// The names of the items whose digest differs, or that are present on one side only.
fn differing<T>(
    now: &[T],
    before: &[T],
    name: impl Fn(&T) -> &String,
    hash: impl Fn(&T) -> Digest,
) -> Vec<String> {
    let mut names = Vec::new();
    for item in now {
        let old = before.iter().find(|b| name(b) == name(item));
        if old.is_none_or(|old| hash(old) != hash(item)) {
            names.push(name(item).clone());
        }
    }
    names.extend(
        before
            .iter()
            .filter(|b| !now.iter().any(|n| name(n) == name(b)))
            .map(|b| name(b).clone()),
    );
    names
}

/// Why a stage is computed instead of read from its cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Reason {
    /// The stage has no entry in the cache at all.
    NeverRun,
    /// The stage keeps its output in memory only.
    MemoryOnly,
    /// The stage's entries were written by another format version of `stage`.
    Format,
    /// These ingredients differ from the stage's nearest entry (the one that differs least).
    Changed(Vec<Change>),
    /// The entry for this key was found damaged and is recomputed.
    Damaged,
    /// The ingredients match an entry that is no longer there (removed or collected).
    Removed,
}

impl Reason {
    /// The reason of a single change.
    #[must_use]
    pub fn changed(change: Change) -> Reason {
        Reason::Changed(vec![change])
    }

    /// The ingredients that changed, if that is the reason.
    #[must_use]
    pub fn changes(&self) -> &[Change] {
        match self {
            Reason::Changed(changes) => changes,
            _ => &[],
        }
    }
}

/// One ingredient of a key that differs from an earlier entry's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Change {
    /// The stage's code (attribute, signature or body).
    Code,
    /// The `version = "..."` salt.
    Version,
    /// The cache format or its settings.
    Codec,
    /// The definition of the output type.
    OutputType,
    /// A tracked item's code (its path).
    Tracked(String),
    /// A free parameter's value (its name).
    Param(String),
    /// A raw input's content (its path).
    Input(String),
    /// An ancestor's output (its name).
    Ancestor(String),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::NeverRun => f.write_str("never run"),
            Reason::MemoryOnly => f.write_str("kept in memory only"),
            Reason::Format => f.write_str("cache format version changed"),
            Reason::Damaged => f.write_str("cache entry was damaged"),
            Reason::Removed => f.write_str("cache entry was removed"),
            Reason::Changed(changes) => {
                for (i, change) in changes.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{change}")?;
                }
                f.write_str(" changed")
            }
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Code => f.write_str("code"),
            Change::Version => f.write_str("version salt"),
            Change::Codec => f.write_str("cache codec"),
            Change::OutputType => f.write_str("output type"),
            Change::Tracked(name) => write!(f, "tracked `{name}`"),
            Change::Param(name) => write!(f, "parameter `{name}`"),
            Change::Input(path) => write!(f, "input `{path}`"),
            Change::Ancestor(stage) => write!(f, "ancestor `{stage}`"),
        }
    }
}

/// Length-prefixed writes, so that no two ingredient lists encode the same.
struct KeyHasher(blake3::Hasher);

impl KeyHasher {
    fn u64(&mut self, n: u64) {
        self.0.update(&n.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.update(s.as_bytes());
    }
    fn digest(&mut self, d: &Digest) {
        self.0.update(&d.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Ingredients {
        Ingredients {
            format: FORMAT,
            stage: "demo::clean".into(),
            code: Digest([7; 32]),
            salt: None,
            helpers: vec![],
            codec: "parquet/1".into(),
            shape: None,
            params: vec![Param {
                name: "n".into(),
                hash: Digest([1; 32]),
                value: "1".into(),
            }],
            inputs: vec![Input {
                param: "raw".into(),
                path: "a.csv".into(),
                hash: Digest([2; 32]),
            }],
            ancestors: vec![Ancestor {
                param: "x".into(),
                stage: "demo::load".into(),
                name: "load".into(),
                key: Digest([3; 32]),
                output: Digest([4; 32]),
            }],
            element: None,
        }
    }

    fn param(hash: u8) -> Vec<Param> {
        vec![Param {
            name: "n".into(),
            hash: Digest([hash; 32]),
            value: hash.to_string(),
        }]
    }

    fn input(hash: u8) -> Vec<Input> {
        vec![Input {
            param: "raw".into(),
            path: "a.csv".into(),
            hash: Digest([hash; 32]),
        }]
    }

    #[test]
    fn every_ingredient_changes_the_key_and_is_named() {
        let b = base();
        let cases: Vec<(Ingredients, Change)> = vec![
            (
                Ingredients {
                    code: Digest([8; 32]),
                    ..base()
                },
                Change::Code,
            ),
            (
                Ingredients {
                    salt: Some("2".into()),
                    ..base()
                },
                Change::Version,
            ),
            (
                Ingredients {
                    codec: "bincode/1".into(),
                    ..base()
                },
                Change::Codec,
            ),
            (
                Ingredients {
                    shape: Some(Digest([5; 32])),
                    ..base()
                },
                Change::OutputType,
            ),
            (
                Ingredients {
                    helpers: vec![Named {
                        name: "h".into(),
                        hash: Digest([0; 32]),
                    }],
                    ..base()
                },
                Change::Tracked("h".into()),
            ),
            (
                Ingredients {
                    params: param(9),
                    ..base()
                },
                Change::Param("n".into()),
            ),
            (
                Ingredients {
                    inputs: input(9),
                    ..base()
                },
                Change::Input("a.csv".into()),
            ),
            (
                Ingredients {
                    ancestors: vec![Ancestor {
                        output: Digest([9; 32]),
                        ..base().ancestors[0].clone()
                    }],
                    ..base()
                },
                Change::Ancestor("load".into()),
            ),
        ];
        for (changed, change) in cases {
            assert_ne!(changed.key(), b.key(), "{change}");
            assert_eq!(changed.changes(&b), [change]);
        }
        assert!(b.changes(&base()).is_empty());
    }

    #[test]
    fn an_ancestor_counts_by_its_output_not_its_key() {
        let mut rebuilt = base();
        rebuilt.ancestors[0].key = Digest([6; 32]);
        assert_eq!(rebuilt.key(), base().key());
    }

    #[test]
    fn readable_forms_do_not_change_the_key() {
        let mut renamed = base();
        renamed.inputs[0].path = "b.csv".into();
        renamed.params[0].value = "one".into();
        assert_eq!(renamed.key(), base().key());
    }

    #[test]
    fn the_reason_compares_with_the_nearest_entry_and_lists_every_change() {
        // Run with n = 9, then n = 5, then the input changes while n = 9 again.
        let nine = Ingredients {
            params: param(9),
            ..base()
        };
        let five = Ingredients {
            params: param(5),
            ..base()
        };
        let now = Ingredients {
            params: param(9),
            inputs: input(7),
            ..base()
        };
        let (reason, nearest) = now.reason([&five, &nine]);
        assert_eq!(nearest, Some(1));
        assert_eq!(reason, Reason::changed(Change::Input("a.csv".into())));
        assert_eq!(reason.to_string(), "input `a.csv` changed");
        let both = Ingredients {
            code: Digest([1; 32]),
            params: param(3),
            ..base()
        };
        let (reason, _) = both.reason([&nine]);
        assert_eq!(reason.changes(), [Change::Code, Change::Param("n".into())]);
        assert_eq!(reason.to_string(), "code, parameter `n` changed");
        assert_eq!(nine.reason([&nine]).0, Reason::Removed);
        assert_eq!(nine.reason([]).0, Reason::NeverRun);
        let old = Ingredients {
            format: 1,
            ..base()
        };
        assert_eq!(nine.reason([&old]).0, Reason::Format);
    }
}

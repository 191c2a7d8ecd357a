//! What a key is made of, kept apart so that a miss can say which part changed.

use serde::{Deserialize, Serialize};

use crate::Digest;

/// Version of the key and entry format. Entries of another format are never read.
pub const FORMAT: u32 = 1;

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
    /// Tracked helpers (transitively), with their code hashes.
    pub helpers: Vec<Named>,
    /// Codec id and version, e.g. `parquet/1`.
    pub codec: String,
    /// The shape of the output type as the codec writes it, when it has one.
    pub shape: Option<Digest>,
    /// Free parameters: hash of each one's canonical bytes, with a readable form.
    pub params: Vec<Param>,
    /// Raw inputs: content hash of each file or folder.
    pub inputs: Vec<Input>,
    /// Ancestors: the key of each.
    pub ancestors: Vec<Ancestor>,
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
    /// The ancestor's key.
    pub key: Digest,
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
            h.digest(&ancestor.key);
        }
        Digest::from(h.0.finalize())
    }

    /// The first ingredient in which `self` (now) differs from `before` (an earlier entry).
    #[must_use]
    pub fn first_difference(&self, before: &Ingredients) -> Option<Reason> {
        if self.format != before.format {
            return Some(Reason::Format);
        }
        if self.code != before.code {
            return Some(Reason::Code);
        }
        if self.salt != before.salt {
            return Some(Reason::Version);
        }
        if self.codec != before.codec {
            return Some(Reason::Codec);
        }
        if self.shape != before.shape {
            return Some(Reason::OutputType);
        }
        if let Some(name) = differing(&self.helpers, &before.helpers, |h| &h.name, |h| h.hash) {
            return Some(Reason::Helper(name));
        }
        if let Some(name) = differing(&self.params, &before.params, |p| &p.name, |p| p.hash) {
            return Some(Reason::Param(name));
        }
        if let Some(param) = differing(&self.inputs, &before.inputs, |i| &i.param, |i| i.hash) {
            let path = self
                .inputs
                .iter()
                .find(|i| i.param == param)
                .map_or(param, |i| i.path.clone());
            return Some(Reason::Input(path));
        }
        if let Some(param) = differing(&self.ancestors, &before.ancestors, |a| &a.param, |a| a.key)
        {
            let stage = self
                .ancestors
                .iter()
                .find(|a| a.param == param)
                .map_or(param, |a| a.stage.clone());
            return Some(Reason::Ancestor(stage));
        }
        None
    }
}

/// The name of the first item whose digest differs, or that is present on one side only.
fn differing<T>(
    now: &[T],
    before: &[T],
    name: impl Fn(&T) -> &String,
    hash: impl Fn(&T) -> Digest,
) -> Option<String> {
    for item in now {
        let old = before.iter().find(|b| name(b) == name(item));
        if old.is_none_or(|old| hash(old) != hash(item)) {
            return Some(name(item).clone());
        }
    }
    before
        .iter()
        .find(|b| !now.iter().any(|n| name(n) == name(b)))
        .map(|b| name(b).clone())
}

/// Why a stage is computed instead of read from its cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Reason {
    /// The stage has no entry in the cache at all.
    NeverRun,
    /// The stage keeps its output in memory only.
    MemoryOnly,
    /// The latest entry was written by another format version of `stage`.
    Format,
    /// The stage's code (attribute, signature or body) changed.
    Code,
    /// The `version = "..."` salt changed.
    Version,
    /// The cache format changed.
    Codec,
    /// The definition of the output type changed.
    OutputType,
    /// A tracked helper's code changed (its path).
    Helper(String),
    /// A free parameter has another value (its name).
    Param(String),
    /// A raw input's content changed (its path).
    Input(String),
    /// An ancestor's key changed (its path).
    Ancestor(String),
    /// The entry for this key was found damaged and is recomputed.
    Damaged,
    /// The ingredients match an entry that is no longer there (removed or collected).
    Removed,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::NeverRun => f.write_str("never run"),
            Reason::MemoryOnly => f.write_str("kept in memory only"),
            Reason::Format => f.write_str("cache format version changed"),
            Reason::Code => f.write_str("code changed"),
            Reason::Version => f.write_str("version salt changed"),
            Reason::Codec => f.write_str("cache codec changed"),
            Reason::OutputType => f.write_str("output type changed"),
            Reason::Helper(name) => write!(f, "helper `{name}` changed"),
            Reason::Param(name) => write!(f, "parameter `{name}` changed"),
            Reason::Input(path) => write!(f, "input `{path}` changed"),
            Reason::Ancestor(stage) => write!(f, "ancestor `{stage}` changed"),
            Reason::Damaged => f.write_str("cache entry was damaged"),
            Reason::Removed => f.write_str("cache entry was removed"),
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
                key: Digest([3; 32]),
            }],
        }
    }

    #[test]
    fn every_ingredient_changes_the_key_and_is_named() {
        let b = base();
        let cases: Vec<(Ingredients, Reason)> = vec![
            (
                Ingredients {
                    code: Digest([8; 32]),
                    ..base()
                },
                Reason::Code,
            ),
            (
                Ingredients {
                    salt: Some("2".into()),
                    ..base()
                },
                Reason::Version,
            ),
            (
                Ingredients {
                    codec: "bincode/1".into(),
                    ..base()
                },
                Reason::Codec,
            ),
            (
                Ingredients {
                    shape: Some(Digest([5; 32])),
                    ..base()
                },
                Reason::OutputType,
            ),
            (
                Ingredients {
                    helpers: vec![Named {
                        name: "h".into(),
                        hash: Digest([0; 32]),
                    }],
                    ..base()
                },
                Reason::Helper("h".into()),
            ),
            (
                Ingredients {
                    params: vec![Param {
                        name: "n".into(),
                        hash: Digest([9; 32]),
                        value: "2".into(),
                    }],
                    ..base()
                },
                Reason::Param("n".into()),
            ),
            (
                Ingredients {
                    inputs: vec![Input {
                        param: "raw".into(),
                        path: "a.csv".into(),
                        hash: Digest([9; 32]),
                    }],
                    ..base()
                },
                Reason::Input("a.csv".into()),
            ),
            (
                Ingredients {
                    ancestors: vec![Ancestor {
                        param: "x".into(),
                        stage: "demo::load".into(),
                        key: Digest([9; 32]),
                    }],
                    ..base()
                },
                Reason::Ancestor("demo::load".into()),
            ),
        ];
        for (changed, reason) in cases {
            assert_ne!(changed.key(), b.key(), "{reason}");
            assert_eq!(changed.first_difference(&b), Some(reason));
        }
        assert_eq!(b.first_difference(&base()), None);
    }

    #[test]
    fn readable_forms_do_not_change_the_key() {
        let mut renamed = base();
        renamed.inputs[0].path = "b.csv".into();
        renamed.params[0].value = "one".into();
        assert_eq!(renamed.key(), base().key());
    }
}

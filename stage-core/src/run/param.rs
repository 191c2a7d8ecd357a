//! Free parameters: what a stage's wrapper takes, and how each enters the key.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Config;
use crate::key::{Digest, StatIndex, canonical_bytes};
use crate::run::info::StageInfo;
use crate::{BoxError, Error};

/// A free parameter: a value whose key contribution is computed at run time.
///
/// Every `serde::Serialize` type is one (its canonical bytes enter the key), and so is
/// [`File`] (its content enters the key).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a free parameter of a stage",
    label = "free parameters are part of the key, so this needs `serde::Serialize`",
    note = "if it is an input, bind it in the attribute: `param = ancestor` or `param = \"path\"`"
)]
pub trait Param {
    /// The digest this value adds to the key, and a readable form of it.
    ///
    /// # Errors
    /// When the value cannot be encoded or read.
    fn key_part(&self, cx: &Params<'_>) -> Result<(Digest, String), BoxError>;
}

impl<T: Serialize + ?Sized> Param for T {
    fn key_part(&self, _: &Params<'_>) -> Result<(Digest, String), BoxError> {
        let bytes = canonical_bytes(self)?;
        let digest = Digest::of(&bytes);
        let mut readable =
            serde_json::to_string(self).unwrap_or_else(|_| format!("#{}", digest.short()));
        if readable.len() > 200 {
            let cut = (0..=200)
                .rev()
                .find(|&i| readable.is_char_boundary(i))
                .unwrap_or(0);
            readable.truncate(cut);
            readable.push('…');
        }
        Ok((digest, readable))
    }
}

/// A file or folder chosen at run time: as a free parameter, its content enters the key,
/// not its path, so the same stage can be called on different files. A relative path is
/// found in the data folder (`STAGE_DATA_DIR`, [`Config::data_dir`]), else the current
/// directory.
///
/// ```
/// let input = stage_core::File::new("data/trips.csv");
/// assert_eq!(input.path(), std::path::Path::new("data/trips.csv"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct File {
    path: PathBuf,
}

impl File {
    /// The file or folder at `path`.
    pub fn new(path: impl Into<PathBuf>) -> File {
        File { path: path.into() }
    }

    /// Its path, as given.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where it is: its path resolved against the data folder of the current
    /// configuration (see [`Config::resolve_input`]).
    #[must_use]
    pub fn resolved(&self) -> PathBuf {
        Config::current().resolve_input(&self.path)
    }
}

impl AsRef<Path> for File {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

/// Why a free [`File`] could not be hashed: the path that was tried.
#[derive(Debug, thiserror::Error)]
#[error("cannot read `{}`", path.display())]
struct FileError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

impl Param for File {
    fn key_part(&self, cx: &Params<'_>) -> Result<(Digest, String), BoxError> {
        let path = cx.config.resolve_input(&self.path);
        let hash = cx
            .index
            .hash(&path)
            .map_err(|source| FileError { path, source })?;
        Ok((Digest::from(hash), self.path.display().to_string()))
    }
}

/// Collects a stage's free parameters during planning.
pub struct Params<'a> {
    pub(crate) stage: &'static StageInfo,
    pub(crate) index: &'a StatIndex,
    pub(crate) config: &'a Config,
    pub(crate) parts: Vec<crate::key::Param>,
}

impl Params<'_> {
    /// Adds the free parameter `name`.
    ///
    /// # Errors
    /// When the value cannot be encoded, or (a [`File`]) read.
    pub fn param<P: Param + ?Sized>(&mut self, name: &'static str, value: &P) -> Result<(), Error> {
        let (hash, value) = value.key_part(self).map_err(|source| Error::Param {
            stage: self.stage.path(),
            param: name.to_owned(),
            source,
        })?;
        self.parts.push(crate::key::Param {
            name: name.to_owned(),
            hash,
            value,
        });
        Ok(())
    }
}

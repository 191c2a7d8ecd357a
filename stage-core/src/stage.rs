//! The trait `#[stage]` implements, and the contexts its generated code talks to.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::codec::Codec;
use crate::info::StageInfo;
use crate::ingredients::{self, Ancestor, Input};
use crate::raw::StatIndex;
use crate::run::Planner;
use crate::{BoxError, Digest, Error};

/// A pipeline stage, implemented by `#[stage]` on a type named like the function.
///
/// The generated code is the only implementor; its methods describe the stage to the run
/// context: [`Stage::params`] and [`Stage::inputs`] give the ingredients of its key without
/// computing anything, [`Stage::compute`] runs the body given its ancestors' values.
pub trait Stage: 'static {
    /// The value the body returns (the `Ok` type for a body returning a `Result`).
    type Output: Send + Sync + 'static;
    /// The free parameters, as a tuple.
    type Args: Send + 'static;
    /// How the output is cached.
    type Codec: Codec<Self::Output>;
    /// What the attribute knows at compile time.
    const INFO: &'static StageInfo;

    /// Hands each free parameter to `cx`, in signature order.
    ///
    /// # Errors
    /// When a parameter cannot be turned into key bytes.
    fn params(args: &Self::Args, cx: &mut Params<'_>) -> Result<(), Error>;

    /// Hands each ancestor (with its arguments) and raw input to `cx`, in attribute order.
    ///
    /// # Errors
    /// When an ancestor cannot be planned or an input cannot be read.
    fn inputs(args: &Self::Args, cx: &mut Plan<'_>) -> Result<(), Error>;

    /// Runs the body with the ancestors' values, in the order [`Stage::inputs`] gave them.
    ///
    /// # Errors
    /// What the body returns as an error.
    fn compute(args: Self::Args, inputs: &Inputs<'_>) -> Result<Self::Output, BoxError>;
}

/// Names a stage in type position only: generated code writes `<path as AsStage>::Stage`
/// where it needs the stage `path` as a generic argument, so that a path naming a plain
/// function gives one error ("expected type, found function") instead of two.
#[doc(hidden)]
pub trait AsStage {
    /// The stage itself.
    type Stage: Stage;
}

impl<S: Stage> AsStage for S {
    type Stage = S;
}

/// The static description of stage `S`, as a function pointer for [`StageInfo`] tables.
#[must_use]
pub fn info_of<S: Stage>() -> &'static StageInfo {
    S::INFO
}

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
    fn key_part(&self, index: &StatIndex) -> Result<(Digest, String), BoxError>;
}

impl<T: Serialize + ?Sized> Param for T {
    fn key_part(&self, _: &StatIndex) -> Result<(Digest, String), BoxError> {
        let bytes = crate::canonical::to_bytes(self)?;
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
/// not its path, so the same stage can be called on different files.
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

    /// Its path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for File {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Param for File {
    fn key_part(&self, index: &StatIndex) -> Result<(Digest, String), BoxError> {
        let hash = index.hash(&self.path)?;
        Ok((Digest::from(hash), self.path.display().to_string()))
    }
}

/// Collects a stage's free parameters during planning.
pub struct Params<'a> {
    pub(crate) stage: &'static StageInfo,
    pub(crate) index: &'a StatIndex,
    pub(crate) parts: Vec<ingredients::Param>,
}

impl Params<'_> {
    /// Adds the free parameter `name`.
    ///
    /// # Errors
    /// When the value cannot be encoded, or (a [`File`]) read.
    pub fn param<P: Param + ?Sized>(&mut self, name: &'static str, value: &P) -> Result<(), Error> {
        let (hash, value) = value.key_part(self.index).map_err(|source| Error::Param {
            stage: self.stage.path(),
            param: name.to_owned(),
            source,
        })?;
        self.parts.push(ingredients::Param {
            name: name.to_owned(),
            hash,
            value,
        });
        Ok(())
    }
}

/// Collects a stage's ancestors and raw inputs during planning.
pub struct Plan<'p> {
    pub(crate) planner: &'p mut Planner,
    pub(crate) stage: &'static StageInfo,
    pub(crate) ancestors: Vec<(usize, Ancestor)>,
    pub(crate) inputs: Vec<Input>,
}

impl Plan<'_> {
    /// Adds ancestor `A`, called with `args`, bound to parameter `param`.
    ///
    /// # Errors
    /// When `A` cannot be planned: a cycle, an unreadable input further up.
    pub fn ancestor<A: Stage>(&mut self, param: &'static str, args: A::Args) -> Result<(), Error> {
        let id = self.planner.plan::<A>(args)?;
        let key = self.planner.key(id);
        self.ancestors.push((
            id,
            Ancestor {
                param: param.to_owned(),
                stage: A::INFO.path(),
                key,
            },
        ));
        Ok(())
    }

    /// Adds the raw input at `path`, bound to parameter `param`.
    ///
    /// # Errors
    /// When the file or folder cannot be read.
    pub fn raw(&mut self, param: &'static str, path: &'static str) -> Result<(), Error> {
        let hash = self
            .planner
            .index()
            .hash(Path::new(path))
            .map_err(|source| Error::Input {
                stage: self.stage.path(),
                path: PathBuf::from(path),
                source,
            })?;
        self.inputs.push(Input {
            param: param.to_owned(),
            path: path.to_owned(),
            hash: Digest::from(hash),
        });
        Ok(())
    }
}

/// A value shared between the stages of one call.
pub(crate) type Value = Arc<dyn Any + Send + Sync>;

/// The ancestors' values, handed to [`Stage::compute`].
pub struct Inputs<'a> {
    pub(crate) values: &'a [Value],
}

impl Inputs<'_> {
    /// The value of ancestor `i`, by reference.
    ///
    /// # Errors
    /// Never for generated code: `i` and `T` come from the same attribute.
    pub fn get<T: 'static>(&self, i: usize) -> Result<&T, BoxError> {
        self.values
            .get(i)
            .and_then(|v| v.downcast_ref::<T>())
            .ok_or_else(|| format!("internal error: ancestor {i} has another type").into())
    }

    /// The value of ancestor `i`, by value (a clone: other stages may share it).
    ///
    /// # Errors
    /// Never for generated code: `i` and `T` come from the same attribute.
    pub fn take<T: ByValue>(&self, i: usize) -> Result<T, BoxError> {
        self.get::<T>(i).cloned()
    }
}

/// An ancestor's output taken by value, which is a clone of the shared value.
#[diagnostic::on_unimplemented(
    message = "an ancestor's output `{Self}` is taken by value but is not `Clone`",
    label = "take it by reference instead: `&{Self}`",
    note = "an ancestor's value may be shared by several stages, so taking it by value clones it"
)]
pub trait ByValue: Clone + 'static {}

impl<T: Clone + 'static> ByValue for T {}

/// A parameter taken by value has exactly its ancestor's output type.
#[diagnostic::on_unimplemented(
    message = "this parameter is declared `{Self}`, but its ancestor outputs `{Output}`",
    label = "declare it as `{Output}`, or `&{Output}` to share it without a clone"
)]
pub trait OutputIs<Output> {}

impl<T> OutputIs<T> for T {}

/// Compiles only when `P` is `O`: checks a by-value ancestor parameter against the
/// ancestor's output, with a message that names both.
pub const fn output_is<P: OutputIs<O>, O>() {}

/// A raw input as the body's parameter type: `&Path` or `PathBuf`.
#[diagnostic::on_unimplemented(
    message = "a raw input cannot be passed as `{Self}`",
    label = "a parameter bound to a path takes `&Path` or `PathBuf`"
)]
pub trait RawArg {
    /// The argument for the literal path.
    fn from_raw(path: &'static str) -> Self;
}

impl RawArg for &Path {
    fn from_raw(path: &'static str) -> Self {
        Path::new(path)
    }
}

impl RawArg for PathBuf {
    fn from_raw(path: &'static str) -> Self {
        PathBuf::from(path)
    }
}

/// A body's `Result` with its error boxed, as the run context keeps it.
///
/// # Errors
/// The body's error, boxed.
pub fn body_result<T, E: Into<BoxError>>(result: Result<T, E>) -> Result<T, BoxError> {
    result.map_err(Into::into)
}

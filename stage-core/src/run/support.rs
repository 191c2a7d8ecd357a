//! What generated code calls besides the [`Stage`](super::Stage) trait: checks that read
//! as sentences when they fail, and conversions for the body's parameters.

use std::path::{Path, PathBuf};

use crate::BoxError;

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
pub trait RawArg<'p> {
    /// The argument for the resolved path.
    fn from_path(path: &'p Path) -> Self;
}

impl<'p> RawArg<'p> for &'p Path {
    fn from_path(path: &'p Path) -> Self {
        path
    }
}

impl RawArg<'_> for PathBuf {
    fn from_path(path: &Path) -> Self {
        path.to_path_buf()
    }
}

/// The free parameters of a per-item stage, cloned for each item.
#[diagnostic::on_unimplemented(
    message = "the free parameters of a per-item stage are cloned for each item, but `{Self}` is not `Clone`",
    label = "a stage with an `each` binding runs its body once per element"
)]
pub trait ItemArgs: Clone {}

impl<T: Clone> ItemArgs for T {}

/// A copy of a per-item stage's arguments, for one item.
#[must_use]
pub fn clone_args<T: ItemArgs>(args: &T) -> T {
    args.clone()
}

/// An element taken by value: a clone of the element.
#[must_use]
pub fn clone_element<T: ByValue>(element: &T) -> T {
    element.clone()
}

/// Whether two lists of names are the same, in the same order: checks at compile time that
/// a sweep names the swept stage's parameters.
#[must_use]
pub const fn same_names(left: &[&str], right: &[&str]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    let mut name = 0;
    while name < left.len() {
        let (one, other) = (left[name].as_bytes(), right[name].as_bytes());
        if one.len() != other.len() {
            return false;
        }
        let mut byte = 0;
        while byte < one.len() {
            if one[byte] != other[byte] {
                return false;
            }
            byte += 1;
        }
        name += 1;
    }
    true
}

/// A body's `Result` with its error boxed, as the run context keeps it.
///
/// # Errors
/// The body's error, boxed.
pub fn body_result<T, E: Into<BoxError>>(result: Result<T, E>) -> Result<T, BoxError> {
    result.map_err(Into::into)
}

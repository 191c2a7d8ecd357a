//! Per-item stages and sweeps as their users see them: [`Items`], the outputs of a per-item
//! stage read one at a time; [`Each`], what `each(ancestor)` can go over; and the erased
//! helpers the planner uses for both.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::key::{Digest, canonical_bytes};
use crate::run::stage::{Stage, Value};
use crate::{BoxError, Error};

/// The outputs of a per-item stage, one per element, in order: what a stage that binds a
/// per-item stage without `each` receives, and what calling one returns.
///
/// Items are read from the cache one at a time as they are asked for, so a reducer over
/// many large items holds one at a time. A reducer binds them by reference:
/// `#[stage(all = thumbnail, cache = bincode)] fn collage(all: &Items<Thumb>) -> ...`,
/// and iterates with `for thumb in all.iter() { let thumb = thumb?; ... }`.
pub struct Items<T> {
    list: Arc<ItemList>,
    source: Arc<dyn ItemSource>,
    _item: PhantomData<fn() -> T>,
}

impl<T> Clone for Items<T> {
    fn clone(&self) -> Self {
        Items {
            list: Arc::clone(&self.list),
            source: Arc::clone(&self.source),
            _item: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Items<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Items")
            .field("stage", &self.list.stage)
            .field("len", &self.list.items.len())
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> Items<T> {
    pub(crate) fn new(list: Arc<ItemList>, source: Arc<dyn ItemSource>) -> Items<T> {
        Items {
            list,
            source,
            _item: PhantomData,
        }
    }

    /// How many items there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.list.items.len()
    }

    /// Whether there are none (an empty folder or collection).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.list.items.is_empty()
    }

    /// Item `i`, read from the cache (recomputed, should its entry be damaged).
    ///
    /// # Errors
    /// When `i` is out of range, or the item cannot be read nor recomputed.
    pub fn get(&self, i: usize) -> Result<T, Error> {
        if i >= self.len() {
            return Err(Error::Body {
                stage: self.list.stage.clone(),
                source: format!("item {i} of {} asked for", self.len()).into(),
            });
        }
        let value = self.source.load(&self.list, i)?;
        let typed = Arc::downcast::<T>(value).map_err(|_| self.internal("another type"))?;
        Arc::try_unwrap(typed).map_err(|_| self.internal("an item still shared"))
    }

    /// The items in order, each read when the iterator gets to it.
    #[must_use = "an iterator reads nothing until it is used"]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Result<T, Error>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Every item, read now.
    ///
    /// # Errors
    /// The first item that cannot be read.
    pub fn to_vec(&self) -> Result<Vec<T>, Error> {
        self.iter().collect()
    }

    /// What item `i` is for: the file's path relative to the folder of `each("folder")`,
    /// or the index of the element.
    #[must_use]
    pub fn label(&self, i: usize) -> Option<&str> {
        self.list.items.get(i).map(|item| item.label.as_str())
    }

    /// For a per-item stage over a folder, the path of item `i`'s file relative to the
    /// folder.
    #[must_use]
    pub fn path(&self, i: usize) -> Option<&Path> {
        self.list
            .files
            .then(|| self.label(i).map(Path::new))
            .flatten()
    }

    fn internal(&self, what: &str) -> Error {
        Error::Body {
            stage: self.list.stage.clone(),
            source: format!("internal error: {what}").into(),
        }
    }
}

/// The items of one call of a per-item stage, as the cache lists them.
#[derive(Debug)]
pub(crate) struct ItemList {
    /// The per-item stage's path.
    pub stage: String,
    /// Whether the elements are files (labels are relative paths).
    pub files: bool,
    pub items: Vec<ItemInfo>,
}

/// One item: the element it is for, and its output.
#[derive(Debug, Clone)]
pub(crate) struct ItemInfo {
    /// The element's relative path or index.
    pub label: String,
    /// The item's key.
    pub key: Digest,
    /// The blake3 of its payload.
    pub output: Digest,
    /// Its payload's size.
    pub bytes: u64,
    /// Its payload, when small enough to be kept with the list.
    pub inline: Option<bytes::Bytes>,
}

/// Reads (or recomputes) item `i` of a list, its value type erased.
pub(crate) trait ItemSource: Send + Sync {
    fn load(&self, list: &ItemList, i: usize) -> Result<Value, Error>;
}

/// What `each(ancestor)` can go over: a `Vec` of serde values (each element is identified
/// by its canonical bytes, so reordering or inserting elements changes no other element's
/// key), or the [`Items`] of another per-item stage (each identified by its output).
#[diagnostic::on_unimplemented(
    message = "`each` cannot go over a `{Self}`",
    label = "`each(stage)` needs the stage to return a `Vec<T>` (with `T: serde::Serialize`) or to be a per-item stage itself",
    note = "to go over the files below a folder, write `each(\"path/to/folder\")`"
)]
pub trait Each: Send + Sync + 'static {
    /// One element.
    type Item: Send + Sync + 'static;

    /// How many elements there are.
    fn count(&self) -> usize;

    /// What item `i`'s key takes from its element, and a label for people.
    ///
    /// # Errors
    /// When the element cannot be turned into key bytes.
    fn identity(&self, i: usize) -> Result<(Digest, String), BoxError>;

    /// Runs `f` with element `i`.
    ///
    /// # Errors
    /// When the element cannot be read.
    fn with_element(&self, i: usize, f: &mut dyn FnMut(&Self::Item)) -> Result<(), Error>;
}

impl<T: Serialize + Send + Sync + 'static> Each for Vec<T> {
    type Item = T;

    fn count(&self) -> usize {
        self.len()
    }

    fn identity(&self, i: usize) -> Result<(Digest, String), BoxError> {
        let bytes = canonical_bytes(&self[i])?;
        Ok((Digest::of(&bytes), i.to_string()))
    }

    fn with_element(&self, i: usize, f: &mut dyn FnMut(&T)) -> Result<(), Error> {
        f(&self[i]);
        Ok(())
    }
}

impl<T: Send + Sync + 'static> Each for Items<T> {
    type Item = T;

    fn count(&self) -> usize {
        self.len()
    }

    fn identity(&self, i: usize) -> Result<(Digest, String), BoxError> {
        let item = &self.list.items[i];
        Ok((item.output, item.label.clone()))
    }

    fn with_element(&self, i: usize, f: &mut dyn FnMut(&T)) -> Result<(), Error> {
        f(&self.get(i)?);
        Ok(())
    }
}

/// [`Each`] of an ancestor's value, its type erased.
pub(crate) trait Elements: Send + Sync {
    fn count(&self, value: &Value) -> usize;
    fn identity(&self, value: &Value, i: usize) -> Result<(Digest, String), BoxError>;
    fn with_element(
        &self,
        value: &Value,
        i: usize,
        f: &mut dyn FnMut(&(dyn Any + Send + Sync)),
    ) -> Result<(), Error>;
}

pub(crate) struct ElementsOf<V>(pub PhantomData<fn() -> V>);

impl<V: Each> ElementsOf<V> {
    fn of(value: &Value) -> Result<&V, Error> {
        value.downcast_ref::<V>().ok_or_else(|| Error::Body {
            stage: String::new(),
            source: "internal error: the elements have another type".into(),
        })
    }
}

impl<V: Each> Elements for ElementsOf<V> {
    fn count(&self, value: &Value) -> usize {
        Self::of(value).map_or(0, Each::count)
    }

    fn identity(&self, value: &Value, i: usize) -> Result<(Digest, String), BoxError> {
        Self::of(value)?.identity(i)
    }

    fn with_element(
        &self,
        value: &Value,
        i: usize,
        f: &mut dyn FnMut(&(dyn Any + Send + Sync)),
    ) -> Result<(), Error> {
        Self::of(value)?.with_element(i, &mut |element| f(element))
    }
}

/// Gathers a sweep's values into the `Vec<(Args, Value)>` its parameter takes.
pub(crate) trait Gather: Send + Sync {
    fn gather(&self, values: &[Value]) -> Result<Value, BoxError>;
}

pub(crate) struct SweepOf<A: Stage> {
    pub points: Vec<A::Args>,
}

impl<A: Stage> Gather for SweepOf<A>
where
    A::Args: Clone + Sync,
    A::Value: Clone,
{
    fn gather(&self, values: &[Value]) -> Result<Value, BoxError> {
        let gathered = self
            .points
            .iter()
            .zip(values)
            .map(|(point, value)| {
                let value = value
                    .downcast_ref::<A::Value>()
                    .ok_or("internal error: a sweep point of another type")?;
                Ok((point.clone(), value.clone()))
            })
            .collect::<Result<Vec<_>, BoxError>>()?;
        Ok(Arc::new(gathered))
    }
}

//! The trait `#[stage]` implements, the contexts its generated code plans and computes
//! with, and the type-erased call the planner and the executor handle.

use std::any::{Any, TypeId};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::codec::{Codec, Payload, Reads, codec_id};
use crate::config::Config;
use crate::key::Digest;
use crate::run::info::StageInfo;
use crate::run::items::{Each, Elements, ElementsOf, Gather, ItemList, ItemSource, Items, SweepOf};
use crate::run::param::Params;
use crate::run::support::{ByValue, RawArg};
use crate::store::PayloadWriter;
use crate::{BoxError, Error};

/// A pipeline stage, implemented by `#[stage]` on a type named like the function.
///
/// The generated code is the only implementor; its methods describe the stage to the run
/// context: [`Stage::params`] and [`Stage::inputs`] give the ingredients of its key without
/// computing anything, [`Stage::compute`] runs the body given its ancestors' values.
pub trait Stage: 'static {
    /// The value the body returns (the `Ok` type for a body returning a `Result`).
    type Output: Send + Sync + 'static;
    /// What a call returns and a stage bound to this one receives: the output, or for a
    /// per-item stage ([`Plan::each`]) the [`Items`] of its outputs.
    type Value: Send + Sync + 'static;
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
    /// When an ancestor's arguments cannot be made.
    fn inputs(args: &Self::Args, cx: &mut Plan<'_>) -> Result<(), Error>;

    /// Runs the body with the ancestors' values, in the order [`Stage::inputs`] gave them.
    ///
    /// # Errors
    /// What the body returns as an error.
    fn compute(args: Self::Args, inputs: &Inputs<'_>) -> Result<Self::Output, BoxError>;

    /// A copy of the arguments, for a per-item stage, whose body runs once per item: `None`
    /// (the default) for a stage that runs once.
    #[must_use]
    fn clone_args(args: &Self::Args) -> Option<Self::Args> {
        let _ = args;
        None
    }
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

/// Collects a stage's ancestors and raw inputs during planning, in attribute order.
pub struct Plan<'a> {
    pub(crate) deps: Vec<Dep>,
    pub(crate) _planner: PhantomData<&'a mut ()>,
}

/// One input of a stage, as [`Stage::inputs`] names it.
pub(crate) enum Dep {
    /// `param = ancestor(args)`.
    Ancestor {
        param: &'static str,
        call: Box<dyn Call>,
    },
    /// `param = "path"`.
    Raw {
        param: &'static str,
        path: &'static str,
    },
    /// `param = each("folder")`: one call per file below the folder.
    EachFile {
        param: &'static str,
        path: &'static str,
    },
    /// `param = each(ancestor(args))`: one call per element of the ancestor's value.
    Each {
        param: &'static str,
        call: Box<dyn Call>,
        elements: Box<dyn Elements>,
    },
    /// `param = sweep(ancestor, ...)`: one call of the ancestor per point, gathered.
    Sweep {
        param: &'static str,
        calls: Vec<Box<dyn Call>>,
        gather: Box<dyn Gather>,
    },
}

impl Plan<'_> {
    /// Adds ancestor `A`, called with `args`, bound to parameter `param`.
    ///
    /// # Errors
    /// Never today; the signature leaves room for checks of the arguments.
    pub fn ancestor<A: Stage>(&mut self, param: &'static str, args: A::Args) -> Result<(), Error> {
        self.deps.push(Dep::Ancestor {
            param,
            call: Box::new(Typed::<A>::new(args)),
        });
        Ok(())
    }

    /// Adds the raw input at `path`, bound to parameter `param`.
    ///
    /// # Errors
    /// Never today; the file is read when the plan is made.
    pub fn raw(&mut self, param: &'static str, path: &'static str) -> Result<(), Error> {
        self.deps.push(Dep::Raw { param, path });
        Ok(())
    }

    /// Makes this a per-item stage over the files below the folder `path` (recursively,
    /// in order of their relative paths): its body runs once per file, with the file's
    /// path bound to `param`.
    ///
    /// # Errors
    /// Never today; the folder is read when the plan is made.
    pub fn each_file(&mut self, param: &'static str, path: &'static str) -> Result<(), Error> {
        self.deps.push(Dep::EachFile { param, path });
        Ok(())
    }

    /// Makes this a per-item stage over the elements of ancestor `A`'s value (a `Vec`, or
    /// the [`Items`] of another per-item stage), called with `args`: its body runs once
    /// per element, with the element bound to `param`.
    ///
    /// # Errors
    /// Never today; the signature leaves room for checks of the arguments.
    pub fn each<A: Stage>(&mut self, param: &'static str, args: A::Args) -> Result<(), Error>
    where
        A::Value: Each,
    {
        self.deps.push(Dep::Each {
            param,
            call: Box::new(Typed::<A>::new(args)),
            elements: Box::new(ElementsOf::<A::Value>(PhantomData)),
        });
        Ok(())
    }

    /// Binds `param` to the values of ancestor `A` at each of `points` (its arguments), in
    /// that order, as a `Vec<(A::Args, A::Value)>`; each point is an ordinary call of `A`,
    /// cached under the key a direct call with those arguments has.
    ///
    /// # Errors
    /// Never today; the signature leaves room for checks of the points.
    pub fn sweep<A: Stage>(
        &mut self,
        param: &'static str,
        points: Vec<A::Args>,
    ) -> Result<(), Error>
    where
        A::Args: Clone + Sync,
        A::Value: Clone,
    {
        let calls = points
            .iter()
            .map(|p| Box::new(Typed::<A>::new(p.clone())) as Box<dyn Call>)
            .collect();
        self.deps.push(Dep::Sweep {
            param,
            calls,
            gather: Box::new(SweepOf::<A> { points }),
        });
        Ok(())
    }
}

/// A value shared between the stages of one call.
pub(crate) type Value = Arc<dyn Any + Send + Sync>;

/// The inputs handed to [`Stage::compute`]: the ancestors' values (one per binding, a
/// sweep's gathered), the raw inputs' resolved paths, and for one item of a per-item stage
/// its element, in the order [`Stage::inputs`] gave them.
pub struct Inputs<'a> {
    pub(crate) values: &'a [Value],
    pub(crate) raw: &'a [PathBuf],
    pub(crate) element: Option<Element<'a>>,
}

/// The element one call of a per-item stage is for.
#[derive(Clone, Copy)]
pub(crate) enum Element<'a> {
    /// A file below the folder of `each("folder")`.
    File(&'a Path),
    /// An element of the value of `each(ancestor)`.
    Value(&'a (dyn Any + Send + Sync)),
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

    /// The element of this call of a per-item stage, by reference.
    ///
    /// # Errors
    /// Never for generated code: the attribute binds `each` to a parameter of this type.
    pub fn element<T: 'static>(&self) -> Result<&T, BoxError> {
        match self.element {
            Some(Element::Value(value)) => value
                .downcast_ref::<T>()
                .ok_or_else(|| "internal error: the element has another type".into()),
            _ => Err("internal error: no element".into()),
        }
    }

    /// The file of this call of a per-item stage over a folder, as the parameter's type.
    ///
    /// # Errors
    /// Never for generated code: the attribute binds `each("folder")` to a path parameter.
    pub fn element_path<'p, T: RawArg<'p>>(&'p self) -> Result<T, BoxError> {
        match self.element {
            Some(Element::File(path)) => Ok(T::from_path(path)),
            _ => Err("internal error: no file element".into()),
        }
    }

    /// The path of raw input `i`, resolved against the data folder, as the parameter's type.
    ///
    /// # Errors
    /// Never for generated code: `i` comes from the same attribute.
    pub fn raw<'p, T: RawArg<'p>>(&'p self, i: usize) -> Result<T, BoxError> {
        self.raw
            .get(i)
            .map(|p| T::from_path(p))
            .ok_or_else(|| format!("internal error: no raw input {i}").into())
    }
}

/// How a stage's output is kept, as the planner and the executor need to know it.
#[derive(Debug, Clone)]
pub(crate) struct CodecInfo {
    /// `id+settings`, as the key records it.
    pub id: String,
    /// The settings new entries are written with.
    pub settings: String,
    pub shape: Option<Digest>,
    pub persistent: bool,
    pub extension: &'static str,
    pub reads: Reads,
}

/// A call of one stage with its arguments, its type erased so that calls of any stage mix
/// in one plan.
pub(crate) trait Call: Send + Sync {
    /// What the attribute knows of the stage.
    fn info(&self) -> &'static StageInfo;
    /// The stage's type, which with the parameters identifies a call.
    fn stage_type(&self) -> TypeId;
    /// Hands the free parameters to `cx`.
    fn params(&self, cx: &mut Params<'_>) -> Result<(), Error>;
    /// Hands the ancestors and raw inputs to `cx`.
    fn inputs(&self, cx: &mut Plan<'_>) -> Result<(), Error>;
    /// How the output is kept, under `config`.
    fn codec(&self, config: &Config) -> CodecInfo;
    /// Runs the body; a call runs at most once.
    fn compute(&self, inputs: &Inputs<'_>) -> Result<Value, BoxError>;
    /// Runs the body of a per-item stage for one item (its element in `inputs`).
    fn compute_item(&self, inputs: &Inputs<'_>) -> Result<Value, BoxError>;
    /// The value of a per-item stage: its items, read through `source`.
    fn items(&self, list: Arc<ItemList>, source: Arc<dyn ItemSource>) -> Value;
    /// Encodes `value` (this stage's output) into `out`.
    fn encode(
        &self,
        value: &Value,
        out: &mut PayloadWriter,
        settings: &str,
    ) -> Result<(), BoxError>;
    /// Decodes a payload into this stage's output.
    fn decode(&self, payload: Payload) -> Result<Value, BoxError>;
}

/// The [`Call`] of stage `S`.
pub(crate) struct Typed<S: Stage> {
    args: Mutex<Option<S::Args>>,
}

impl<S: Stage> Typed<S> {
    pub(crate) fn new(args: S::Args) -> Typed<S> {
        Typed {
            args: Mutex::new(Some(args)),
        }
    }

    /// Runs `f` on the arguments, while they are still here.
    fn with_args<R>(&self, f: impl FnOnce(&S::Args) -> Result<R, Error>) -> Result<R, Error> {
        let args = self
            .args
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let args = args.as_ref().ok_or_else(|| Error::Body {
            stage: S::INFO.path(),
            source: "internal error: the call was planned after it ran".into(),
        })?;
        f(args)
    }
}

impl<S: Stage> Call for Typed<S> {
    fn info(&self) -> &'static StageInfo {
        S::INFO
    }

    fn stage_type(&self) -> TypeId {
        TypeId::of::<S>()
    }

    fn params(&self, cx: &mut Params<'_>) -> Result<(), Error> {
        self.with_args(|args| S::params(args, cx))
    }

    fn inputs(&self, cx: &mut Plan<'_>) -> Result<(), Error> {
        self.with_args(|args| S::inputs(args, cx))
    }

    fn codec(&self, config: &Config) -> CodecInfo {
        let settings = <S::Codec as Codec<S::Output>>::settings(config);
        CodecInfo {
            id: codec_id::<S::Output, S::Codec>(&settings),
            settings,
            shape: <S::Codec as Codec<S::Output>>::shape(),
            persistent: <S::Codec as Codec<S::Output>>::PERSISTENT,
            extension: <S::Codec as Codec<S::Output>>::EXTENSION,
            reads: <S::Codec as Codec<S::Output>>::READS,
        }
    }

    fn compute(&self, inputs: &Inputs<'_>) -> Result<Value, BoxError> {
        let args = self
            .args
            .lock()
            .map_err(|_| "internal error: poisoned arguments")?
            .take()
            .ok_or("internal error: a stage ran twice in one call")?;
        Ok(Arc::new(S::compute(args, inputs)?))
    }

    fn compute_item(&self, inputs: &Inputs<'_>) -> Result<Value, BoxError> {
        let args = {
            let args = self
                .args
                .lock()
                .map_err(|_| "internal error: poisoned arguments")?;
            let args = args
                .as_ref()
                .ok_or("internal error: the arguments are gone")?;
            S::clone_args(args).ok_or("internal error: not a per-item stage")?
        };
        Ok(Arc::new(S::compute(args, inputs)?))
    }

    fn items(&self, list: Arc<ItemList>, source: Arc<dyn ItemSource>) -> Value {
        Arc::new(Items::<S::Output>::new(list, source))
    }

    fn encode(
        &self,
        value: &Value,
        out: &mut PayloadWriter,
        settings: &str,
    ) -> Result<(), BoxError> {
        let value = value
            .downcast_ref::<S::Output>()
            .ok_or("internal error: output of another type")?;
        <S::Codec as Codec<S::Output>>::encode(value, out, settings)
    }

    fn decode(&self, payload: Payload) -> Result<Value, BoxError> {
        Ok(Arc::new(<S::Codec as Codec<S::Output>>::decode(payload)?))
    }
}

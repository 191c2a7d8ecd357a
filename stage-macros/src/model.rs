//! Validation: the attribute and the function, checked together, become a [`Model`] that
//! expansion can trust. Every problem is reported, each at its own tokens.

use syn::spanned::Spanned;
use syn::{
    Expr, FnArg, GenericArgument, Ident, Item, ItemFn, LitStr, Pat, Path, PathArguments,
    ReturnType, Type, Visibility,
};

use crate::args::{Arg, Args, Value};
use crate::names;

/// Keys that configure the stage instead of binding a parameter.
const RESERVED: [&str; 5] = ["cache", "version", "uses", "untracked", "name"];

/// How the output is kept.
#[derive(Clone)]
pub enum Cache {
    Parquet,
    Arrow,
    Bincode,
    Memory,
    /// `cache = path::ToCodec`: a type that implements `stage::Codec<Output>`.
    Custom(Path),
}

impl Cache {
    pub fn name(&self) -> String {
        match self {
            Cache::Parquet => "parquet".to_owned(),
            Cache::Arrow => "arrow".to_owned(),
            Cache::Bincode => "bincode".to_owned(),
            Cache::Memory => "memory".to_owned(),
            Cache::Custom(path) => quote::quote!(#path).to_string().replace(' ', ""),
        }
    }
}

/// What feeds one parameter of the function.
pub enum Source {
    /// Not bound: a free parameter of the wrapper.
    Free,
    /// `param = "path"`
    Raw(LitStr),
    /// `param = stage(args)`; `by_ref` when the parameter is `&T`.
    Ancestor {
        path: Path,
        args: Vec<Expr>,
        by_ref: bool,
    },
    /// `param = each("folder")`: one call per file below the folder.
    EachFile(LitStr),
    /// `param = each(stage(args))`: one call per element of the stage's value.
    Each {
        path: Path,
        args: Vec<Expr>,
        by_ref: bool,
    },
    /// `param = sweep(stage, a = [..], b = list)`: the stage at every point of the grid.
    Sweep {
        path: Path,
        axes: Vec<(Ident, Expr)>,
        by_ref: bool,
    },
}

pub struct Param {
    pub ident: Ident,
    pub ty: Type,
    pub source: Source,
}

/// The output: the `Ok` type when the body returns a `Result`.
pub struct Output {
    pub ty: Type,
    pub is_result: bool,
}

/// A stage, validated.
pub struct Model {
    /// Whether one parameter is bound with `each`: the stage runs once per element.
    pub mapped: bool,
    pub func: ItemFn,
    pub cache: Cache,
    pub version: Option<String>,
    pub name: Option<LitStr>,
    pub uses: Vec<Path>,
    /// Names the untracked-name warning leaves alone.
    pub untracked: Vec<Path>,
    /// Companions of the items of the enclosing `#[stage::pipeline]` module it names.
    pub module_items: Vec<Ident>,
    pub params: Vec<Param>,
    pub output: Output,
}

/// Collects errors, so that all of them are reported at once.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    #[allow(
        clippy::needless_pass_by_value,
        reason = "takes tokens and spans alike"
    )]
    pub fn push(&mut self, span: impl Spanned, message: impl std::fmt::Display) {
        self.add(syn::Error::new(span.span(), message));
    }

    pub fn add(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub fn finish<T>(self, value: T) -> syn::Result<T> {
        self.0.map_or(Ok(value), Err)
    }
}

/// Checks a `#[stage]` and builds its model.
pub fn stage(args: Args, func: ItemFn) -> syn::Result<Model> {
    let mut errors = Errors::default();
    check_signature(&func, &mut errors);
    let mut params = signature_params(&func, &mut errors);
    let names: Vec<String> = params.iter().map(|p| p.ident.to_string()).collect();
    let mut cache = Cache::Memory;
    let (mut version, mut name) = (None, None);
    let (mut uses, mut untracked) = (Vec::new(), Vec::new());
    let mut seen: Vec<String> = Vec::new();
    for Arg { key, value } in args.0 {
        let key_text = key.to_string();
        if seen.contains(&key_text) {
            errors.push(&key, format!("duplicate argument `{key}`"));
            continue;
        }
        seen.push(key_text.clone());
        match key_text.as_str() {
            "cache" => cache = parse_cache(&value, &mut errors),
            "version" => version = parse_version(&value, &mut errors),
            "name" => name = parse_str(&key, &value, &mut errors),
            "uses" => uses = parse_paths(&key, value, &mut errors),
            "untracked" => untracked = parse_paths(&key, value, &mut errors),
            _ => bind(
                &key,
                value,
                &mut params,
                &names,
                &func.sig.ident,
                &mut errors,
            ),
        }
    }
    crate::each::check_one(&params, &mut errors);
    let output = output(&func.sig.output, &mut errors);
    for p in &params {
        if matches!(p.source, Source::Free) && matches!(p.ty, Type::Reference(_)) {
            errors.push(&p.ty, format!(
                "free parameter `{}` must be an owned type: its value is kept for the whole call (take `String` instead of `&str`, `Vec<T>` instead of `&[T]`)",
                p.ident
            ));
        }
    }
    let mapped = params
        .iter()
        .any(|p| matches!(p.source, Source::EachFile(_) | Source::Each { .. }));
    errors.finish(Model {
        mapped,
        func,
        cache,
        version,
        name,
        uses,
        untracked,
        module_items: Vec::new(),
        params,
        output,
    })
}

fn check_signature(func: &ItemFn, errors: &mut Errors) {
    let sig = &func.sig;
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(
            &sig.generics,
            "a stage cannot be generic: its output type and cache must be known at compile time",
        );
    }
    if let Some(t) = &sig.asyncness {
        errors.push(
            t,
            "`async fn` stages are not supported yet: make the function synchronous",
        );
    }
    if let Some(t) = &sig.constness {
        errors.push(t, "a stage cannot be a `const fn`");
    }
    if let Some(t) = &sig.unsafety {
        errors.push(t, "a stage cannot be an `unsafe fn`");
    }
    if let Some(v) = &sig.variadic {
        errors.push(v, "a stage cannot be variadic");
    }
}

fn signature_params(func: &ItemFn, errors: &mut Errors) -> Vec<Param> {
    let mut params = Vec::new();
    for input in &func.sig.inputs {
        match input {
            FnArg::Receiver(r) => errors.push(r, "a stage cannot take `self`: write it as a free function and bind its inputs in `#[stage(...)]`"),
            FnArg::Typed(pt) => match &*pt.pat {
                Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                    let ident = pi.ident.clone();
                    if RESERVED.contains(&ident.to_string().as_str()) {
                        errors.push(&ident, format!("`{ident}` is reserved by `#[stage]` and cannot name a parameter: rename it"));
                    }
                    if let Type::ImplTrait(_) = &*pt.ty {
                        errors.push(&pt.ty, "a stage cannot take `impl Trait`: its parameters need concrete types");
                    }
                    params.push(Param { ident, ty: (*pt.ty).clone(), source: Source::Free });
                }
                other => errors.push(other, "a stage's parameters must be plain names (`name: Type`)"),
            },
        }
    }
    params
}

/// `parquet`, `arrow`, `bincode`, `memory`, or a path to a codec type. A single lowercase
/// name that is none of the built-in ones is taken for a typo, not a type.
fn parse_cache(value: &Value, errors: &mut Errors) -> Cache {
    if let Value::Path(p) = value {
        match p.get_ident().map(ToString::to_string).as_deref() {
            Some("parquet") => return Cache::Parquet,
            Some("arrow") => return Cache::Arrow,
            Some("bincode") => return Cache::Bincode,
            Some("memory") => return Cache::Memory,
            Some(name) if name.starts_with(|c: char| c.is_ascii_lowercase()) => {}
            _ => return Cache::Custom(p.clone()),
        }
    }
    errors.push(
        value.span(),
        "unknown cache format: expected one of `parquet`, `arrow`, `bincode`, `memory`, or the path of a type that implements `stage::Codec` (`cache = my::Json`)",
    );
    Cache::Memory
}

fn parse_version(value: &Value, errors: &mut Errors) -> Option<String> {
    match value {
        Value::Str(s) => Some(s.value()),
        Value::Other(Expr::Lit(lit)) if matches!(lit.lit, syn::Lit::Int(_)) => {
            let syn::Lit::Int(i) = &lit.lit else {
                return None;
            };
            Some(i.base10_digits().to_owned())
        }
        other => {
            errors.push(
                other.span(),
                "expected a string or an integer: `version = \"2\"`",
            );
            None
        }
    }
}

fn parse_str(key: &Ident, value: &Value, errors: &mut Errors) -> Option<LitStr> {
    if let Value::Str(s) = value {
        return Some(s.clone());
    }
    errors.push(
        value.span(),
        format!("expected a string: `{key} = \"...\"`"),
    );
    None
}

/// `uses = [a, m::b]` or `untracked = [A]`: a list of paths (one path alone is a list too).
fn parse_paths(key: &Ident, value: Value, errors: &mut Errors) -> Vec<Path> {
    match value {
        Value::List(paths) => paths,
        Value::Path(path) => vec![path],
        other => {
            let example = if key == "uses" {
                "`uses = [helper, config::BUCKETS]`"
            } else {
                "`untracked = [log, LEVEL]`"
            };
            errors.push(
                other.span(),
                format!("expected a list of item names: {example}"),
            );
            Vec::new()
        }
    }
}

fn bind(
    key: &Ident,
    value: Value,
    params: &mut [Param],
    names: &[String],
    func: &Ident,
    errors: &mut Errors,
) {
    let Some(param) = params.iter_mut().find(|p| p.ident == *key) else {
        let list = names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let params = if list.is_empty() {
            "none".to_owned()
        } else {
            list
        };
        errors.push(key, format!(
            "`{key}` is not a parameter of `{func}`: expected one of `cache`, `version`, `uses`, `untracked`, `name`, or a parameter to bind (parameters: {params})"
        ));
        return;
    };
    let by_ref = matches!(param.ty, Type::Reference(_));
    param.source = match value {
        Value::Str(path) => Source::Raw(path),
        Value::Path(path) => Source::Ancestor {
            path,
            args: Vec::new(),
            by_ref,
        },
        Value::Call(path, args) if crate::each::is_keyword(&path) => {
            match crate::each::source(key, &path, args, by_ref, errors) {
                Some(source) => source,
                None => return,
            }
        }
        Value::Call(path, args) => Source::Ancestor { path, args, by_ref },
        other => {
            errors.push(other.span(), format!(
                "cannot bind `{key}` to this: expected an earlier stage (`{key} = load`, `{key} = load(10)`) or a path (`{key} = \"data/file.csv\"`)"
            ));
            return;
        }
    };
}

fn output(ret: &ReturnType, errors: &mut Errors) -> Output {
    let ty = match ret {
        ReturnType::Default => {
            return Output {
                ty: syn::parse_quote!(()),
                is_result: false,
            };
        }
        ReturnType::Type(_, ty) => ty,
    };
    if let Type::ImplTrait(_) = &**ty {
        errors.push(
            ty,
            "a stage cannot return `impl Trait`: name the output type",
        );
    }
    let Type::Path(tp) = &**ty else {
        return Output {
            ty: (**ty).clone(),
            is_result: false,
        };
    };
    let Some(last) = tp.path.segments.last().filter(|s| s.ident == "Result") else {
        return Output {
            ty: (**ty).clone(),
            is_result: false,
        };
    };
    let ok = match &last.arguments {
        PathArguments::AngleBracketed(a) => a.args.iter().find_map(|arg| match arg {
            GenericArgument::Type(t) => Some(t.clone()),
            _ => None,
        }),
        _ => None,
    };
    if let Some(ty) = ok {
        Output {
            ty,
            is_result: true,
        }
    } else {
        errors.push(ty, "cannot tell the output type: write the result type with its `Ok` type, e.g. `Result<T, E>` or `io::Result<T>`");
        Output {
            ty: syn::parse_quote!(()),
            is_result: true,
        }
    }
}

/// What a tracked item's companion is attached to.
pub enum Tracked {
    /// A named item.
    Named { ident: Ident, vis: Visibility },
    /// An `impl` block, registered against `of`: the companion of the type it is for.
    Impl { of: Path, name: String },
}

/// A `#[stage::track]` item, validated.
pub struct Track {
    pub item: Item,
    pub tracked: Tracked,
    pub uses: Vec<Path>,
    pub untracked: Vec<Path>,
}

const TRACKABLE: &str = "it takes a `fn`, `const`, `static`, `struct`, `enum`, `union`, `type`, `trait` or `impl` block";

/// Checks a `#[stage::track]` and builds its model.
pub fn track(args: Args, item: Item) -> syn::Result<Track> {
    let mut errors = Errors::default();
    let (mut uses, mut untracked) = (Vec::new(), Vec::new());
    for Arg { key, value } in args.0 {
        match key.to_string().as_str() {
            "uses" => uses = parse_paths(&key, value, &mut errors),
            "untracked" => untracked = parse_paths(&key, value, &mut errors),
            _ => errors.push(
                &key,
                format!("unknown argument `{key}`: expected `uses = [item, ...]` or `untracked = [name, ...]`"),
            ),
        }
    }
    let tracked = tracked(&item, &mut errors);
    errors.finish(()).and_then(|()| {
        let tracked = tracked.ok_or_else(|| syn::Error::new_spanned(&item, TRACKABLE))?;
        Ok(Track {
            item,
            tracked,
            uses,
            untracked,
        })
    })
}

fn tracked(item: &Item, errors: &mut Errors) -> Option<Tracked> {
    let named = |ident: &Ident, vis: &Visibility| {
        Some(Tracked::Named {
            ident: ident.clone(),
            vis: vis.clone(),
        })
    };
    let ty = |ident: &Ident, vis: &Visibility, errors: &mut Errors| {
        if !names::is_camel(&ident.to_string()) {
            errors.push(ident, format!(
                "a tracked type needs an `UpperCamelCase` name with a lowercase letter (`Id`, not `ID`): `{ident}` cannot be told apart from a constant in `uses`"
            ));
        }
        named(ident, vis)
    };
    match item {
        Item::Fn(f) => named(&f.sig.ident, &f.vis),
        Item::Const(c) if c.ident == "_" => {
            errors.push(
                &c.ident,
                "cannot track an unnamed `const _`: give it a name",
            );
            None
        }
        Item::Const(c) => named(&c.ident, &c.vis),
        Item::Static(s) => named(&s.ident, &s.vis),
        Item::Struct(s) => ty(&s.ident, &s.vis, errors),
        Item::Enum(e) => ty(&e.ident, &e.vis, errors),
        Item::Union(u) => ty(&u.ident, &u.vis, errors),
        Item::Type(t) => ty(&t.ident, &t.vis, errors),
        Item::Trait(t) => ty(&t.ident, &t.vis, errors),
        Item::Impl(i) => tracked_impl(i, errors),
        other => {
            let what = match other {
                Item::Macro(m) if m.ident.is_some() => "a `macro_rules!` macro",
                Item::Macro(_) => "a macro call",
                Item::Use(_) => "a `use` declaration",
                Item::ForeignMod(_) => "an `extern` block",
                Item::ExternCrate(_) => "an `extern crate`",
                Item::Mod(_) => {
                    "a module (a `#[stage::pipeline]` module tracks the items its stages name)"
                }
                _ => "this item",
            };
            errors.push(
                other,
                format!("`#[stage::track]` cannot track {what}: {TRACKABLE}"),
            );
            None
        }
    }
}

fn tracked_impl(item: &syn::ItemImpl, errors: &mut Errors) -> Option<Tracked> {
    let Type::Path(syn::TypePath { qself: None, path }) = &*item.self_ty else {
        errors.push(&item.self_ty, "a tracked `impl` must be for a named type (`impl Grid`, `impl Display for Grid`): tracking that type brings its tracked impls");
        return None;
    };
    let mut of = path.clone();
    for segment in &mut of.segments {
        segment.arguments = PathArguments::None;
    }
    Some(Tracked::Impl {
        of: names::companion_path(&of),
        name: impl_name(item),
    })
}

/// `impl Display for Grid`, or `impl Grid { new, width }` for an inherent impl, so that
/// two impls of one type have different names.
pub fn impl_name(item: &syn::ItemImpl) -> String {
    let compact = |t: &dyn quote::ToTokens| t.to_token_stream().to_string().replace(' ', "");
    let ty = compact(&item.self_ty);
    if let Some((_, trait_path, _)) = &item.trait_ {
        return format!("impl {} for {ty}", compact(trait_path));
    }
    let items: Vec<String> = item
        .items
        .iter()
        .filter_map(|i| match i {
            syn::ImplItem::Fn(f) => Some(f.sig.ident.to_string()),
            syn::ImplItem::Const(c) => Some(c.ident.to_string()),
            syn::ImplItem::Type(t) => Some(t.ident.to_string()),
            _ => None,
        })
        .collect();
    format!("impl {ty} {{ {} }}", items.join(", "))
}

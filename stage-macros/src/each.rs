//! Per-item bindings: `param = each("folder")`, `param = each(stage(args))` and
//! `param = sweep(stage, a = [..], b = free_param)`, from the attribute to the code.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, ExprAssign, ExprPath, Ident, Lit, Path};

use crate::model::{Errors, Source};

/// Whether `path` is `each` or `sweep`: a binding of that form is read by this module.
pub fn is_keyword(path: &Path) -> bool {
    path.get_ident()
        .is_some_and(|i| i == "each" || i == "sweep")
}

/// The source of `key = each(..)` or `key = sweep(..)`.
pub fn source(
    key: &Ident,
    path: &Path,
    args: Vec<Expr>,
    by_ref: bool,
    errors: &mut Errors,
) -> Option<Source> {
    if path.is_ident("each") {
        each(key, path, args, by_ref, errors)
    } else {
        sweep(key, path, args, by_ref, errors)
    }
}

fn each(
    key: &Ident,
    path: &Path,
    mut args: Vec<Expr>,
    by_ref: bool,
    errors: &mut Errors,
) -> Option<Source> {
    let usage = format!(
        "expected one folder or one earlier stage: `{key} = each(\"data/folder\")` or `{key} = each(stage)`"
    );
    if args.len() != 1 {
        errors.push(path, usage);
        return None;
    }
    match args.remove(0) {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(folder),
            ..
        }) => Some(Source::EachFile(folder)),
        Expr::Path(ExprPath {
            path, qself: None, ..
        }) => Some(Source::Each {
            path,
            args: Vec::new(),
            by_ref,
        }),
        Expr::Call(call) => match *call.func {
            Expr::Path(ExprPath {
                path, qself: None, ..
            }) => Some(Source::Each {
                path,
                args: call.args.into_iter().collect(),
                by_ref,
            }),
            other => {
                errors.push(other, usage);
                None
            }
        },
        other => {
            errors.push(other, usage);
            None
        }
    }
}

fn sweep(
    key: &Ident,
    path: &Path,
    args: Vec<Expr>,
    by_ref: bool,
    errors: &mut Errors,
) -> Option<Source> {
    let usage = format!(
        "expected a stage and a list for each of its parameters: `{key} = sweep(stage, a = [1, 2], b = [10, 20])` (a list, or a free parameter holding a collection)"
    );
    let mut args = args.into_iter();
    let Some(Expr::Path(ExprPath {
        path: stage,
        qself: None,
        ..
    })) = args.next()
    else {
        errors.push(path, usage);
        return None;
    };
    let mut axes = Vec::new();
    for arg in args {
        match arg {
            Expr::Assign(ExprAssign { left, right, .. }) => match (*left, *right) {
                (
                    Expr::Path(ExprPath { path: name, .. }),
                    values @ (Expr::Array(_) | Expr::Path(_)),
                ) if name.get_ident().is_some() => {
                    let name = name.get_ident().cloned()?;
                    axes.push((name, values));
                }
                (left, _) => errors.push(left, usage.clone()),
            },
            other => errors.push(other, usage.clone()),
        }
    }
    if axes.is_empty() {
        errors.push(path, usage);
        return None;
    }
    Some(Source::Sweep {
        path: stage,
        axes,
        by_ref,
    })
}

/// The line of `Stage::inputs` that hands the binding `param` to the planner; `free` are
/// the stage's free parameters (references in `inputs`).
pub fn plan(param: &str, source: &Source, free: &[&Ident]) -> Option<TokenStream> {
    match source {
        Source::EachFile(folder) => Some(quote!(__stage_cx.each_file(#param, #folder)?;)),
        Source::Each { path, args, .. } => {
            let args = args.iter().map(|arg| free_arg(arg, free));
            Some(quote_spanned!(path.span()=>
                __stage_cx.each::<<#path as ::stage::__private::AsStage>::Stage>(#param, (#(#args,)*))?;
            ))
        }
        Source::Sweep { path, axes, .. } => Some(sweep_plan(param, path, axes, free)),
        _ => None,
    }
}

/// A free parameter used as an argument is a reference in `inputs`: clone it.
pub fn free_arg(arg: &Expr, free: &[&Ident]) -> TokenStream {
    match arg {
        Expr::Path(p) if p.path.get_ident().is_some_and(|i| free.contains(&i)) => {
            quote_spanned!(arg.span()=> ::core::clone::Clone::clone(#arg))
        }
        other => quote!(#other),
    }
}

/// The points of a sweep, the last axis varying fastest, checked against the swept
/// stage's parameters at compile time.
fn sweep_plan(param: &str, path: &Path, axes: &[(Ident, Expr)], free: &[&Ident]) -> TokenStream {
    let names: Vec<String> = axes.iter().map(|(name, _)| name.to_string()).collect();
    let vars: Vec<Ident> = (0..axes.len())
        .map(|i| Ident::new(&format!("__stage_axis{i}"), path.span()))
        .collect();
    let stage = quote_spanned!(path.span()=> <#path as ::stage::__private::AsStage>::Stage);
    let mut body = quote! {
        __stage_points.push((#(::core::clone::Clone::clone(&#vars),)*));
    };
    for ((_, values), var) in axes.iter().zip(&vars).rev() {
        let values = match values {
            Expr::Path(p) if p.path.get_ident().is_some_and(|i| free.contains(&i)) => {
                quote_spanned!(values.span()=> ::core::clone::Clone::clone(#values))
            }
            other => quote!(#other),
        };
        body = quote! {
            for #var in ::core::iter::IntoIterator::into_iter(#values) {
                #body
            }
        };
    }
    let message = format!(
        "`sweep` must give a list for every free parameter of the swept stage, in the order it takes them (here: {})",
        names.join(", ")
    );
    quote_spanned! {path.span()=>
        const {
            ::core::assert!(
                ::stage::__private::same_names(
                    <#stage as ::stage::__private::Stage>::INFO.params,
                    &[#(#names),*],
                ),
                #message
            );
        }
        let mut __stage_points: ::std::vec::Vec<<#stage as ::stage::__private::Stage>::Args> =
            ::std::vec::Vec::new();
        #body
        __stage_cx.sweep::<#stage>(#param, __stage_points)?;
    }
}

/// The `let` of `Stage::compute` that binds the parameter `ident: ty`, fed by `source`;
/// `binding` is the index of its value among the ancestor bindings.
pub fn bind(ident: &Ident, ty: &syn::Type, source: &Source, binding: usize) -> Option<TokenStream> {
    match source {
        Source::EachFile(_) => Some(quote_spanned!(ty.span()=>
            let #ident: #ty = __stage_inputs.element_path::<#ty>()?;
        )),
        Source::Each { path, by_ref, .. } => {
            let item = quote_spanned!(path.span()=>
                <<<#path as ::stage::__private::AsStage>::Stage as ::stage::__private::Stage>::Value
                    as ::stage::__private::Each>::Item
            );
            Some(if *by_ref {
                quote_spanned!(ty.span()=> let #ident: #ty = __stage_inputs.element::<#item>()?;)
            } else {
                quote_spanned!(ty.span()=>
                    ::stage::__private::output_is::<#ty, #item>();
                    let #ident: #ty = ::stage::__private::clone_element(__stage_inputs.element::<#ty>()?);
                )
            })
        }
        Source::Sweep { path, by_ref, .. } => {
            let stage = quote_spanned!(path.span()=> <#path as ::stage::__private::AsStage>::Stage);
            let all = quote_spanned!(path.span()=>
                ::std::vec::Vec<(
                    <#stage as ::stage::__private::Stage>::Args,
                    <#stage as ::stage::__private::Stage>::Value,
                )>
            );
            Some(if *by_ref {
                quote_spanned!(ty.span()=> let #ident: #ty = __stage_inputs.get::<#all>(#binding)?;)
            } else {
                quote_spanned!(ty.span()=>
                    ::stage::__private::output_is::<#ty, #all>();
                    let #ident: #ty = __stage_inputs.take::<#ty>(#binding)?;
                )
            })
        }
        _ => None,
    }
}

/// At most one `each` per stage.
pub fn check_one(params: &[crate::model::Param], errors: &mut Errors) {
    let mut seen = false;
    for p in params {
        if matches!(p.source, Source::EachFile(_) | Source::Each { .. }) {
            if seen {
                errors.push(
                    &p.ident,
                    "a stage takes one `each`: bind the other inputs whole (several `each` at once may come later)",
                );
            }
            seen = true;
        }
    }
}

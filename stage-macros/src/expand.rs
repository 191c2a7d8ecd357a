//! Code generation: a wrapper with the function's name, a type of the same name that
//! implements `Stage`, and the body, kept as written, inside it.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, ItemFn, Path};

use crate::model::{Cache, Model, Source, Track, Tracked};
use crate::names;

/// Expands a validated stage. `hash` is its code hash.
pub fn stage(model: &Model, hash: [u8; 32]) -> TokenStream {
    let Model { func, cache, .. } = model;
    let vis = &func.vis;
    let name = &func.sig.ident;
    let out = &model.output.ty;
    let free: Vec<_> = model
        .params
        .iter()
        .filter(|p| matches!(p.source, Source::Free))
        .collect();
    let free_idents: Vec<&Ident> = free.iter().map(|p| &p.ident).collect();
    let free_types: Vec<_> = free.iter().map(|p| &p.ty).collect();
    let wrapper_attrs = &func.attrs;
    let info = info(model, hash);
    let codec = codec(cache, out);
    let inputs = inputs(model);
    let compute = compute(model);
    let value = if model.mapped {
        quote!(::stage::Items<#out>)
    } else {
        quote!(#out)
    };
    let clone_args = model.mapped.then(|| {
        quote! {
            fn clone_args(__stage_args: &Self::Args) -> ::core::option::Option<Self::Args> {
                ::core::option::Option::Some(::stage::__private::clone_args(__stage_args))
            }
        }
    });
    quote! {
        #(#wrapper_attrs)*
        #vis fn #name(#(#free_idents: #free_types),*) -> ::core::result::Result<#value, ::stage::Error> {
            ::stage::__private::call::<#name>((#(#free_idents,)*))
        }

        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #name {}

        ::stage::__private::inventory::submit! {
            ::stage::__private::Registered(::stage::__private::info_of::<#name>)
        }

        #[allow(unused_variables, clippy::all, clippy::pedantic)]
        impl ::stage::__private::Stage for #name {
            type Output = #out;
            type Value = #value;
            type Args = (#(#free_types,)*);
            #codec
            const INFO: &'static ::stage::__private::StageInfo = &#info;

            fn params(
                __stage_args: &Self::Args,
                __stage_cx: &mut ::stage::__private::Params<'_>,
            ) -> ::core::result::Result<(), ::stage::Error> {
                let (#(#free_idents,)*) = __stage_args;
                #(__stage_cx.param(::core::stringify!(#free_idents), #free_idents)?;)*
                ::core::result::Result::Ok(())
            }

            #inputs
            #compute
            #clone_args
        }
    }
}

fn codec(cache: &Cache, out: &syn::Type) -> TokenStream {
    let span = out.span();
    match cache {
        Cache::Parquet => quote_spanned!(span=> type Codec = ::stage::__private::Parquet;),
        Cache::Arrow => quote_spanned!(span=> type Codec = ::stage::__private::Arrow;),
        Cache::Bincode => quote_spanned!(span=> type Codec = ::stage::__private::Bincode;),
        Cache::Memory => quote_spanned!(span=> type Codec = ::stage::__private::Memory;),
        Cache::Custom(path) => quote_spanned!(path.span()=> type Codec = #path;),
    }
}

fn inputs(model: &Model) -> TokenStream {
    let free_idents = free_idents(model);
    let calls = model.params.iter().filter_map(|p| {
        let param = p.ident.to_string();
        match &p.source {
            Source::Free => None,
            Source::Raw(lit) => Some(quote!(__stage_cx.raw(#param, #lit)?;)),
            Source::Ancestor { path, args, .. } => {
                let args = args.iter().map(|arg| crate::each::free_arg(arg, &free_idents));
                Some(quote_spanned!(path.span()=>
                    __stage_cx.ancestor::<<#path as ::stage::__private::AsStage>::Stage>(#param, (#(#args,)*))?;
                ))
            }
            other => crate::each::plan(&param, other, &free_idents),
        }
    });
    quote! {
        fn inputs(
            __stage_args: &Self::Args,
            __stage_cx: &mut ::stage::__private::Plan<'_>,
        ) -> ::core::result::Result<(), ::stage::Error> {
            let (#(#free_idents,)*) = __stage_args;
            #(#calls)*
            ::core::result::Result::Ok(())
        }
    }
}

fn compute(model: &Model) -> TokenStream {
    let free_idents = free_idents(model);
    let mut body_fn: ItemFn = model.func.clone();
    body_fn.attrs.retain(|a| !a.path().is_ident("doc"));
    body_fn.sig.ident = Ident::new("__stage_body", Span::call_site());
    body_fn.vis = syn::Visibility::Inherited;
    let mut ancestor = 0usize;
    let mut raw = 0usize;
    let bindings = model.params.iter().filter_map(|p| {
        let (ident, ty) = (&p.ident, &p.ty);
        match &p.source {
            Source::Free => None,
            Source::Raw(_) => {
                let i = raw;
                raw += 1;
                Some(quote_spanned!(ty.span()=>
                    let #ident: #ty = __stage_inputs.raw::<#ty>(#i)?;
                ))
            }
            Source::Sweep { .. } => {
                let i = ancestor;
                ancestor += 1;
                crate::each::bind(ident, ty, &p.source, i)
            }
            Source::EachFile(_) | Source::Each { .. } => crate::each::bind(ident, ty, &p.source, 0),
            Source::Ancestor { path, by_ref, .. } => {
                let i = ancestor;
                ancestor += 1;
                let output = quote_spanned!(path.span()=> <#path as ::stage::__private::Stage>::Value);
                Some(if *by_ref {
                    quote_spanned!(ty.span()=> let #ident: #ty = __stage_inputs.get::<#output>(#i)?;)
                } else {
                    quote_spanned!(ty.span()=>
                        ::stage::__private::output_is::<#ty, #output>();
                        let #ident: #ty = __stage_inputs.take::<#ty>(#i)?;
                    )
                })
            }
        }
    });
    let all: Vec<&Ident> = model.params.iter().map(|p| &p.ident).collect();
    let call = if model.output.is_result {
        quote!(::stage::__private::body_result(__stage_body(#(#all),*)))
    } else {
        quote!(::core::result::Result::Ok(__stage_body(#(#all),*)))
    };
    quote! {
        fn compute(
            __stage_args: Self::Args,
            __stage_inputs: &::stage::__private::Inputs<'_>,
        ) -> ::core::result::Result<Self::Output, ::stage::__private::BoxError> {
            #body_fn
            let (#(#free_idents,)*) = __stage_args;
            #(#bindings)*
            #call
        }
    }
}

fn free_idents(model: &Model) -> Vec<&Ident> {
    model
        .params
        .iter()
        .filter(|p| matches!(p.source, Source::Free))
        .map(|p| &p.ident)
        .collect()
}

fn info(model: &Model, hash: [u8; 32]) -> TokenStream {
    let name = model.func.sig.ident.to_string();
    let display = model
        .name
        .as_ref()
        .map_or_else(|| name.clone(), syn::LitStr::value);
    let version = model.version.as_ref().map_or_else(
        || quote!(::core::option::Option::None),
        |v| quote!(::core::option::Option::Some(#v)),
    );
    let uses = uses(&model.uses, &model.module_items);
    let ancestors = model.params.iter().filter_map(|p| match &p.source {
        Source::Sweep { path, axes, .. } => {
            let param = p.ident.to_string();
            let args = axes
                .iter()
                .map(|(name, values)| format!("{name} = {}", quote!(#values)))
                .collect::<Vec<_>>()
                .join(", ");
            Some(quote!(::stage::__private::AncestorInfo {
                param: #param,
                stage: ::stage::__private::info_of::<<#path as ::stage::__private::AsStage>::Stage>,
                args: #args,
            }))
        }
        Source::Ancestor { path, args, .. } | Source::Each { path, args, .. } => {
            let param = p.ident.to_string();
            let args = quote!(#(#args),*).to_string();
            Some(quote!(::stage::__private::AncestorInfo {
                param: #param,
                stage: ::stage::__private::info_of::<<#path as ::stage::__private::AsStage>::Stage>,
                args: #args,
            }))
        }
        _ => None,
    });
    let raw = model.params.iter().filter_map(|p| match &p.source {
        Source::Raw(lit) | Source::EachFile(lit) => {
            let param = p.ident.to_string();
            Some(quote!(::stage::__private::RawInfo { param: #param, path: #lit }))
        }
        _ => None,
    });
    let params = free_idents(model).into_iter().map(ToString::to_string);
    let out = &model.output.ty;
    let output = quote!(#out).to_string();
    let cache = model.cache.name();
    quote! {
        ::stage::__private::StageInfo {
            name: #name,
            module_path: ::core::module_path!(),
            display: #display,
            code_hash: ::stage::__private::Digest([#(#hash),*]),
            version: #version,
            uses: #uses,
            ancestors: &[#(#ancestors),*],
            raw: &[#(#raw),*],
            params: &[#(#params),*],
            output: #output,
            cache: #cache,
            file: ::core::file!(),
            line: ::core::line!(),
        }
    }
}

/// `&[track_info_of::<companion>, ...]` for `uses = [...]` (each spanned at its path, so
/// that an untracked item is an error there), then for companions named by a pipeline.
pub fn uses(paths: &[Path], module_items: &[Ident]) -> TokenStream {
    let listed = paths.iter().map(|p| {
        let companion = names::companion_path(p);
        quote_spanned!(p.span()=> ::stage::__private::track_info_of::<#companion>)
    });
    let module = module_items
        .iter()
        .map(|p| quote!(::stage::__private::track_info_of::<#p>));
    let items = listed.chain(module);
    quote!(&[#(#items),*])
}

/// Expands `#[stage::track]`: the item unchanged, plus its companion. `module_items` are
/// the companions of the pipeline-module items it names; `impl_companion` names an impl's
/// companion (inside a pipeline module, where its stages refer to it).
pub fn track(
    track: &Track,
    hash: [u8; 32],
    module_items: &[Ident],
    impl_companion: Option<&Ident>,
) -> TokenStream {
    let item = &track.item;
    let uses = uses(&track.uses, module_items);
    match &track.tracked {
        Tracked::Named { ident, vis, .. } => {
            let companion = companion(
                vis,
                &names::companion(ident),
                &ident.to_string(),
                hash,
                &uses,
            );
            quote!(#item #companion)
        }
        Tracked::Impl { of, name } => {
            let inherited = syn::Visibility::Inherited;
            let ident = impl_companion
                .cloned()
                .unwrap_or_else(|| Ident::new("__stage_impl", Span::call_site()));
            let companion = companion(&inherited, &ident, name, hash, &uses);
            let registered = quote_spanned! {of.span()=>
                ::stage::__private::inventory::submit! {
                    ::stage::__private::TrackedImpl {
                        of: ::stage::__private::track_info_of::<#of>,
                        info: ::stage::__private::track_info_of::<#ident>,
                    }
                }
            };
            if impl_companion.is_some() {
                quote!(#item #companion #registered)
            } else {
                quote!(#item const _: () = { #companion #registered };)
            }
        }
    }
}

/// A hidden type named `ident` whose `Tracked` impl describes the item `name`.
pub fn companion(
    vis: &syn::Visibility,
    ident: &Ident,
    name: &str,
    hash: [u8; 32],
    uses: &TokenStream,
) -> TokenStream {
    quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #ident {}

        impl ::stage::__private::Tracked for #ident {
            const INFO: &'static ::stage::__private::TrackInfo = &::stage::__private::TrackInfo {
                name: #name,
                module_path: ::core::module_path!(),
                code_hash: ::stage::__private::Digest([#(#hash),*]),
                uses: #uses,
            };
        }
    }
}

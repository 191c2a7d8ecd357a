//! The `#[stage]` and `#[track]` attributes of the `stage` crate.
//!
//! Use them through the facade: `use stage::stage;` and `#[stage::track]`. Their
//! documentation, with examples, is on the re-exports in `stage`.

mod args;
mod each;
mod expand;
mod hash;
mod model;
mod names;
mod pipeline;
#[cfg(test)]
mod snapshots;
mod untracked;

use proc_macro::TokenStream;

/// Turns a function into a cached pipeline stage. See the `stage` crate for the guide.
#[proc_macro_attribute]
#[allow(
    clippy::needless_pass_by_value,
    reason = "mirrors the proc-macro entry point"
)]
pub fn stage(attr: TokenStream, item: TokenStream) -> TokenStream {
    entry::stage(attr.into(), item.into()).into()
}

/// Marks an item whose code is part of the key of the stages that list it in `uses`.
#[proc_macro_attribute]
#[allow(
    clippy::needless_pass_by_value,
    reason = "mirrors the proc-macro entry point"
)]
pub fn track(attr: TokenStream, item: TokenStream) -> TokenStream {
    entry::track(attr.into(), item.into()).into()
}

/// Keys every stage of an inline module by the module's items it names.
#[proc_macro_attribute]
#[allow(
    clippy::needless_pass_by_value,
    reason = "mirrors the proc-macro entry point"
)]
pub fn pipeline(attr: TokenStream, item: TokenStream) -> TokenStream {
    pipeline::pipeline(&attr.into(), &item.into()).into()
}

mod entry {
    use std::collections::BTreeSet;

    use proc_macro2::TokenStream;
    use quote::quote;
    use syn::{Item, ItemFn, Path};

    use crate::args::Args;
    use crate::model::{self, Tracked};
    use crate::pipeline::Pipeline;
    use crate::{expand, hash, untracked};

    /// `#[stage]`, inside a `#[stage::pipeline]` module when the item carries its hidden
    /// attribute.
    pub fn stage(attr: TokenStream, item: TokenStream) -> TokenStream {
        let (item, pipeline) = Pipeline::take(item);
        let pipeline = match pipeline {
            Ok(pipeline) => pipeline,
            Err(error) => return with_error(&item, &error),
        };
        let pipeline = pipeline.as_ref();
        let hash = hash::code_hash(&attr, &item);
        let parsed = syn::parse2::<Args>(attr)
            .and_then(|args| Ok((args, syn::parse2::<ItemFn>(item.clone())?)));
        match parsed.and_then(|(args, func)| model::stage(args, func)) {
            Ok(mut model) => {
                let covered = covered(&model.uses, &model.untracked, pipeline.map(|p| &p.known));
                let found = untracked::find(|v| v.visit_item_fn(&model.func), &covered);
                let who = format!("`{}`", model.func.sig.ident);
                let warnings = untracked::warnings(&found, &who, pipeline.is_some());
                if let Some(pipeline) = pipeline {
                    model.module_items.clone_from(&pipeline.items);
                }
                let expanded = expand::stage(&model, hash);
                quote!(#expanded #warnings)
            }
            Err(error) => with_error(&item, &error),
        }
    }

    /// `#[stage::track]`, inside a `#[stage::pipeline]` module when the item carries its
    /// hidden attribute.
    pub fn track(attr: TokenStream, item: TokenStream) -> TokenStream {
        let (item, pipeline) = Pipeline::take(item);
        let pipeline = match pipeline {
            Ok(pipeline) => pipeline,
            Err(error) => return with_error(&item, &error),
        };
        let pipeline = pipeline.as_ref();
        let hash = hash::code_hash(&attr, &item);
        let parsed = syn::parse2::<Args>(attr)
            .and_then(|args| Ok((args, syn::parse2::<Item>(item.clone())?)));
        match parsed.and_then(|(args, item)| model::track(args, item)) {
            Ok(track) => {
                let name = match &track.tracked {
                    Tracked::Named { ident, .. } => ident.to_string(),
                    Tracked::Impl { name, .. } => name.clone(),
                };
                let mut silenced = track.uses.clone();
                silenced.extend(track.untracked.iter().cloned());
                let warnings =
                    helper_warnings(&track.item, &name, &silenced, pipeline.map(|p| &p.known));
                let items = pipeline.map_or(&[][..], |p| &p.items[..]);
                let impl_companion = pipeline.and_then(|p| p.impl_companion.as_ref());
                let expanded = expand::track(&track, hash, items, impl_companion);
                quote!(#expanded #warnings)
            }
            Err(error) => with_error(&item, &error),
        }
    }

    /// The untracked-name warnings of a tracked item `name`.
    pub fn helper_warnings(
        item: &Item,
        name: &str,
        covered_paths: &[Path],
        known: Option<&BTreeSet<String>>,
    ) -> TokenStream {
        let covered = covered(covered_paths, &[], known);
        let found = untracked::find(|v| v.visit_item(item), &covered);
        let who = format!("the stages that use `{name}`");
        untracked::warnings(&found, &who, known.is_some())
    }

    fn covered(
        uses: &[Path],
        untracked: &[Path],
        known: Option<&BTreeSet<String>>,
    ) -> BTreeSet<String> {
        let mut covered: BTreeSet<String> = uses
            .iter()
            .chain(untracked)
            .filter_map(|p| p.segments.last())
            .map(|s| s.ident.to_string())
            .collect();
        covered.extend(known.into_iter().flatten().cloned());
        covered
    }

    /// The item as written plus the errors, so that the rest of the crate still
    /// type-checks and IDEs keep working.
    pub fn with_error(item: &TokenStream, error: &syn::Error) -> TokenStream {
        let error = error.to_compile_error();
        quote!(#item #error)
    }
}

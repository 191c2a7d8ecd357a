//! The `#[stage]` and `#[track]` attributes of the `stage` crate.
//!
//! Use them through the facade: `use stage::stage;` and `#[stage::track]`. Their
//! documentation, with examples, is on the re-exports in `stage`.

mod args;
mod each;
mod expand;
mod hash;
mod model;

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

/// Marks a helper whose code is part of the key of the stages that list it in `uses`.
#[proc_macro_attribute]
#[allow(
    clippy::needless_pass_by_value,
    reason = "mirrors the proc-macro entry point"
)]
pub fn track(attr: TokenStream, item: TokenStream) -> TokenStream {
    entry::track(attr.into(), item.into()).into()
}

mod entry {
    use proc_macro2::TokenStream;
    use quote::quote;
    use syn::ItemFn;

    use crate::args::{Arg, Args, Value};
    use crate::model::Errors;
    use crate::{expand, hash, model};

    #[allow(
        clippy::needless_pass_by_value,
        reason = "mirrors the proc-macro entry point"
    )]
    pub fn stage(attr: TokenStream, item: TokenStream) -> TokenStream {
        let hash = hash::code_hash(&attr, &item);
        let parsed = syn::parse2::<Args>(attr)
            .and_then(|args| Ok((args, syn::parse2::<ItemFn>(item.clone())?)));
        match parsed.and_then(|(args, func)| model::stage(args, func)) {
            Ok(model) => expand::stage(&model, hash),
            Err(error) => with_error(&item, &error),
        }
    }

    #[allow(
        clippy::needless_pass_by_value,
        reason = "mirrors the proc-macro entry point"
    )]
    pub fn track(attr: TokenStream, item: TokenStream) -> TokenStream {
        let hash = hash::code_hash(&attr, &item);
        let parsed = syn::parse2::<Args>(attr)
            .and_then(|args| Ok((args, syn::parse2::<ItemFn>(item.clone())?)));
        let checked = parsed.and_then(|(args, func)| {
            let mut errors = Errors::default();
            let mut uses = Vec::new();
            for Arg { key, value } in args.0 {
                match (key.to_string().as_str(), value) {
                    ("uses", Value::List(paths)) => uses = paths,
                    ("uses", Value::Path(path)) => uses = vec![path],
                    _ => errors.push(&key, "expected only `uses = [helper, ...]` here"),
                }
            }
            errors.finish((func, uses))
        });
        match checked {
            Ok((func, uses)) => expand::track(&func, &uses, hash),
            Err(error) => with_error(&item, &error),
        }
    }

    /// The item as written plus the errors, so that the rest of the crate still
    /// type-checks and IDEs keep working.
    fn with_error(item: &TokenStream, error: &syn::Error) -> TokenStream {
        let error = error.to_compile_error();
        quote!(#item #error)
    }
}

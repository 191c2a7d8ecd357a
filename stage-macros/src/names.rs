//! How generated code names tracked items, and which names look like what.
//!
//! A tracked item gets a hidden companion type that carries its code hash. An item in the
//! value namespace (`fn`, `const`, `static`) leaves the type namespace free, so its
//! companion takes the item's own name: `use config::BUCKETS` brings both. A type already
//! owns its name there, so its companion is `__stage_tracked_<Name>` beside it. The choice
//! is made from the name alone, the same way by `#[stage::track]` and by `uses`, which
//! cannot see the item: an `UpperCamelCase` name is a type's.

use proc_macro2::Span;
use quote::format_ident;
use syn::{Ident, Path};

/// `UpperCamelCase`: starts with a capital and has a lowercase letter (`Grid`, not `GRID`).
pub fn is_camel(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.contains(|c: char| c.is_ascii_lowercase())
}

/// `SCREAMING_CASE`: a capital letter and no lowercase one (`BUCKETS`, `MAX_2`, `N`).
pub fn is_screaming(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
        && !name.contains(|c: char| c.is_ascii_lowercase())
}

/// The companion type of the tracked item named `ident`.
pub fn companion(ident: &Ident) -> Ident {
    let name = ident.to_string();
    if is_camel(&name) {
        format_ident!("__stage_tracked_{}", name, span = ident.span())
    } else {
        ident.clone()
    }
}

/// `uses = [a::b::X]` as the path of X's companion: the last segment renamed.
pub fn companion_path(path: &Path) -> Path {
    let mut path = path.clone();
    if let Some(last) = path.segments.last_mut() {
        last.ident = companion(&last.ident);
    }
    path
}

/// The companion a `#[stage::pipeline]` module gives its item `name` (for its stages only).
pub fn module_item(name: &str) -> Ident {
    format_ident!(
        "__stage_item_{}",
        name.trim_start_matches("r#"),
        span = Span::call_site()
    )
}

/// The companion a `#[stage::pipeline]` module gives its `index`-th `impl` block.
pub fn module_impl(index: usize) -> Ident {
    format_ident!("__stage_impl_{}", index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        assert!(is_camel("Grid") && is_camel("GridCell") && is_camel("Id"));
        assert!(!is_camel("GRID") && !is_camel("grid") && !is_camel("ID"));
        assert!(is_screaming("BUCKETS") && is_screaming("MAX_2") && is_screaming("N"));
        assert!(!is_screaming("Buckets") && !is_screaming("buckets") && !is_screaming("_X"));
    }

    #[test]
    fn companions_of_types_are_renamed_and_of_values_kept() {
        let text = |p: &str| {
            let path: Path = syn::parse_str(p).unwrap();
            let companion = companion_path(&path);
            quote::quote!(#companion).to_string().replace(' ', "")
        };
        assert_eq!(text("crate::config::BUCKETS"), "crate::config::BUCKETS");
        assert_eq!(
            text("crate::model::Grid"),
            "crate::model::__stage_tracked_Grid"
        );
    }
}

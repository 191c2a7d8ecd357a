//! The untracked-name warning: names in a stage's body (or a tracked item's) that look
//! like crate code whose change the key would not see.
//!
//! What is reported: a `SCREAMING_CASE` name (a constant or static), a path that starts
//! with `crate::`, `self::` or `super::`, and a call `f(..)` of a single-segment name that
//! is not bound in the item (a parameter, a `let`, a closure argument, a local item).
//! What is not: library paths (`std::`, `u32::MAX`, other crates), methods, macros, and
//! any name one of whose segments is covered (listed in `uses` or `untracked`, or an item
//! or a library import of the enclosing `#[stage::pipeline]` module).
//!
//! Stable Rust has no warning API for procedural macros: the warning is a use, at the
//! name's span, of a `#[deprecated]` constant whose note is the message (what the
//! `proc-macro-warning` crate generates too; a dozen lines do not need a dependency). The
//! detection works on names, without name resolution, so it can be wrong: the generated
//! item carries `#[warn(warnings)]`, which keeps `-D warnings` from turning it into an
//! error, while `#![deny(deprecated)]` or `-D deprecated` still does, for those who want it.

use std::collections::BTreeSet;

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::punctuated::Punctuated;
use syn::visit::{self, Visit};
use syn::{Expr, Ident, Path, Token};

use crate::names::is_screaming;

/// Functions of the standard prelude, called without a path.
const PRELUDE: [&str; 5] = ["drop", "size_of", "size_of_val", "align_of", "align_of_val"];

/// A name that looks like crate code and is not tracked.
#[derive(Debug)]
pub struct Untracked {
    /// The name as written: `BUCKETS`, `crate::config::BUCKETS`, `helper`.
    pub name: String,
    pub span: Span,
}

/// The untracked names `node` uses, each once, in order of appearance. `covered` are the
/// names (single identifiers) that are tracked or silenced.
pub fn find<'a>(
    node: impl FnOnce(&mut dyn Visit<'a>) + Copy,
    covered: &BTreeSet<String>,
) -> Vec<Untracked> {
    let mut bound = Bindings::default();
    node(&mut bound);
    let mut finder = Finder {
        bound: bound.0,
        covered,
        found: Vec::new(),
    };
    node(&mut finder);
    finder.found
}

/// Every name an item binds: parameters, `let` and closure patterns, local items.
#[derive(Default)]
struct Bindings(BTreeSet<String>);

impl<'a> Visit<'a> for Bindings {
    fn visit_pat_ident(&mut self, p: &'a syn::PatIdent) {
        self.0.insert(p.ident.to_string());
        visit::visit_pat_ident(self, p);
    }
    fn visit_item_fn(&mut self, f: &'a syn::ItemFn) {
        self.0.insert(f.sig.ident.to_string());
        visit::visit_item_fn(self, f);
    }
    fn visit_item_const(&mut self, c: &'a syn::ItemConst) {
        self.0.insert(c.ident.to_string());
        visit::visit_item_const(self, c);
    }
    fn visit_item_static(&mut self, s: &'a syn::ItemStatic) {
        self.0.insert(s.ident.to_string());
        visit::visit_item_static(self, s);
    }
    fn visit_impl_item_fn(&mut self, f: &'a syn::ImplItemFn) {
        self.0.insert(f.sig.ident.to_string());
        visit::visit_impl_item_fn(self, f);
    }
    fn visit_const_param(&mut self, c: &'a syn::ConstParam) {
        self.0.insert(c.ident.to_string());
        visit::visit_const_param(self, c);
    }
}

struct Finder<'c> {
    bound: BTreeSet<String>,
    covered: &'c BTreeSet<String>,
    found: Vec<Untracked>,
}

impl Finder<'_> {
    fn report(&mut self, path: &Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if segments
            .iter()
            .any(|s| self.covered.contains(s) || s.starts_with("__stage_"))
        {
            return;
        }
        let name = segments.join("::");
        let name = if path.leading_colon.is_some() {
            format!("::{name}")
        } else {
            name
        };
        if !self.found.iter().any(|f| f.name == name) {
            let span = path
                .segments
                .first()
                .map_or_else(Span::call_site, |s| s.ident.span());
            self.found.push(Untracked { name, span });
        }
    }

    fn single_unbound<'p>(&self, path: &'p Path) -> Option<&'p Ident> {
        let ident = path.get_ident()?;
        (!self.bound.contains(&ident.to_string())).then_some(ident)
    }

    /// Macro arguments that parse as expressions (`println!`, `vec!`, `assert_eq!`...),
    /// and names captured in a format string (`"{BUCKETS:?}"`).
    fn visit_macro_tokens(&mut self, tokens: TokenStream) {
        let parser = Punctuated::<Expr, Token![,]>::parse_terminated;
        let Ok(args) = syn::parse::Parser::parse2(parser, tokens) else {
            return;
        };
        for arg in &args {
            if let Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) = arg
            {
                for name in captured(&s.value()) {
                    let ident = Ident::new(&name, s.span());
                    self.visit_expr_path(&syn::parse_quote!(#ident));
                }
            }
            self.visit_expr(arg);
        }
    }
}

/// Names captured by a format string: `{name}`, `{name:?}`, not `{{`, `{0}` or `{}`.
fn captured(format: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = format;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        if let Some(after) = rest.strip_prefix('{') {
            rest = after;
            continue;
        }
        let end = rest.find(['}', ':']).unwrap_or(rest.len());
        let name = &rest[..end];
        if name.starts_with(|c: char| c.is_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_alphanumeric() || c == '_')
        {
            names.push(name.to_owned());
        }
    }
    names
}

impl<'a> Visit<'a> for Finder<'_> {
    fn visit_expr_path(&mut self, e: &'a syn::ExprPath) {
        let path = &e.path;
        let first = path.segments.first().map(|s| s.ident.to_string());
        let local_root =
            path.segments.len() > 1 && matches!(first.as_deref(), Some("crate" | "self" | "super"));
        let screaming = self
            .single_unbound(path)
            .is_some_and(|i| is_screaming(&i.to_string()));
        if e.qself.is_none() && ((path.leading_colon.is_none() && local_root) || screaming) {
            self.report(path);
        }
        visit::visit_expr_path(self, e);
    }

    fn visit_expr_call(&mut self, e: &'a syn::ExprCall) {
        if let Expr::Path(syn::ExprPath {
            qself: None, path, ..
        }) = &*e.func
            && let Some(ident) = self.single_unbound(path)
        {
            let name = ident.to_string();
            if name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && !PRELUDE.contains(&name.as_str())
            {
                self.report(path);
            }
        }
        visit::visit_expr_call(self, e);
    }

    fn visit_macro(&mut self, m: &'a syn::Macro) {
        self.visit_macro_tokens(m.tokens.clone());
    }
}

/// The warning for each name: `who` says what will not be recomputed (`` `summary` ``,
/// "the stages that use `scale`").
pub fn warnings(found: &[Untracked], who: &str, in_pipeline: bool) -> TokenStream {
    let how = if in_pipeline {
        "mark it `#[stage::track]` and add it to `uses`"
    } else {
        "mark it `#[stage::track]` and add it to `uses`, or define the stage in a `#[stage::pipeline]` module"
    };
    let each = found.iter().map(|Untracked { name, span }| {
        let note = format!(
            "`{name}` is not tracked: a change to it will not recompute {who}; {how} (or list it in `untracked = [...]` if no change to it can change a result)"
        );
        let used = quote_spanned!(*span=> untracked);
        quote! {
            #[warn(warnings)]
            const _: () = {
                #[deprecated(note = #note)]
                #[allow(non_upper_case_globals)]
                const untracked: () = ();
                let () = #used;
            };
        }
    });
    quote!(#(#each)*)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(item: &str, covered: &[&str]) -> Vec<String> {
        let item: syn::Item = syn::parse_str(item).unwrap();
        let covered = covered.iter().map(|s| (*s).to_owned()).collect();
        find(|v| v.visit_item(&item), &covered)
            .into_iter()
            .map(|u| u.name)
            .collect()
    }

    #[test]
    fn screaming_constants_and_crate_paths_are_reported() {
        let item = "fn summary(xs: &[f64]) -> usize {
            let n = crate::config::LIMIT + self::OFFSET;
            xs.iter().filter(|x| **x > BUCKETS[0]).count() + n + super::extra()
        }";
        assert_eq!(
            found(item, &[]),
            [
                "crate::config::LIMIT",
                "self::OFFSET",
                "BUCKETS",
                "super::extra"
            ]
        );
    }

    #[test]
    fn calls_of_unbound_functions_are_reported_once() {
        let item = "fn f(g: fn() -> u8, xs: Vec<u8>) -> u8 {
            let h = |y: u8| y + 1;
            fn local() -> u8 { 0 }
            helper(1) + helper(2) + g() + h(2) + local() + drop(xs)
        }";
        assert_eq!(found(item, &[]), ["helper"]);
    }

    #[test]
    fn library_code_methods_and_constructors_are_not_reported() {
        let item = "fn f(x: f64) -> Option<f64> {
            let _ = self;
            let y = std::f64::consts::PI * f64::EPSILON + u32::MAX as f64;
            let v = Vec::<f64>::new();
            let s = ::std::string::String::new();
            assert!(x.is_finite());
            Some(x.max(y) + v.len() as f64 + s.len() as f64).map(f64::sqrt)
        }";
        assert!(found(item, &[]).is_empty(), "{:?}", found(item, &[]));
    }

    #[test]
    fn covered_names_are_not_reported() {
        let item = "fn f() -> f64 { helper(BUCKETS[0]) + crate::config::LIMIT + crate::model::Grid::new().w }";
        assert_eq!(found(item, &["BUCKETS", "LIMIT", "Grid"]), ["helper"]);
        assert!(found(item, &["BUCKETS", "LIMIT", "Grid", "helper"]).is_empty());
    }

    #[test]
    fn macro_arguments_and_captured_format_names_are_seen() {
        let item = r#"fn f(x: u8) -> String {
            assert_eq!(x, LIMIT);
            let v = vec![scale(x), OFFSET];
            format!("{x} {BUCKETS:?} {{NOT}} {0}", v.len())
        }"#;
        assert_eq!(found(item, &[]), ["LIMIT", "scale", "OFFSET", "BUCKETS"]);
    }

    #[test]
    fn bound_screaming_names_are_local() {
        let item = "fn f() -> u8 { const N: u8 = 3; let X = 2; N + X }";
        assert!(found(item, &[]).is_empty());
    }

    #[test]
    fn format_captures() {
        assert_eq!(captured("{a} {{b}} {c:>4} {} {0} {d.e}"), ["a", "c"]);
    }
}

//! `#[stage::pipeline] mod steps { ... }`: every stage of the module is keyed, in addition,
//! by the code of the module's items that it names, directly or through other items.
//!
//! The attribute sees the whole module before the attributes inside it expand. It hashes
//! each item, builds the graph of which item names which (by identifier, over every token:
//! a name shadowed by a local binding still counts, so the graph errs on the side of
//! tracking too much) and gives each item a companion whose `uses` are the items it names.
//! Each `#[stage]` and `#[stage::track]` inside gets, right below it, a hidden attribute
//! `#[__stage_pipeline(...)]` with the companions it names; the attribute macro takes it
//! off before hashing, so a stage's code hash is the same inside a pipeline and outside.
//! An `impl` block is named by its type, its trait and its items' names: a stage that
//! names a type brings the type's impls.

use std::collections::BTreeSet;

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::{Attribute, Ident, Item, ItemMod, Meta, Visibility};

use crate::args::{Args, Value};
use crate::model::impl_name;
use crate::{entry, expand, hash, names};

/// What a stage or tracked item inside a pipeline module gets from it.
#[derive(Default)]
pub struct Pipeline {
    /// Companions of the module items it names directly.
    pub items: Vec<Ident>,
    /// Names the untracked-name warning leaves alone: the module's items and the names
    /// it imports from other crates.
    pub known: BTreeSet<String>,
    /// The companion of a tracked `impl` block, named so that the module's stages can
    /// refer to it.
    pub impl_companion: Option<Ident>,
}

const HIDDEN: &str = "__stage_pipeline";

impl Pipeline {
    /// The hidden attribute that carries `self` to the attribute macro below it.
    fn attr(&self) -> Attribute {
        let items = &self.items;
        let known = self.known.iter().map(|k| Ident::new(k, Span::call_site()));
        let companion = self.impl_companion.iter();
        syn::parse_quote!(#[__stage_pipeline(items = [#(#items),*], known = [#(#known),*] #(, impl_companion = #companion)*)])
    }

    /// `item` without its hidden attribute, and what the attribute carried.
    pub fn take(item: TokenStream) -> (TokenStream, syn::Result<Option<Pipeline>>) {
        let mut kept = Vec::new();
        let mut found = Ok(None);
        let mut tokens = item.into_iter().peekable();
        while let Some(token) = tokens.next() {
            if let TokenTree::Punct(p) = &token
                && p.as_char() == '#'
                && let Some(TokenTree::Group(g)) = tokens.peek()
                && g.delimiter() == Delimiter::Bracket
                && matches!(g.stream().into_iter().next(), Some(TokenTree::Ident(i)) if i == HIDDEN)
            {
                found = syn::parse2::<Meta>(g.stream())
                    .and_then(|attr| Pipeline::parse(&attr.require_list()?.tokens))
                    .map(Some);
                tokens.next();
                continue;
            }
            kept.push(token);
        }
        (kept.into_iter().collect(), found)
    }

    fn parse(tokens: &TokenStream) -> syn::Result<Pipeline> {
        let mut pipeline = Pipeline::default();
        for arg in syn::parse2::<Args>(tokens.clone())?.0 {
            let idents = || match &arg.value {
                Value::List(paths) => paths
                    .iter()
                    .filter_map(|p| p.get_ident().cloned())
                    .collect(),
                _ => Vec::new(),
            };
            match (arg.key.to_string().as_str(), &arg.value) {
                ("items", _) => pipeline.items = idents(),
                ("known", _) => pipeline.known = idents().iter().map(ToString::to_string).collect(),
                ("impl_companion", Value::Path(p)) => {
                    pipeline.impl_companion = p.get_ident().cloned();
                }
                _ => {
                    return Err(syn::Error::new_spanned(
                        &arg.key,
                        "unexpected in a hidden pipeline attribute",
                    ));
                }
            }
        }
        Ok(pipeline)
    }
}

enum Role {
    /// `#[stage(...)]`, at attribute `index`.
    Stage { index: usize },
    /// `#[stage::track(...)]`, at attribute `index`.
    Track { index: usize },
    /// Any other item the module tracks.
    Plain,
    /// `use`, `mod`, `extern`...: passed through.
    Other,
}

/// One trackable item of the module.
struct Node {
    /// Position in the module.
    at: usize,
    /// Names by which other items reach it.
    keys: Vec<String>,
    /// Every identifier in its tokens.
    idents: BTreeSet<String>,
    companion: Ident,
}

/// Expands `#[stage::pipeline]` on `item`.
pub fn pipeline(attr: &TokenStream, item: &TokenStream) -> TokenStream {
    if let Some(first) = attr.clone().into_iter().next() {
        let error = syn::Error::new_spanned(first, "`#[stage::pipeline]` takes no arguments");
        return entry::with_error(item, &error);
    }
    let Ok(mut module) = syn::parse2::<ItemMod>(item.clone()) else {
        let error = syn::Error::new_spanned(
            item,
            "`#[stage::pipeline]` goes on a module: `mod steps { ... }`",
        );
        return entry::with_error(item, &error);
    };
    let Some((_, items)) = module.content.take() else {
        let error = syn::Error::new_spanned(
            &module,
            format!(
                "`#[stage::pipeline]` needs an inline module, `mod {} {{ ... }}`: it reads the module's items, and `mod {0};` keeps them in another file",
                module.ident
            ),
        );
        return entry::with_error(item, &error);
    };
    let roles: Vec<Role> = items.iter().map(role).collect();
    let nodes = nodes(&items, &roles);
    let known = known(&items);
    let reached = reached(&items, &roles, &nodes);
    let expanded = items
        .iter()
        .zip(&roles)
        .enumerate()
        .map(|(at, (item, role))| {
            let warn = reached.contains(&at);
            expand_item(at, item, role, &nodes, &known, warn)
        });
    let attrs = &module.attrs;
    let (vis, unsafety, ident) = (&module.vis, &module.unsafety, &module.ident);
    quote! {
        #(#attrs)*
        #vis #unsafety mod #ident {
            #(#expanded)*
        }
    }
}

fn role(item: &Item) -> Role {
    let attrs: &[Attribute] = match item {
        Item::Fn(f) => &f.attrs,
        Item::Const(c) => &c.attrs,
        Item::Static(s) => &s.attrs,
        Item::Struct(s) => &s.attrs,
        Item::Enum(e) => &e.attrs,
        Item::Union(u) => &u.attrs,
        Item::Type(t) => &t.attrs,
        Item::Trait(t) => &t.attrs,
        Item::Impl(i) => &i.attrs,
        Item::Macro(m) if m.ident.is_some() => return Role::Plain,
        _ => return Role::Other,
    };
    for (index, attr) in attrs.iter().enumerate() {
        let segments: Vec<String> = attr
            .path()
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect();
        if let Meta::NameValue(_) = &attr.meta {
            continue;
        }
        match segments.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["stage"] | ["stage", "stage"] if matches!(item, Item::Fn(_)) => {
                return Role::Stage { index };
            }
            ["track"] | ["stage", "track"] => return Role::Track { index },
            _ => {}
        }
    }
    Role::Plain
}

/// The item's own name, or `None` for an `impl`.
fn item_name(item: &Item) -> Option<&Ident> {
    match item {
        Item::Fn(f) => Some(&f.sig.ident),
        Item::Const(c) => Some(&c.ident),
        Item::Static(s) => Some(&s.ident),
        Item::Struct(s) => Some(&s.ident),
        Item::Enum(e) => Some(&e.ident),
        Item::Union(u) => Some(&u.ident),
        Item::Type(t) => Some(&t.ident),
        Item::Trait(t) => Some(&t.ident),
        Item::Macro(m) => m.ident.as_ref(),
        _ => None,
    }
}

fn is_type(item: &Item) -> bool {
    matches!(
        item,
        Item::Struct(_) | Item::Enum(_) | Item::Union(_) | Item::Type(_) | Item::Trait(_)
    )
}

fn nodes(items: &[Item], roles: &[Role]) -> Vec<Node> {
    let mut nodes = Vec::new();
    for (at, (item, role)) in items.iter().zip(roles).enumerate() {
        if matches!(role, Role::Stage { .. } | Role::Other) {
            continue;
        }
        let (keys, companion) = if let Item::Impl(i) = item {
            let mut keys = Vec::new();
            if let syn::Type::Path(p) = &*i.self_ty
                && let Some(last) = p.path.segments.last()
            {
                keys.push(last.ident.to_string());
            }
            if let Some((_, path, _)) = &i.trait_
                && let Some(last) = path.segments.last()
            {
                keys.push(last.ident.to_string());
            }
            keys.extend(i.items.iter().filter_map(|it| match it {
                syn::ImplItem::Fn(f) => Some(f.sig.ident.to_string()),
                syn::ImplItem::Const(c) => Some(c.ident.to_string()),
                _ => None,
            }));
            (keys, names::module_impl(at))
        } else {
            let Some(ident) = item_name(item) else {
                continue;
            };
            let name = ident.to_string();
            let explicit = matches!(role, Role::Track { .. });
            let companion = if explicit || (is_type(item) && names::is_camel(&name)) {
                names::companion(ident)
            } else if let Item::Macro(_) = item {
                // a macro may share its name with a function
                names::module_item(&format!("macro_{name}"))
            } else {
                names::module_item(&name)
            };
            (vec![name], companion)
        };
        nodes.push(Node {
            at,
            keys,
            idents: idents(item.to_token_stream()),
            companion,
        });
    }
    nodes
}

/// Every identifier in `tokens`, in groups too.
pub fn idents(tokens: TokenStream) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    let mut todo = vec![tokens];
    while let Some(stream) = todo.pop() {
        for token in stream {
            match token {
                TokenTree::Ident(i) => {
                    all.insert(i.to_string().trim_start_matches("r#").to_owned());
                }
                TokenTree::Group(g) => todo.push(g.stream()),
                _ => {}
            }
        }
    }
    all
}

/// The companions of the nodes whose keys appear in `idents`, except the node at `skip`.
fn named_by(idents: &BTreeSet<String>, nodes: &[Node], skip: Option<usize>) -> Vec<Ident> {
    nodes
        .iter()
        .filter(|n| Some(n.at) != skip && n.keys.iter().any(|k| idents.contains(k)))
        .map(|n| n.companion.clone())
        .collect()
}

/// The positions of the nodes some stage reaches, directly or through other nodes.
fn reached(items: &[Item], roles: &[Role], nodes: &[Node]) -> BTreeSet<usize> {
    let mut todo: Vec<&BTreeSet<String>> = Vec::new();
    let stage_idents: Vec<BTreeSet<String>> = items
        .iter()
        .zip(roles)
        .filter(|(_, role)| matches!(role, Role::Stage { .. }))
        .map(|(item, _)| idents(item.to_token_stream()))
        .collect();
    todo.extend(&stage_idents);
    let mut reached = BTreeSet::new();
    while let Some(names) = todo.pop() {
        for node in nodes {
            if node.keys.iter().any(|k| names.contains(k)) && reached.insert(node.at) {
                todo.push(&node.idents);
            }
        }
    }
    reached
}

/// Names the warning leaves alone: every item of the module, and what it imports from
/// outside the crate (`use std::f64::consts::PI`).
fn known(items: &[Item]) -> BTreeSet<String> {
    let mut known: BTreeSet<String> = items
        .iter()
        .filter_map(item_name)
        .map(ToString::to_string)
        .collect();
    for item in items {
        match item {
            Item::Use(u) => imported(&u.tree, true, &mut known),
            Item::Mod(m) => {
                known.insert(m.ident.to_string());
            }
            _ => {}
        }
    }
    known
}

fn imported(tree: &syn::UseTree, root: bool, known: &mut BTreeSet<String>) {
    match tree {
        syn::UseTree::Path(p) => {
            let local = root && matches!(p.ident.to_string().as_str(), "crate" | "self" | "super");
            if !local {
                imported(&p.tree, false, known);
            }
        }
        syn::UseTree::Name(n) if !root => {
            known.insert(n.ident.to_string());
        }
        syn::UseTree::Rename(r) if !root => {
            known.insert(r.rename.to_string());
        }
        syn::UseTree::Group(g) => g.items.iter().for_each(|t| imported(t, root, known)),
        _ => {}
    }
}

/// `item` with `pipeline`'s hidden attribute right below its attribute at `index`.
fn with_hidden(item: &Item, index: usize, pipeline: &Pipeline) -> TokenStream {
    let mut item = item.clone();
    let attrs = match &mut item {
        Item::Fn(f) => &mut f.attrs,
        Item::Const(c) => &mut c.attrs,
        Item::Static(s) => &mut s.attrs,
        Item::Struct(s) => &mut s.attrs,
        Item::Enum(e) => &mut e.attrs,
        Item::Union(u) => &mut u.attrs,
        Item::Type(t) => &mut t.attrs,
        Item::Trait(t) => &mut t.attrs,
        Item::Impl(i) => &mut i.attrs,
        _ => return item.to_token_stream(),
    };
    attrs.insert(index + 1, pipeline.attr());
    item.to_token_stream()
}

fn expand_item(
    at: usize,
    item: &Item,
    role: &Role,
    nodes: &[Node],
    known: &BTreeSet<String>,
    warn: bool,
) -> TokenStream {
    let context = |skip: Option<usize>| {
        let idents = idents(item.to_token_stream());
        Pipeline {
            items: named_by(&idents, nodes, skip),
            known: known.clone(),
            impl_companion: matches!(item, Item::Impl(_)).then(|| names::module_impl(at)),
        }
    };
    match role {
        Role::Stage { index } => with_hidden(item, *index, &context(None)),
        Role::Track { index } => with_hidden(item, *index, &context(Some(at))),
        Role::Plain => {
            let Some(node) = nodes.iter().find(|n| n.at == at) else {
                return item.to_token_stream();
            };
            let tokens = item.to_token_stream();
            let hash = hash::code_hash(&TokenStream::new(), &tokens);
            let name = match item {
                Item::Impl(i) => impl_name(i),
                other => item_name(other)
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            };
            // A type's companion follows the naming rule (its tracked impls register
            // against it), so it is as visible as the type.
            let vis = match item {
                Item::Struct(s) => s.vis.clone(),
                Item::Enum(e) => e.vis.clone(),
                Item::Union(u) => u.vis.clone(),
                Item::Type(t) => t.vis.clone(),
                Item::Trait(t) => t.vis.clone(),
                _ => Visibility::Inherited,
            };
            let uses = expand::uses(&[], &context(Some(at)).items);
            let companion = expand::companion(&vis, &node.companion, &name, hash, &uses);
            let warnings = if warn {
                entry::helper_warnings(item, &name, &[], Some(known))
            } else {
                TokenStream::new()
            };
            quote!(#tokens #companion #warnings)
        }
        Role::Other => item.to_token_stream(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(src: &str) -> (Vec<Item>, Vec<Role>, Vec<Node>) {
        let module: ItemMod = syn::parse_str(src).unwrap();
        let items = module.content.unwrap().1;
        let roles: Vec<Role> = items.iter().map(role).collect();
        let nodes = nodes(&items, &roles);
        (items, roles, nodes)
    }

    fn position(items: &[Item], name: &str) -> usize {
        items
            .iter()
            .position(|i| item_name(i).is_some_and(|n| n == name))
            .unwrap()
    }

    fn named(items: &[Item], nodes: &[Node], name: &str) -> Vec<String> {
        let at = position(items, name);
        let idents = idents(items[at].to_token_stream());
        named_by(&idents, nodes, Some(at))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const STEPS: &str = "mod steps {
        use std::f64::consts::PI;
        use std::cmp::{max, min as minimum};
        use crate::util::helper;
        use super::*;
        const EDGES: [f64; 2] = [1.0, PI];
        const UNUSED: u8 = 0;
        fn bin(x: f64) -> usize { EDGES.iter().filter(|e| x >= **e).count() }
        pub struct Hist { bins: Vec<usize> }
        impl Hist { fn total(&self) -> usize { self.bins.iter().sum() } }
        #[stage(cache = bincode)]
        pub fn binned(xs: Vec<f64>) -> Vec<usize> { xs.iter().map(|&x| bin(x)).collect() }
        #[stage::stage(b = binned(xs))]
        pub fn total(b: &Vec<usize>, xs: Vec<f64>) -> usize { Hist { bins: b.clone() }.total() }
    }";

    #[test]
    fn each_item_names_the_items_of_the_module_it_mentions() {
        let (items, _, nodes) = module(STEPS);
        assert_eq!(named(&items, &nodes, "binned"), ["__stage_item_bin"]);
        assert_eq!(named(&items, &nodes, "bin"), ["__stage_item_EDGES"]);
        assert!(named(&items, &nodes, "EDGES").is_empty());
        // a stage that names a type brings the type's impls
        assert_eq!(
            named(&items, &nodes, "total"),
            ["__stage_tracked_Hist", "__stage_impl_8"]
        );
    }

    #[test]
    fn stages_are_not_nodes_and_reach_items_transitively() {
        let (items, roles, nodes) = module(STEPS);
        assert!(matches!(
            roles[position(&items, "binned")],
            Role::Stage { .. }
        ));
        assert!(matches!(
            roles[position(&items, "total")],
            Role::Stage { .. }
        ));
        let reached: Vec<String> = reached(&items, &roles, &nodes)
            .into_iter()
            .map(|at| item_name(&items[at]).map_or_else(|| "impl".to_owned(), ToString::to_string))
            .collect();
        assert_eq!(reached, ["EDGES", "bin", "Hist", "impl"]);
    }

    #[test]
    fn known_names_are_the_module_items_and_library_imports() {
        let (items, _, _) = module(STEPS);
        let known = known(&items);
        for name in [
            "PI", "max", "minimum", "EDGES", "UNUSED", "bin", "Hist", "binned",
        ] {
            assert!(known.contains(name), "{name}");
        }
        for name in ["helper", "min", "util", "crate", "super"] {
            assert!(!known.contains(name), "{name}");
        }
    }

    #[test]
    fn the_hidden_attribute_carries_its_data_and_comes_off() {
        let (items, _, _) = module(STEPS);
        let at = position(&items, "binned");
        let pipeline = Pipeline {
            items: vec![names::module_item("bin")],
            known: ["EDGES".to_owned(), "bin".to_owned()].into(),
            impl_companion: None,
        };
        let Item::Fn(mut func) = items[at].clone() else {
            unreachable!()
        };
        func.attrs.remove(0);
        let plain = func.to_token_stream().to_string();
        func.attrs.insert(0, pipeline.attr());
        let (tokens, taken) = Pipeline::take(func.to_token_stream());
        assert_eq!(tokens.to_string(), plain);
        let taken = taken.unwrap().unwrap();
        assert_eq!(taken.items, pipeline.items);
        assert_eq!(taken.known, pipeline.known);
    }
}

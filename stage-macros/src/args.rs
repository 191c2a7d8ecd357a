//! The attribute's arguments as typed data: `key = value, ...`.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprCall, ExprPath, Ident, Lit, LitStr, Path, Token, bracketed};

/// One `key = value` argument, as written.
pub struct Arg {
    pub key: Ident,
    pub value: Value,
}

/// The right-hand side of an argument.
pub enum Value {
    /// `"text"`
    Str(LitStr),
    /// `path` or `path::to::item`
    Path(Path),
    /// `path(args, ...)`
    Call(Path, Vec<Expr>),
    /// `[path, ...]`
    List(Vec<Path>),
    /// Anything else: rejected during validation, with its span.
    Other(Expr),
}

/// All the arguments of `#[stage(...)]` or `#[track(...)]`.
pub struct Args(pub Vec<Arg>);

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Args> {
        let args = Punctuated::<Arg, Token![,]>::parse_terminated(input)?;
        Ok(Args(args.into_iter().collect()))
    }
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Arg> {
        let key: Ident = input.call(syn::ext::IdentExt::parse_any)?;
        input.parse::<Token![=]>().map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("expected `=` after `{key}`: arguments are written `{key} = ...`"),
            )
        })?;
        let value = if input.peek(syn::token::Bracket) {
            let content;
            bracketed!(content in input);
            let paths = Punctuated::<Path, Token![,]>::parse_terminated(&content)?;
            Value::List(paths.into_iter().collect())
        } else {
            Value::from_expr(input.parse()?)
        };
        Ok(Arg { key, value })
    }
}

impl Value {
    fn from_expr(expr: Expr) -> Value {
        match expr {
            Expr::Lit(syn::ExprLit {
                lit: Lit::Str(s), ..
            }) => Value::Str(s),
            Expr::Path(ExprPath {
                path, qself: None, ..
            }) => Value::Path(path),
            Expr::Call(ExprCall { func, args, .. }) => match *func {
                Expr::Path(ExprPath {
                    path, qself: None, ..
                }) => Value::Call(path, args.into_iter().collect()),
                func => Value::Other(Expr::Call(ExprCall {
                    attrs: Vec::new(),
                    func: Box::new(func),
                    paren_token: syn::token::Paren::default(),
                    args,
                })),
            },
            other => Value::Other(other),
        }
    }

    /// The span to point at when this value is wrong.
    pub fn span(&self) -> Span {
        use syn::spanned::Spanned;
        match self {
            Value::Str(s) => s.span(),
            Value::Path(p) | Value::Call(p, _) => p.span(),
            Value::List(l) => l.first().map_or_else(Span::call_site, Spanned::span),
            Value::Other(e) => e.span(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let args: Args = syn::parse_str(r#"raw = "a.csv", t = load, s = m::summary(10, n), cache = parquet, uses = [h, m::g], version = 3"#).unwrap();
        let kinds: Vec<&str> = args
            .0
            .iter()
            .map(|a| match &a.value {
                Value::Str(_) => "str",
                Value::Path(_) => "path",
                Value::Call(_, args) if args.len() == 2 => "call2",
                Value::Call(..) => "call",
                Value::List(l) if l.len() == 2 => "list2",
                Value::List(_) => "list",
                Value::Other(_) => "other",
            })
            .collect();
        assert_eq!(kinds, ["str", "path", "call2", "path", "list2", "other"]);
    }

    #[test]
    fn missing_equals_says_how_to_write_it() {
        let err = syn::parse_str::<Args>("cache parquet").err().unwrap();
        assert!(err.to_string().contains("expected `=` after `cache`"));
    }
}

//! The code hash: blake3 over our own canonical encoding of a token stream.
//!
//! The encoding sees only what the compiler sees as meaning: delimiters, identifiers,
//! punctuation characters and literals (as written). Whitespace and comments never reach a
//! token stream; doc comments arrive as `#[doc = ...]` attributes and are skipped here.
//! Spans and punctuation spacing are ignored, so the hash does not depend on how a
//! toolchain or a `proc-macro2` version renders or joins tokens.

use proc_macro2::{Delimiter, TokenStream, TokenTree};

/// Version of the encoding; part of every hash.
const DOMAIN: &[u8] = b"stage code hash v1";

/// The hash of a stage: its attribute arguments and its item, one after the other.
pub fn code_hash(attr: &TokenStream, item: &TokenStream) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(DOMAIN);
    encode(attr.clone(), &mut hasher);
    hasher.update(b"|");
    encode(item.clone(), &mut hasher);
    *hasher.finalize().as_bytes()
}

fn encode(stream: TokenStream, out: &mut blake3::Hasher) {
    let mut tokens = stream.into_iter().peekable();
    while let Some(token) = tokens.next() {
        if let TokenTree::Punct(p) = &token
            && p.as_char() == '#'
        {
            let inner = matches!(tokens.peek(), Some(TokenTree::Punct(b)) if b.as_char() == '!');
            let mut ahead = tokens.clone();
            if inner {
                ahead.next();
            }
            if let Some(TokenTree::Group(g)) = ahead.peek()
                && is_doc_attribute(g)
            {
                tokens = ahead;
                tokens.next();
                continue;
            }
        }
        match token {
            TokenTree::Group(g) => {
                out.update(&[b'(', delimiter_tag(g.delimiter())]);
                encode(g.stream(), out);
                out.update(b")");
            }
            TokenTree::Ident(i) => text(out, b'i', &i.to_string()),
            TokenTree::Punct(p) => text(out, b'p', p.as_char().encode_utf8(&mut [0; 4])),
            TokenTree::Literal(l) => text(out, b'l', &l.to_string()),
        }
    }
}

fn text(out: &mut blake3::Hasher, tag: u8, s: &str) {
    out.update(&[tag]);
    out.update(&(s.len() as u64).to_le_bytes());
    out.update(s.as_bytes());
}

fn delimiter_tag(d: Delimiter) -> u8 {
    match d {
        Delimiter::Parenthesis => b'p',
        Delimiter::Brace => b'b',
        Delimiter::Bracket => b'k',
        Delimiter::None => b'n',
    }
}

fn is_doc_attribute(group: &proc_macro2::Group) -> bool {
    group.delimiter() == Delimiter::Bracket
        && matches!(group.stream().into_iter().next(), Some(TokenTree::Ident(i)) if i == "doc")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::{Ident, Punct, Spacing, Span};
    use std::str::FromStr;

    fn hex(attr: &str, item: &str) -> String {
        let attr = TokenStream::from_str(attr).unwrap();
        let item = TokenStream::from_str(item).unwrap();
        blake3::Hash::from(code_hash(&attr, &item))
            .to_hex()
            .to_string()
    }

    /// Pinned vectors: if one changes, every cache in the world is invalidated. Change
    /// them only with a new `DOMAIN` version.
    #[test]
    fn test_vectors() {
        let vectors = [
            (
                "",
                "fn f() {}",
                "7cda207e56f3ad0e756419d3ee51903c7b7f0e37eb4407efdedb08c34953b051",
            ),
            (
                "trips = load, cache = parquet",
                "fn clean(trips: RecordBatch) -> RecordBatch { trips }",
                "a93ef31eaa87033a23cdd3389f5d7031657cd4c45aaef9159a9280861e2818f5",
            ),
            (
                "s = summary(10)",
                "pub fn report(s: &Summary) -> String { format!(\"{} rows\", s.rows) }",
                "b55b61dd50d9325f56b151bb59c6ae0260d6ba661a6f6ac91d33cd156fded832",
            ),
        ];
        for (attr, item, expected) in vectors {
            assert_eq!(hex(attr, item), expected, "{attr} / {item}");
        }
    }

    #[test]
    fn whitespace_comments_and_docs_do_not_count() {
        let base = hex("x = a", "fn f(x: u8) -> u8 { x + 1 }");
        assert_eq!(base, hex("x=a", "fn f( x : u8 )->u8{x+1}"));
        assert_eq!(
            base,
            hex(
                "x = a",
                "fn f(x: u8) -> u8 {\n    // one\n    x + /* two */ 1\n}"
            )
        );
        assert_eq!(
            base,
            hex(
                "x = a",
                "/// Adds one.\n///\n/// More.\nfn f(x: u8) -> u8 { x + 1 }"
            )
        );
        assert_eq!(
            base,
            hex(
                "x = a",
                "#[doc = \"Adds one.\"] fn f(x: u8) -> u8 { //! inner\n x + 1 }"
            )
        );
    }

    #[test]
    fn any_token_counts() {
        let base = hex("x = a", "fn f(x: u8) -> u8 { x + 1 }");
        for (attr, item) in [
            ("x = b", "fn f(x: u8) -> u8 { x + 1 }"),
            ("x = a", "fn f(x: u8) -> u8 { x + 2 }"),
            ("x = a", "fn f(x: u8) -> u8 { x - 1 }"),
            ("x = a", "fn f(x: u16) -> u8 { x + 1 }"),
            ("x = a", "fn f(x: u8) -> u8 { (x + 1) }"),
            ("x = a", "fn f(x: u8) -> u8 { x + 1_u8 }"),
            ("x = a", "#[inline] fn f(x: u8) -> u8 { x + 1 }"),
            ("", "x = a fn f(x: u8) -> u8 { x + 1 }"),
        ] {
            assert_ne!(base, hex(attr, item), "{attr} / {item}");
        }
    }

    #[test]
    fn string_contents_count() {
        assert_ne!(
            hex("", "fn f() -> &'static str { \"a b\" }"),
            hex("", "fn f() -> &'static str { \"a  b\" }")
        );
    }

    /// Tokens built by hand, with other spans and spacing than the parser gives, hash the
    /// same as parsed ones: the hash does not depend on how tokens are rendered or joined.
    #[test]
    fn spans_and_spacing_do_not_count() {
        let parsed = TokenStream::from_str("a && b").unwrap();
        let mut built = TokenStream::new();
        built.extend([
            TokenTree::Ident(Ident::new("a", Span::mixed_site())),
            TokenTree::Punct(Punct::new('&', Spacing::Alone)),
            TokenTree::Punct(Punct::new('&', Spacing::Alone)),
            TokenTree::Ident(Ident::new("b", Span::call_site())),
        ]);
        assert_ne!(parsed.to_string(), built.to_string());
        let empty = TokenStream::new();
        assert_eq!(code_hash(&empty, &parsed), code_hash(&empty, &built));
    }
}

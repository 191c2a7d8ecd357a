//! Expansion snapshots: what each attribute generates, pretty-printed and committed in
//! `snapshots/`, so that a change to generated code shows in review. Run with
//! `STAGE_SNAPSHOTS=overwrite` to rewrite them after an intended change.

use std::path::Path;

use proc_macro2::TokenStream;

use crate::{entry, pipeline};

fn check(name: &str, expanded: TokenStream) {
    let file: syn::File = syn::parse2(expanded).expect("the expansion parses as a file");
    let text = prettyplease::unparse(&file);
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("snapshots")
        .join(format!("{name}.rs"));
    if std::env::var_os("STAGE_SNAPSHOTS").is_some_and(|v| v == "overwrite") {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "{name}: the expansion changed; review it and run with STAGE_SNAPSHOTS=overwrite\n{text}"
    );
}

fn tokens(s: &str) -> TokenStream {
    s.parse().unwrap()
}

#[test]
fn stage() {
    check(
        "stage",
        entry::stage(
            tokens("xs = numbers(n), cache = bincode, uses = [scale]"),
            tokens("fn total(xs: &Vec<u32>, n: u32) -> u32 { xs.iter().map(|&x| scale(x)).sum() }"),
        ),
    );
}

#[test]
fn stage_with_untracked_names() {
    check(
        "stage_untracked",
        entry::stage(
            tokens("untracked = [log]"),
            tokens("fn summary() -> u32 { log(); BUCKETS[0] + crate::config::LIMIT }"),
        ),
    );
}

#[test]
fn tracked_const() {
    check(
        "track_const",
        entry::track(
            tokens(""),
            tokens("pub const BUCKETS: [f64; 2] = [0.0, 10.0];"),
        ),
    );
}

#[test]
fn tracked_type_and_impl() {
    check(
        "track_type",
        entry::track(tokens(""), tokens("pub struct Grid { step: f64 }")),
    );
    check(
        "track_impl",
        entry::track(
            tokens(""),
            tokens("impl model::Grid { fn cell(&self, x: f64) -> i64 { (x / self.step) as i64 } }"),
        ),
    );
}

#[test]
fn pipeline_module() {
    check(
        "pipeline",
        pipeline::pipeline(
            &TokenStream::new(),
            &tokens(
                "mod steps {
                    use stage::stage;
                    const EDGES: [f64; 2] = [1.0, 5.0];
                    const UNUSED: u8 = 0;
                    fn bin(x: f64) -> usize { EDGES.iter().filter(|e| x >= **e).count() }
                    #[stage(cache = bincode)]
                    pub fn binned(xs: Vec<f64>) -> Vec<usize> { xs.iter().map(|&x| bin(x)).collect() }
                }",
            ),
        ),
    );
}

//! The pipeline as data: its graph, what a call would run and why, without running it.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};
use stage::{Change, Config, Reason, State, stage};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Image(Vec<u8>);

#[stage(cache = bincode)]
fn download(seed: u8) -> Image {
    Image((0..64).map(|i| i ^ seed).collect())
}

#[stage(img = download(seed), cache = bincode)]
fn blur(img: &Image, seed: u8) -> Image {
    Image(img.0.windows(2).map(|w| w[0] / 2 + w[1] / 2).collect())
}

#[stage(img = download(seed), cache = bincode)]
fn edges(img: &Image, seed: u8) -> Image {
    Image(img.0.windows(2).map(|w| w[0].abs_diff(w[1])).collect())
}

#[stage(a = blur(seed), b = edges(seed), cache = bincode)]
fn collage(a: &Image, b: &Image, seed: u8) -> Image {
    Image(a.0.iter().chain(&b.0).copied().collect())
}

fn in_cache<R>(dir: &Path, f: impl FnOnce() -> R) -> R {
    Config::from_env().dir(dir).scope(f)
}

#[test]
fn the_graph_has_exactly_the_stages_and_edges() {
    let dir = tempfile::tempdir().unwrap();
    let graph = in_cache(dir.path(), || stage::graph::<collage>((1,))).unwrap();
    let names: Vec<&str> = graph.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["download", "blur", "edges", "collage"]);
    let mut edges: Vec<(String, String, String)> = graph
        .nodes
        .iter()
        .flat_map(|n| {
            n.ancestors
                .iter()
                .map(|(param, a)| (graph.nodes[*a].name.clone(), n.name.clone(), param.clone()))
        })
        .collect();
    edges.sort();
    let expected = [
        ("blur", "collage", "a"),
        ("download", "blur", "img"),
        ("download", "edges", "img"),
        ("edges", "collage", "b"),
    ];
    assert_eq!(
        edges,
        expected.map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    );
    let dot = graph.to_dot();
    assert_eq!(dot.matches(" -> ").count(), 4, "{dot}");
    let mermaid = graph.to_mermaid();
    assert_eq!(mermaid.matches(" -->|").count(), 4, "{mermaid}");
    let manifest: serde_json::Value = serde_json::from_str(&graph.to_json()).unwrap();
    let keys: Vec<Option<&str>> = manifest["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["key"].as_str())
        .collect();
    // Nothing is cached yet: below `download`, keys wait on outputs not computed.
    assert_eq!(keys.len(), 4);
    assert!(keys[0].is_some_and(|k| k.len() == 64));
    assert!(keys[1..].iter().all(Option::is_none), "{keys:?}");
}

#[test]
fn status_before_after_and_after_a_parameter_change() {
    let dir = tempfile::tempdir().unwrap();
    let before = in_cache(dir.path(), || stage::explain::<collage>((1,))).unwrap();
    let names: Vec<&str> = before.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["download", "blur", "edges", "collage"]);
    assert!(
        before.iter().all(|(_, r)| *r == Reason::NeverRun),
        "{before:?}"
    );

    let (value, log) = in_cache(dir.path(), || stage::observe(|| collage(1)));
    value.unwrap();
    assert_eq!(
        log.computed().len(),
        4,
        "explain computed nothing, so the run computes all"
    );

    assert!(
        in_cache(dir.path(), || stage::explain::<collage>((1,)))
            .unwrap()
            .is_empty()
    );
    let graph = in_cache(dir.path(), || stage::graph::<collage>((1,))).unwrap();
    assert!(graph.nodes.iter().all(|n| n.state == State::Cached));
    assert_eq!(
        graph.nodes.iter().filter(|n| n.needed).count(),
        1,
        "only the cached last stage is needed"
    );

    // Every stage's own parameter changed, so each is certain to run; the ones below
    // `download` also wait on outputs that will be recomputed.
    let changed = in_cache(dir.path(), || stage::explain::<collage>((2,))).unwrap();
    let seed = || Change::Param("seed".into());
    let above = |name: &str| Change::Ancestor(name.into());
    let expected: Vec<(String, Reason)> = vec![
        ("download".into(), Reason::changed(seed())),
        (
            "blur".into(),
            Reason::Changed(vec![seed(), above("download")]),
        ),
        (
            "edges".into(),
            Reason::Changed(vec![seed(), above("download")]),
        ),
        (
            "collage".into(),
            Reason::Changed(vec![seed(), above("blur"), above("edges")]),
        ),
    ];
    assert_eq!(changed, expected);
}

#[test]
fn an_ancestor_change_is_named_as_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    in_cache(dir.path(), || collage(3)).unwrap();
    let graph = in_cache(dir.path(), || stage::graph::<blur>((4,))).unwrap();
    let reasons: Vec<(&str, &Reason)> = graph.would_run();
    assert_eq!(
        reasons[0],
        ("download", &Reason::changed(Change::Param("seed".into())))
    );
}

#[test]
fn an_entry_whose_payload_is_gone_is_no_hit_for_explain_nor_for_the_run() {
    let dir = tempfile::tempdir().unwrap();
    in_cache(dir.path(), || collage(5)).unwrap();
    let key = in_cache(dir.path(), || stage::inspect::key::<collage>((5,))).unwrap();
    let folder = stage::inspect::LocalStore::new(dir.path()).stage_dir("graph::collage");
    std::fs::remove_file(folder.join(format!("{}.bin", key.to_hex()))).unwrap();

    let why = in_cache(dir.path(), || stage::explain::<collage>((5,))).unwrap();
    assert_eq!(why, [("collage".to_owned(), Reason::Removed)]);
    let (value, log) = in_cache(dir.path(), || stage::observe(|| collage(5)));
    value.unwrap();
    assert_eq!(log.computed(), ["collage"]);
    assert_eq!(log.reason("collage"), Some(&Reason::Removed));
    assert!(
        in_cache(dir.path(), || stage::explain::<collage>((5,)))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn the_dot_output_renders_with_graphviz() {
    let dir = tempfile::tempdir().unwrap();
    let dot = in_cache(dir.path(), || stage::graph::<collage>((1,)))
        .unwrap()
        .to_dot();
    let Ok(mut child) = Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    else {
        eprintln!("skipped: Graphviz `dot` is not installed (apt-get install graphviz)");
        return;
    };
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), dot.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svg = String::from_utf8(out.stdout).unwrap();
    assert!(svg.contains("<svg") && svg.contains("collage"));
}

#[test]
fn every_stage_is_registered() {
    let paths: Vec<String> = stage::stages().iter().map(|s| s.path()).collect();
    for name in ["download", "blur", "edges", "collage"] {
        assert!(
            paths.contains(&format!("graph::{name}")),
            "{name} missing from {paths:?}"
        );
    }
    let blur = stage::stages()
        .into_iter()
        .find(|s| s.name == "blur")
        .unwrap();
    assert_eq!(blur.ancestors.len(), 1);
    assert_eq!((blur.ancestors[0].stage)().name, "download");
    assert_eq!(blur.cache, "bincode");
}

// ---- tracked helpers

#[stage::track]
fn offset() -> u32 {
    7
}

#[stage::track(uses = [offset])]
fn shifted(x: u32) -> u32 {
    x + offset()
}

#[stage(cache = bincode, uses = [shifted])]
fn uses_helper(x: u32) -> u32 {
    shifted(x)
}

#[test]
fn tracked_helpers_enter_the_key_transitively() {
    let dir = tempfile::tempdir().unwrap();
    let graph = in_cache(dir.path(), || stage::graph::<uses_helper>((1,))).unwrap();
    assert_eq!(in_cache(dir.path(), || uses_helper(1)).unwrap(), 8);
    let helpers = stage::stages()
        .into_iter()
        .find(|s| s.name == "uses_helper")
        .unwrap()
        .uses;
    let direct = helpers[0]();
    assert_eq!(direct.name, "shifted");
    assert_eq!((direct.uses[0])().name, "offset");
    assert_eq!(graph.nodes.len(), 1);
}

//! The examples' pipelines, compiled into this test: their stages and edges, read from the
//! registry that `#[stage]` fills, are exactly the ones each example means to have.

#![allow(dead_code, reason = "the examples' `main`s are not called here")]

#[path = "../examples/collage.rs"]
mod collage;
#[path = "../examples/dag.rs"]
mod dag;
#[path = "../examples/lwdp.rs"]
mod lwdp;
#[path = "../examples/quickstart.rs"]
mod quickstart;

/// `(stage, [(param, ancestor)])` of every stage in `module`, sorted.
fn shape(module: &str) -> Vec<(String, Vec<(String, String)>)> {
    let suffix = format!("::{module}");
    stage::stages()
        .into_iter()
        .filter(|s| s.module_path.ends_with(&suffix))
        .map(|s| {
            let mut edges: Vec<(String, String)> = s
                .ancestors
                .iter()
                .map(|a| (a.param.to_owned(), (a.stage)().name.to_owned()))
                .collect();
            edges.sort();
            (s.name.to_owned(), edges)
        })
        .collect()
}

fn expected(list: &[(&str, &[(&str, &str)])]) -> Vec<(String, Vec<(String, String)>)> {
    let mut v: Vec<_> = list
        .iter()
        .map(|(name, edges)| {
            let edges = edges
                .iter()
                .map(|(p, a)| ((*p).to_owned(), (*a).to_owned()))
                .collect();
            ((*name).to_owned(), edges)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn quickstart() {
    assert_eq!(
        shape("quickstart"),
        expected(&[
            ("clean", &[("trips", "load")]),
            ("load", &[]),
            ("report", &[("s", "summary")]),
            ("summary", &[("trips", "clean")]),
        ])
    );
}

#[test]
fn lwdp() {
    assert_eq!(
        shape("lwdp"),
        expected(&[
            ("stg_final_process", &[("formatted_src", "stg_format_more")]),
            ("stg_format_more", &[("basic_raw", "stg_read_format_raw")]),
            ("stg_read_format_raw", &[]),
        ])
    );
}

#[test]
fn collage() {
    assert_eq!(
        shape("collage"),
        expected(&[
            ("blur", &[("image", "download_images")]),
            ("collage", &[("left", "blur"), ("right", "edge_enhance")]),
            ("download_images", &[]),
            ("edge_enhance", &[("image", "download_images")]),
        ])
    );
}

#[test]
fn dag() {
    assert_eq!(
        shape("dag"),
        expected(&[
            ("peaks", &[("r", "readings")]),
            ("readings", &[]),
            ("report", &[("p", "peaks"), ("s", "smoothed")]),
            ("smoothed", &[("r", "readings")]),
        ])
    );
}

#[test]
fn raw_inputs_are_registered_with_their_paths() {
    let load = stage::stages()
        .into_iter()
        .find(|s| s.module_path.ends_with("::quickstart") && s.name == "load")
        .unwrap();
    assert_eq!(load.raw.len(), 1);
    assert_eq!(load.raw[0].path, "examples/data/trips.csv");
    assert!(std::path::Path::new(load.raw[0].path).exists());
}

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
#[path = "../examples/sweep.rs"]
mod sweep;

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
            ("collage", &[("all", "edges")]),
            ("edges", &[("thumb", "thumbnail")]),
            ("thumbnail", &[]),
        ])
    );
}

#[test]
fn the_collage_maps_each_photo_once_and_a_new_photo_alone() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("examples/data/photos");
    std::fs::create_dir_all(&photos).unwrap();
    for file in std::fs::read_dir("examples/data/photos").unwrap() {
        let file = file.unwrap();
        std::fs::copy(file.path(), photos.join(file.file_name())).unwrap();
    }
    let config = stage::Config::from_env()
        .dir(dir.path().join("cache"))
        .data_dir(dir.path());
    let (image, log) = config.scope(|| stage::observe(|| collage::collage(3)));
    let image = image.unwrap();
    assert_eq!((image.width, image.height), (6 * 24, 24));
    assert_eq!(log.computed(), ["thumbnail", "edges", "collage"]);
    assert!(log.to_string().contains("6 of 6 items"), "{log}");

    let first = collage::Image::read_pgm(&photos.join("01-rings.pgm")).unwrap();
    std::fs::write(photos.join("07-copy.pgm"), first.to_pgm()).unwrap();
    let (image, log) = config.scope(|| stage::observe(|| collage::collage(3)));
    assert_eq!(image.unwrap().width, 7 * 24);
    assert!(log.to_string().contains("1 of 7 items"), "{log}");
    assert_eq!(log.computed(), ["thumbnail", "edges", "collage"]);
}

#[test]
fn sweep() {
    assert_eq!(
        shape("sweep"),
        expected(&[
            ("best", &[("scores", "score")]),
            ("detect", &[("s", "signal")]),
            ("score", &[("found", "detect"), ("s", "signal")]),
            ("signal", &[]),
        ])
    );
}

#[test]
fn the_sweep_computes_each_point_once_and_new_points_alone() {
    let dir = tempfile::tempdir().unwrap();
    let config = stage::Config::from_env().dir(dir.path());
    let (best, log) = config.scope(|| stage::observe(|| sweep::best(vec![10, 20])));
    let ((window, _), f1) = best.unwrap();
    assert!(f1 > 500, "F1 {f1}");
    assert!([5, 11, 21].contains(&window));
    let scored = |log: &stage::RunLog| log.computed().iter().filter(|n| **n == "score").count();
    assert_eq!(scored(&log), 6);
    let (_, log) = config.scope(|| stage::observe(|| sweep::best(vec![10, 20, 30])));
    assert_eq!(scored(&log), 3, "{log}");
    assert_eq!(
        log.loaded().iter().filter(|n| **n == "score").count(),
        6,
        "{log}"
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

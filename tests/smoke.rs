//! A first end-to-end call: compute, then read back.
use stage::stage;

#[stage(cache = bincode)]
fn numbers(n: u32) -> Vec<u32> {
    (0..n).collect()
}

#[stage(xs = numbers(10))]
fn total(xs: &Vec<u32>) -> u32 {
    xs.iter().sum()
}

#[test]
fn smoke() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = stage::Config::from_env().dir(dir.path());
    let (v, log) = cfg.scope(|| stage::observe(total));
    assert_eq!(v.unwrap(), 45);
    assert_eq!(log.computed(), ["numbers", "total"]);
    let (v, log) = cfg.scope(|| stage::observe(total));
    assert_eq!(v.unwrap(), 45);
    assert_eq!(log.computed(), ["total"]);
    assert_eq!(log.loaded(), ["numbers"]);
}

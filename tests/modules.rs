//! Stages in nested modules and other files, private and public, named by path; bodies
//! returning the `Result` types users write.

#[path = "modules/io.rs"]
mod io;

mod report {
    use stage::stage;

    use crate::io::deeper::doubled;

    #[stage(xs = doubled, ys = super::io::load(3))]
    pub fn total(xs: &[u32], ys: &Vec<u32>) -> u32 {
        xs.iter().chain(ys).sum()
    }
}

mod results {
    use stage::stage;

    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

    #[stage]
    pub fn io_result(fail: bool) -> std::io::Result<u8> {
        if fail {
            Err(std::io::Error::other("disk on fire"))
        } else {
            Ok(1)
        }
    }

    #[stage]
    pub fn alias_result(n: u8) -> Result<u8> {
        if n == 0 { Err("zero".into()) } else { Ok(n) }
    }

    #[stage(a = io_result(false), b = alias_result(2))]
    pub fn both(a: u8, b: u8) -> u8 {
        a + b
    }
}

fn in_cache<R>(f: impl FnOnce() -> R) -> R {
    let dir = tempfile::tempdir().unwrap();
    stage::Config::from_env().dir(dir.path()).scope(f)
}

#[test]
fn stages_across_modules_and_files() {
    // doubled(load(4)) = 2+4+6+8 = 20, load(3) = 1+2+3 = 6
    assert_eq!(in_cache(report::total).unwrap(), 26);
    assert_eq!(in_cache(|| io::load(2)).unwrap(), [1, 2]);
}

#[test]
fn result_bodies_keep_their_error_as_the_source() {
    assert_eq!(in_cache(results::both).unwrap(), 3);
    let err = in_cache(|| results::io_result(true)).unwrap_err();
    assert!(err.to_string().contains("io_result"), "{err}");
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "disk on fire"
    );
    let err = in_cache(|| results::alias_result(0)).unwrap_err();
    assert_eq!(std::error::Error::source(&err).unwrap().to_string(), "zero");
}

#[test]
fn the_error_works_with_question_mark_in_boxed_mains() {
    fn main_like() -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
        Ok(results::alias_result(0)?)
    }
    assert!(in_cache(main_like).is_err());
}

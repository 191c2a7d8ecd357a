//! Stages in another file, reached through module paths.

use stage::stage;

#[stage(cache = bincode)]
pub fn load(n: u32) -> Vec<u32> {
    (1..=n).collect()
}

pub mod deeper {
    use stage::stage;

    #[stage(xs = crate::io::load(4), cache = bincode)]
    pub(crate) fn doubled(xs: Vec<u32>) -> Vec<u32> {
        xs.into_iter().map(|x| x * 2).collect()
    }
}

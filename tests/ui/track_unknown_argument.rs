#[stage::track(cache = bincode)]
const LIMIT: u32 = 3;

fn main() {}

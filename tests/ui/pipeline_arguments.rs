#[stage::pipeline(cache = bincode)]
mod steps {}

fn main() {}

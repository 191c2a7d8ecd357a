use stage::stage;

#[stage(cache = bincode, cache = parquet)]
fn load(n: u32) -> u32 {
    n
}

fn main() {}

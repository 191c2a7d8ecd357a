use stage::stage;

#[stage(cache_format = parquet)]
fn load(n: u32) -> u32 {
    n
}

fn main() {}

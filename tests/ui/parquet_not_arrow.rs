use stage::stage;

#[stage(cache = parquet)]
fn load() -> Vec<u32> {
    vec![1, 2, 3]
}

fn main() {}

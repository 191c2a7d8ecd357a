use stage::stage;

#[stage(cache = csv)]
fn load() -> u32 {
    1
}

fn main() {}

use stage::stage;

#[stage]
fn load() -> u32 {
    1
}

#[stage(rows = load)]
fn total(n: u32) -> u32 {
    n
}

fn main() {}

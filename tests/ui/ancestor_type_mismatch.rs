use stage::stage;

#[stage]
fn count() -> u32 {
    3
}

#[stage(n = count)]
fn label(n: String) -> String {
    n
}

fn main() {}

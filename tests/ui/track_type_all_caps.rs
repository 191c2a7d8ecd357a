#[stage::track]
struct ID {
    n: u32,
}

fn main() {}

use stage::stage;

fn plain() -> u32 {
    1
}

#[stage(x = plain)]
fn double(x: u32) -> u32 {
    x * 2
}

fn main() {}

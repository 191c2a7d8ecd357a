use stage::stage;

struct Grid {
    step: u32,
}

#[stage(uses = [Grid])]
fn cells() -> u32 {
    Grid { step: 2 }.step
}

fn main() {}

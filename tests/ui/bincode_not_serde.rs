use stage::stage;

struct Summary {
    rows: usize,
}

#[stage(cache = bincode)]
fn summary() -> Summary {
    Summary { rows: 1 }
}

fn main() {}

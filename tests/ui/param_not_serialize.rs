use stage::stage;

struct Settings {
    depth: u8,
}

#[stage]
fn run(settings: Settings) -> u8 {
    settings.depth
}

fn main() {}

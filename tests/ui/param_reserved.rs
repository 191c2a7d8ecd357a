use stage::stage;

#[stage]
fn load(version: u32) -> u32 {
    version
}

fn main() {}

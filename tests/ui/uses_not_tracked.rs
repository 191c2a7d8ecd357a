use stage::stage;

fn helper() -> u32 {
    1
}

#[stage(uses = [helper])]
fn load() -> u32 {
    helper()
}

fn main() {}

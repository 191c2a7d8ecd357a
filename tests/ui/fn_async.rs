use stage::stage;

#[stage]
async fn load() -> u32 {
    1
}

fn main() {}

use stage::stage;

struct Pipeline;

impl Pipeline {
    #[stage]
    fn load(&self) -> u32 {
        1
    }
}

fn main() {}

struct Grid {
    step: u32,
}

#[stage::track]
impl Grid {
    fn step(&self) -> u32 {
        self.step
    }
}

fn main() {}

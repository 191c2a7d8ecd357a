use stage::stage;

#[stage]
fn load<T: Default>() -> T {
    T::default()
}

fn main() {}

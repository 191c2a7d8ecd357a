use stage::stage;

struct Big(Vec<u8>);

#[stage]
fn big() -> Big {
    Big(vec![0; 10])
}

#[stage(b = big)]
fn size(b: Big) -> usize {
    b.0.len()
}

fn main() {}

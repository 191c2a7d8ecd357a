#[stage::pipeline]
fn steps() {}

fn main() {}

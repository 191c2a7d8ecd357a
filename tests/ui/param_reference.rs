use stage::stage;

#[stage]
fn greet(who: &str) -> String {
    format!("hello {who}")
}

fn main() {}
